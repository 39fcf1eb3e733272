"""The ``stargan_vc`` method (Kameoka et al. 2018): one generator converts speech between
all speakers, with a conditional discriminator and a separate domain classifier.

Each iteration takes a batch of mel-cepstrogram crops x of speakers c'; each is converted
to a speaker c drawn by shuffling the batch's own (as StarGAN). With each λ the weight of
the recipe's loss table of that name, the two updates minimise

    D and C:  softplus(−D(x, c')) + softplus(D(G(x, c), c)) + λ_cls·CE(C(x), c')
    G:        softplus(−D(G(x, c), c)) + λ_cls·CE(C(G(x, c)), c) + λ_cyc·‖x − G(G(x, c), c')‖₁
              + λ_id·‖x − G(x, c')‖₁

averaged over the batch and over D's stretches of frames (``adversarial``:
``nonsaturating``, the paper's cross-entropy; ``classification``:
``domain_classification``; ``reconstruction``: ``cycle_l1``; ``identity``:
``identity_l1``, all mdt's own losses, read by name). A recipe may add to D and C's sum
λ_src·CE(C(G(x, c)), c'), C taught that a conversion is still its source speaker (a
loss table of type ``conversion_source``, :mod:`mdt_stargan_vc.losses`; not the paper's). D and C take no parameters from
each other, so one update steps both. Learning rates decay linearly to zero over the last
``decay_iterations``. With ``ema_decay`` above 0, conversions use a moving average of G's
weights (as mdt's StarGAN and StarGAN v2 can), which a GAN's oscillating generator
settles into; not the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import torch

from mdt.data import Batch
from mdt.ema import ema_update, moving_average
from mdt.errors import MdtError
from mdt.labels import LabelEncoder
from mdt.method import Method, Role, Translator, in_eval_mode
from mdt.optim import adam
from mdt.options import Option
from mdt.ranges import Beta, Count, Positive, Rate
from mdt.schedule import linear_decay


class VCState:
    """What the losses of one update may read; each value is computed on first use.
    Samples are (B, 1, 36, T) standardised mel-cepstrograms in [-1, 1]."""

    phase: str  # "discriminator" or "generator"
    encoder: LabelEncoder  # one-hot speakers and the classification loss
    real: torch.Tensor  # the batch's mel-cepstrograms
    labels: torch.Tensor  # their speakers
    source: int  # their dataset
    target_labels: torch.Tensor  # the speakers they are converted to

    def __init__(self, phase: str, method: StarGANVC, batch: Batch, target_labels: torch.Tensor) -> None:
        self.phase = phase
        self._method = method
        self.encoder = method.encoder
        self.real, self.labels, self.source = batch.images, batch.labels, batch.source
        self.target_labels = target_labels

    def _autocast(self):
        return self._method.update.autocast(self.real.device)

    def _condition(self, labels: torch.Tensor) -> torch.Tensor:
        return self.encoder.encode(labels, self.source)

    @cached_property
    def fake(self) -> torch.Tensor:
        """G(real, target): the conversions (a constant in the discriminator phase)."""
        with torch.set_grad_enabled(self.phase == "generator"), self._autocast():
            return self._method.generator(self.real, self._condition(self.target_labels)).float()

    @property
    def real_scores(self) -> torch.Tensor:
        """D(real, its own speaker): logits per stretch of frames."""
        with self._autocast():
            return self._method.discriminator(self.real, self._condition(self.labels)).float()

    @property
    def fake_scores(self) -> torch.Tensor:
        """D(fake, the target speaker)."""
        with self._autocast():
            return self._method.discriminator(self.fake, self._condition(self.target_labels)).float()

    @property
    def real_logits(self) -> torch.Tensor:
        """C(real): speaker logits."""
        with self._autocast():
            return self._method.classifier(self.real).float()

    @property
    def fake_logits(self) -> torch.Tensor:
        """C(fake)."""
        with self._autocast():
            return self._method.classifier(self.fake).float()

    @cached_property
    def reconstruction(self) -> torch.Tensor:
        """G(fake, the real speaker): the cycle back."""
        with self._autocast():
            return self._method.generator(self.fake, self._condition(self.labels)).float()

    @cached_property
    def identity(self) -> torch.Tensor:
        """G(real, its own speaker): a conversion that asks for no change."""
        with self._autocast():
            return self._method.generator(self.real, self._condition(self.labels)).float()


class StarGANVC(Method):
    """StarGAN-VC: gated CNNs, cross-entropy adversarial loss with a conditional D, a domain
    classifier C, cycle and identity losses; Adam (β1 0.5)."""

    citation = """@inproceedings{kameoka2018starganvc,
  title = {StarGAN-VC: Non-parallel many-to-many voice conversion using star generative adversarial networks},
  author = {Kameoka, Hirokazu and Kaneko, Takuhiro and Tanaka, Kou and Hojo, Nobukatsu},
  booktitle = {IEEE Spoken Language Technology Workshop (SLT)},
  year = {2018}
}"""

    precisions = ("fp32", "bf16")
    label_layout = "one_class"  # one speaker per recording
    phases = {"discriminator": VCState, "generator": VCState}
    roles = {
        "generator": Role(
            "generator", inputs=("images", "labels"), outputs=("image",), optimizer="generator", inference=True,
            description="G(x, c): a mel-cepstrogram and the target speaker -> the converted mel-cepstrogram",
        ),
        "discriminator": Role(
            "discriminator", inputs=("images", "labels"), outputs=("scores",), optimizer="discriminator",
            description="D(x, c): is x a real recording of speaker c, per stretch of frames",
        ),
        "classifier": Role(
            "domain_classifier", inputs=("images",), outputs=("logits",), optimizer="discriminator",
            description="C(x): which speaker x sounds like",
        ),
    }  # fmt: skip

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        classifier: torch.nn.Module,
        label_encoder: LabelEncoder,
        losses: Mapping[str, object],
        iterations: int,
        precision: str = "fp32",
        lr_generator: Rate = 1e-3,
        lr_discriminator: Rate = 1e-4,
        beta1: Beta = 0.5,
        beta2: Beta = 0.999,
        d_steps_per_g: Positive = 1,
        decay_iterations: Count = 0,
        ema_decay: Beta = 0.0,
    ) -> None:
        self.generator, self.discriminator, self.classifier = generator, discriminator, classifier
        self.encoder = label_encoder
        self.losses = dict(losses)
        self.iterations, self.precision = iterations, precision
        self.base_lr = {"generator": lr_generator, "discriminator": lr_discriminator}
        self.betas = (beta1, beta2)
        self.d_steps_per_g = d_steps_per_g
        self.decay_iterations = decay_iterations
        self.ema_decay = ema_decay
        self.generator_ema = moving_average(generator) if ema_decay else None
        self._last_generator_values: dict[str, float] = {}

    @cached_property
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        critics = [*self.discriminator.parameters(), *self.classifier.parameters()]
        return {
            "generator": adam(self.generator.parameters(), self.base_lr["generator"], self.betas),
            "discriminator": adam(critics, self.base_lr["discriminator"], self.betas),
        }

    def networks(self) -> dict[str, torch.nn.Module]:
        networks = {"generator": self.generator, "discriminator": self.discriminator, "classifier": self.classifier}
        if self.generator_ema is not None:
            networks["generator_ema"] = self.generator_ema
        return networks

    @property
    def inference_networks(self) -> tuple[str, ...]:
        return ("generator_ema",) if self.generator_ema is not None else ("generator",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def train_step(self, batches: Sequence[Batch], step: int) -> dict[str, float]:
        factor = linear_decay(step, self.iterations, self.decay_iterations)
        rates = {name: lr * factor for name, lr in self.base_lr.items()}
        self.update.start(step, rates)
        with_generator = (step + 1) % self.d_steps_per_g == 0
        generator_keys: list[str] = []
        for batch in batches:
            targets = self.encoder.sample_targets(batch.labels, batch.source)
            self.update("discriminator", {"D": VCState("discriminator", self, batch, targets)}, step=["discriminator"])
            if with_generator:
                state = VCState("generator", self, batch, targets)
                generator_keys += self.update("generator", {"G": state}, step=["generator"], freeze=[self.discriminator, self.classifier])
                if self.generator_ema is not None:
                    ema_update(self.generator, self.generator_ema, self.ema_decay)
        values = self.update.values()
        self._last_generator_values.update({k: values[k] for k in generator_keys})
        return {**values, **self._last_generator_values, "lr": rates["generator"]}

    def state(self) -> dict:
        return {"last_generator_values": self._last_generator_values}

    def load_state(self, state: dict) -> None:
        self._last_generator_values = dict(state.get("last_generator_values", {}))

    def translator(self) -> VCTranslator:
        generator = self.generator_ema if self.generator_ema is not None else self.generator
        return VCTranslator(generator, self.classifier, self.encoder)


class VCTranslator(Translator):
    """Convert to a target speaker (``to``); a grid shows every speaker."""

    def __init__(self, generator, classifier, encoder: LabelEncoder) -> None:
        self.generator, self.classifier, self.encoder = generator, classifier, encoder
        self.schemas = encoder.schemas
        self.speakers = [name for schema in self.schemas for name in schema.names]
        self.options = (Option("to", "choice", "the target speaker", choices=tuple(self.speakers), needed=("translate",), grid=False),)

    def _one_hot(self, speaker: str, count: int, device: torch.device) -> tuple[torch.Tensor, int]:
        dataset, name = self.encoder.find(speaker)
        schema = self.schemas[dataset]
        labels = torch.zeros(count, len(schema), device=device)
        labels[:, schema.names.index(name)] = 1.0
        return labels, dataset

    @torch.no_grad()
    def convert(self, images: torch.Tensor, labels: torch.Tensor, dataset: int) -> torch.Tensor:
        in_eval_mode(self.generator)
        return self.generator(images, self.encoder.encode(labels, dataset))

    def translate(self, images: torch.Tensor, to: str | None = None) -> torch.Tensor:  # type: ignore[override]
        if not to:
            raise MdtError(f"name the target speaker: --to {self.speakers[0]}")
        labels, dataset = self._one_hot(to, images.shape[0], images.device)
        return self.convert(images, labels, dataset)

    @torch.no_grad()
    def grid(self, images: torch.Tensor, source: int | None = None, labels: torch.Tensor | None = None) -> tuple[list, list[str]]:  # type: ignore[override]
        columns = [self.translate(images, to=speaker) for speaker in self.speakers]
        rows = [[images[i]] + [c[i] for c in columns] for i in range(images.shape[0])]
        return rows, list(self.speakers)

    def to_labels(self, images: torch.Tensor, labels: torch.Tensor, dataset: int, base: Any = None, **request: Any) -> torch.Tensor:
        return self.convert(images, labels, dataset)
