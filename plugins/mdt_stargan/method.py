"""The ``stargan`` method: one generator, one discriminator, all domains.

Each iteration takes one batch per dataset (several datasets: the paper's joint
training with a mask vector). Per batch the discriminator is updated, and every
``d_steps_per_g``-th iteration (from iteration ``generator_start``, 0 in the paper) the
generator too, minimising (x an image with labels c', c its target: the batch's own
labels shuffled, as in the official code; each λ is the weight of the recipe's loss
table of that name):

    D:  −D_src(x) + D_src(G(x, c)) + λ_gp·(‖∇D_src(x̂)‖₂ − 1)² + λ_cls·L_cls(D_cls(x), c')       λ_gp = 10, λ_cls = 1
    G:  −D_src(G(x, c)) + λ_cls·L_cls(D_cls(G(x, c)), c) + λ_rec·‖x − G(G(x, c), c')‖₁           λ_rec = 10

averaged over the batch, x̂ a random mix of x and G(x, c) (``adversarial``,
``gradient_penalty``, ``classification``, ``reconstruction``; the plus recipes add
``identity``, λ_id·‖x − G(x, c')‖₁, to G's sum; a recipe may add ``translation_source``,
λ_src·L_cls(D_cls(G(x, c)), c'), to D's: a translation still has its source's labels).
An iteration with both updates runs G on the batch for the fakes once: the
discriminator's update keeps G's graph and hands them on (the official code computes
them again with the same G; ``mdt.reuse`` replays what that second forward does to G's
running statistics). Learning rates decay linearly to zero over the last
``decay_iterations`` iterations (at most the whole run).

A method built on StarGAN (GANimation) subclasses :class:`StarGAN`, :class:`StepState`
and :class:`StarGANTranslator`; their public members are its extension points:
``StepState.translation`` (G's whole output) and ``for_phase``, and the translator's
``example_names``, ``target_dataset``, ``input_labels``, ``generate`` and ``read_labels``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

import torch

from mdt.data import Batch
from mdt.ema import ema_update, moving_average
from mdt.errors import MdtError
from mdt.labels import LabelEncoder, column_labels, set_labels
from mdt.method import Method, Role, Translator, in_eval_mode, main_output
from mdt.optim import adam
from mdt.options import Option
from mdt.ranges import Beta, Count, Positive, Rate
from mdt.reuse import recorded_forward
from mdt.schedule import linear_decay


class StepState:
    """What the losses of one update may read (in both phases); each value is computed on
    first use. Images are (B, 3, S, S) in [-1, 1]; labels are in the batch's dataset's space."""

    phase: str  # "discriminator" or "generator"
    generator: torch.nn.Module  # G(x, c)
    discriminator: torch.nn.Module  # D(x) -> (scores, logits)
    encoder: LabelEncoder  # the label encoder: conditions and the classification loss
    real: torch.Tensor  # the batch's images
    real_input: torch.Tensor  # the same, requiring grad in the discriminator phase (R1)
    labels: torch.Tensor  # their labels
    source: int  # the index of their dataset
    target_labels: torch.Tensor  # the labels each image is translated to

    def __init__(self, phase: str, method: StarGAN, batch: Batch, target_labels: torch.Tensor, handoff: dict | None = None) -> None:
        self.phase = phase
        # Shared by the two updates of one iteration (None when only D is updated): the
        # discriminator's phase leaves its fakes there for the generator's.
        self._handoff = handoff
        self._update = method.update
        self.generator = method.generator
        self.discriminator = method.discriminator
        self.encoder = method.encoder
        self.real = batch.images
        self.labels = batch.labels
        self.source = batch.source
        self.target_labels = target_labels
        # A penalty on real images (R1) differentiates D's real scores by the images; only
        # then do the real images carry a gradient (else it would cost D's first layer).
        self._real_gradient = phase == "discriminator" and any("real_input" in loss.reads.get(phase, ()) for loss in method.losses.values())

    def autocast(self):
        """Network forwards run in bf16 when the run computes in it; every loss is computed in fp32."""
        return self._update.autocast(self.real.device)

    def _discriminate(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with self.autocast():
            scores, logits = self.discriminator(images)
        return scores.float(), logits.float()

    @cached_property
    def _real_and_fake_out(self):
        """D on real and fake images in one batch: the same values as two calls (D has no
        batch statistics), but each weight is read once, which matters where D is weight-bound."""
        real = self.real_input if self._real_gradient else self.real
        scores, logits = self._discriminate(torch.cat([real, self.fake]))
        n = self.real.shape[0]
        return (scores[:n], logits[:n]), (scores[n:], logits[n:])

    @cached_property
    def _real_out(self):
        if self.phase == "discriminator":
            return self._real_and_fake_out[0]
        return self._discriminate(self.real)

    @cached_property  # type: ignore[no-redef]  # annotated above too: its place among the listed fields
    def real_input(self) -> torch.Tensor:
        """The real images as a leaf that requires grad (discriminator phase), for R1;
        ``real_scores`` are computed from it when a loss reads it."""
        return self.real.detach().requires_grad_(self.phase == "discriminator")

    @property
    def real_scores(self) -> torch.Tensor:
        """D's real/fake map of the real images."""
        return self._real_out[0]

    @property
    def real_logits(self) -> torch.Tensor:
        """D's domain logits of the real images."""
        return self._real_out[1]

    @cached_property
    def translation(self) -> Any:
        """G's whole output for (real, target): the image, or a tuple of the generator's
        declared outputs (image, mask, ...). With G's graph where the generator's update
        will use it: computed once in an iteration with both updates when G's forward can be
        reused (``mdt.reuse``), else in each phase as the official code does."""
        handoff = self._handoff
        if self.phase == "generator" and handoff and "translation" in handoff:
            translation, record = handoff.pop("translation")
            record.replay()
            return translation
        keep = self.phase == "discriminator" and handoff is not None
        condition = self.encoder.encode(self.target_labels, self.source)
        with (
            torch.set_grad_enabled(self.phase == "generator" or keep),
            self.autocast(),
            recorded_forward(self.generator, self.real.device) as record,
        ):
            translation = self.generator(self.real, condition)
        if keep and handoff is not None and record.reusable:  # keep: there is a handoff
            handoff["translation"] = (translation, record)
        return translation

    def for_phase(self, value: torch.Tensor) -> torch.Tensor:
        """What G made, cut from G's graph in the discriminator phase (which must not train G)."""
        return value if self.phase == "generator" else value.detach()

    @cached_property
    def fake(self) -> torch.Tensor:
        """G(real, target): the translations (a constant in the discriminator phase)."""
        return self.for_phase(main_output(self.translation).float())

    @cached_property
    def _fake_out(self):
        if self.phase == "discriminator":
            return self._real_and_fake_out[1]
        return self._discriminate(self.fake)

    @property
    def fake_scores(self) -> torch.Tensor:
        """D's real/fake map of the translations."""
        return self._fake_out[0]

    @property
    def fake_logits(self) -> torch.Tensor:
        """D's domain logits of the translations."""
        return self._fake_out[1]

    @cached_property
    def mix_weights(self) -> torch.Tensor:
        """Uniform weights (B, 1, 1, 1) for mixing real and fake images (gradient penalty)."""
        return torch.rand(self.real.shape[0], 1, 1, 1, device=self.real.device)

    @cached_property
    def identity(self) -> torch.Tensor:
        """G(real, the real images' own labels): a translation that asks for no change."""
        with self.autocast():
            return main_output(self.generator(self.real, self.encoder.encode(self.labels, self.source))).float()

    @cached_property
    def reconstruction(self) -> torch.Tensor:
        """G(fake, the real images' labels): the cycle back."""
        with self.autocast():
            return main_output(self.generator(self.fake, self.encoder.encode(self.labels, self.source))).float()


class StarGAN(Method):
    """StarGAN (Choi et al. 2018): WGAN-GP, domain classification and cycle losses; Adam(1e-4, 0.5, 0.999)."""

    citation = """@inproceedings{choi2018stargan,
  title = {StarGAN: Unified Generative Adversarial Networks for Multi-Domain Image-to-Image Translation},
  author = {Choi, Yunjey and Choi, Minje and Kim, Munyoung and Ha, Jung-Woo and Kim, Sunghun and Choo, Jaegul},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2018}
}"""

    precisions = ("fp32", "bf16")  # its step states run the networks under self.update.autocast

    phases = {"discriminator": StepState, "generator": StepState}
    roles = {
        "generator": Role(
            "generator",
            inputs=("images", "labels"),
            outputs=("image",),
            optimizer="generator",
            inference=True,
            description="G(x, c): the input and the target's condition vector -> the translation",
        ),
        "discriminator": Role(
            "discriminator",
            inputs=("images",),
            outputs=("scores", "logits"),
            optimizer="discriminator",
            description="D(x) -> (real/fake patch map, domain logits); reads an input's labels at translation",
        ),
    }

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        label_encoder: LabelEncoder,
        losses: Mapping[str, object],
        iterations: int,
        image_size: int,
        precision: str = "fp32",
        lr_generator: Rate = 1e-4,
        lr_discriminator: Rate = 1e-4,
        beta1: Beta = 0.5,
        beta2: Beta = 0.999,
        d_steps_per_g: Positive = 5,
        decay_iterations: Count = 100000,
        ema_decay: Beta = 0.0,
        generator_start: Count = 0,
    ) -> None:
        if d_steps_per_g < 1:
            raise ValueError("d_steps_per_g must be at least 1")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {ema_decay}")
        self.generator = generator
        # Not in the paper (StarGAN v2 has it): a moving average of G's weights, updated
        # after each G step, translates and draws the samples; 0 (the default) is off.
        self.ema_decay = ema_decay
        self.generator_ema = moving_average(generator) if ema_decay else None
        self.discriminator = discriminator
        self.encoder = label_encoder
        self.losses = dict(losses)
        self.iterations = iterations
        self.image_size = image_size
        self.precision = precision
        self.base_lr = {"generator": lr_generator, "discriminator": lr_discriminator}
        self.d_steps_per_g = d_steps_per_g
        # Not in the paper (0: off): D alone for the first generator_start iterations, so
        # that G's first steps already learn from a classifier that reads the domains.
        self.generator_start = generator_start
        self.decay_iterations = decay_iterations
        self.betas = (beta1, beta2)
        self._last_generator_values: dict[str, float] = {}

    # Built when training first asks: a model loaded to translate never builds them (torch's
    # first optimizer imports its compiler, seconds of every `mdt translate`).
    @cached_property
    def g_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.generator.parameters(), self.base_lr["generator"], self.betas)

    @cached_property
    def d_optimizer(self) -> torch.optim.Optimizer:
        return adam(self.discriminator.parameters(), self.base_lr["discriminator"], self.betas)

    def networks(self):
        networks = {"generator": self.generator, "discriminator": self.discriminator}
        if self.generator_ema is not None:
            networks["generator_ema"] = self.generator_ema
        return networks

    @property
    def inference_networks(self) -> tuple[str, ...]:
        return ("generator_ema",) if self.generator_ema is not None else ("generator",)

    @property
    def translating_generator(self) -> torch.nn.Module:
        """The generator translations use: the moving average when there is one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def optimizers(self):
        return {"generator": self.g_optimizer, "discriminator": self.d_optimizer}

    def learning_rates(self, step: int) -> dict[str, float]:
        factor = linear_decay(step, self.iterations, self.decay_iterations)
        return {name: lr * factor for name, lr in self.base_lr.items()}

    def train_step(self, batches: Sequence[Batch], step: int) -> dict[str, float]:
        rates = self.learning_rates(step)
        self.update.start(step, rates)
        with_generator = step >= self.generator_start and (step + 1) % self.d_steps_per_g == 0
        generator_keys: list[str] = []
        for batch in batches:
            prefix = f"{self.encoder.schemas[batch.source].dataset}/" if len(self.encoder.schemas) > 1 else ""
            targets = self.encoder.sample_targets(batch.labels, batch.source)
            handoff: dict[str, Any] | None = {} if with_generator else None  # D's update hands its fakes on to G's (mdt.reuse)
            self.update_phase("discriminator", batch, targets, handoff, prefix)
            if with_generator:
                generator_keys += self.update_phase("generator", batch, targets, handoff, prefix)
                if self.generator_ema is not None:
                    ema_update(self.generator, self.generator_ema, self.ema_decay)
        values = self.update.values()
        # An iteration without G's update logs the values of the last one (a log line has them all).
        self._last_generator_values.update({k: values[k] for k in generator_keys})
        return {**values, **self._last_generator_values, "lr": rates["generator"]}

    def update_phase(
        self, phase: str, batch: Batch, targets: torch.Tensor, handoff: dict | None = None, prefix: str = ""
    ) -> dict[str, torch.Tensor]:
        """One update on ``batch`` towards ``targets``: D's, or G's with D held still."""
        state = self.phases[phase](phase, self, batch, targets, handoff)
        if phase == "discriminator":
            return self.update(phase, {prefix + "D": state}, step=["discriminator"])
        return self.update(phase, {prefix + "G": state}, step=["generator"], freeze=[self.discriminator])

    def state(self) -> dict:
        return {"last_generator_values": self._last_generator_values}

    def load_state(self, state: dict) -> None:
        self._last_generator_values = dict(state.get("last_generator_values", {}))

    def translator(self) -> StarGANTranslator:
        return StarGANTranslator(self.translating_generator, self.discriminator, self.encoder, self.image_size)


class StarGANTranslator(Translator):
    """Translate images to target labels; values not named keep the source's, read by D."""

    def __init__(self, generator, discriminator, encoder: LabelEncoder, image_size: int) -> None:
        self.generator, self.discriminator, self.encoder = generator, discriminator, encoder
        self.image_size = image_size
        self.schemas = encoder.schemas
        first, second = self.example_names()
        self.options = (  # the examples name this model's own labels (`mdt translate --checkpoint RUN --help`)
            Option(
                "to",
                "labels",
                "the target labels; the others keep the input's",
                needed=("translate",),
                grid=False,
                sample=f"{first},{second}=0",
            ),
            Option(
                "known",
                "labels",
                "labels of the input; by default the discriminator reads them",
                flag="from",
                page=False,
                sample=f"{first},{second}",
            ),
        )

    def example_names(self) -> tuple[str, str]:
        """Two of the model's label names for the options' examples (one twice if it has one)."""
        names = self.schemas[0].names
        return names[0], names[1] if len(names) > 1 else names[0]

    @torch.no_grad()
    def generate(self, images: torch.Tensor, labels: torch.Tensor, dataset: int) -> torch.Tensor:
        """G(x, c) with c the condition of ``labels`` of ``dataset``: the one place the
        translator calls the generator (a method whose generator returns more overrides it)."""
        in_eval_mode(self.generator)
        return main_output(self.generator(images, self.encoder.encode(labels, dataset)))

    def reads_labels(self) -> bool:
        return "discriminator" not in self.missing_networks

    @torch.no_grad()
    def read_labels(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """Labels of ``dataset`` that the discriminator's classifier reads off ``images``."""
        if "discriminator" in self.missing_networks:
            raise MdtError("this checkpoint has no discriminator to read the input's labels; give them all with --from")
        in_eval_mode(self.discriminator)
        _, logits = self.discriminator(images)
        return self.encoder.predict(logits, dataset)

    @torch.no_grad()
    def to_labels(  # type: ignore[override]  # no options of its own
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset: int,
        base=None,
    ) -> torch.Tensor:
        """Translate to exact target labels of ``dataset`` (B, n); the labels are the whole request."""
        in_eval_mode(self.generator)
        return self.generate(images, labels, dataset)

    def target_dataset(self, names: Sequence[str]) -> tuple[int, dict[str, str]]:
        """The one dataset whose labels ``names`` are (``celeba.Male`` or a name of one dataset),
        and each name's label there."""
        found = {name: self.encoder.find(name) for name in names}
        datasets = {d for d, _ in found.values()}
        if len(datasets) > 1:
            raise MdtError("target labels come from several datasets: " + ", ".join(found) + "; translate to one at a time")
        return datasets.pop(), {name: label for name, (_, label) in found.items()}

    @torch.no_grad()
    def input_labels(self, images: torch.Tensor, dataset: int, known: Mapping[str, float] | None) -> torch.Tensor:
        """Labels of the inputs in ``dataset``'s space: ``known`` where given, else read by D."""
        schema = self.encoder.schemas[dataset]
        names = {}
        for name, value in (known or {}).items():
            known_dataset, label = self.encoder.find(name)
            if known_dataset != dataset:
                raise MdtError(f"--from names '{name}', a label of another dataset than the target")
            names[label] = value
        if {schema.group_of(n) for n in names} >= {schema.group_of(n) for n in schema.names} and names:
            base = torch.zeros(images.shape[0], len(schema), device=images.device)  # everything is known
        else:
            base = self.read_labels(images, dataset)
        return set_labels(schema, base, names)

    def translate(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        to: Mapping[str, float] | None = None,
        known: Mapping[str, float] | None = None,
    ) -> torch.Tensor:
        """``to``: label name -> 0/1 for the target; ``known``: known labels of the inputs."""
        if not to:
            raise MdtError("name at least one target label, for example --to Blond_Hair")
        dataset, labels_to = self.target_dataset(list(to))
        schema = self.encoder.schemas[dataset]
        base = self.input_labels(images, dataset, known)
        target = set_labels(schema, base, {labels_to[n]: v for n, v in to.items()})
        in_eval_mode(self.generator)
        return self.generate(images, target, dataset)

    @torch.no_grad()
    def grid(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        source: int | None = None,
        labels: torch.Tensor | None = None,
        known: Mapping[str, float] | None = None,
    ):
        """Each input followed by its translation to every grid column of the encoder.

        ``source`` and ``labels``: the inputs' dataset and labels when known (training
        samples); ``known``: some labels by name; anything else is read by D."""
        in_eval_mode(self.generator)
        columns, titles = [], []
        for title, dataset, assignments in self.encoder.targets():
            if labels is not None and dataset == source:
                base = labels
            else:
                known_here = {n: v for n, v in (known or {}).items() if self.encoder.find(n)[0] == dataset}
                base = self.input_labels(images, dataset, known_here)
            target = column_labels(self.encoder.schemas[dataset], base, assignments)
            columns.append(self.generate(images, target, dataset))
            titles.append(title)
        rows = [[images[i]] + [c[i] for c in columns] for i in range(images.shape[0])]
        return rows, titles
