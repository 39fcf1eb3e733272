"""The ``stargan_v2`` method: diverse translation with styles from noise or from references.

Each iteration takes a class-balanced batch of sources and a class-balanced batch of
reference pairs (two images of the same domain), and makes four updates in the
paper's order:

1. D, with fakes made from latent styles (mapping network);
2. D, with fakes made from reference styles (style encoder);
3. G with latent styles, updating the generator, mapping network and style encoder;
4. G with reference styles, updating the generator only;

then moves the exponential moving averages of G, F and E, which make the sample
grids, the metrics and every translation. With x of domain y, a target domain ỹ, a style
s = F(z, ỹ) or E(x_ref, ỹ) and a second s₂ (from z₂ or x_ref2), each update minimises
(λ: the weight of the recipe's loss table of that name; D(·)_y the logit of domain y):

    D:  −log σ(D(x)_y) − log(1 − σ(D(G(x, s))_ỹ)) + λ_r1·½‖∇ₓD(x)_y‖²
    G:  −log σ(D(G(x, s))_ỹ) + λ_sty·‖s − E(G(x, s), ỹ)‖₁ − λ_ds(step)·‖G(x, s) − G(x, s₂)‖₁
        + λ_cyc·‖x − G(G(x, s), E(x, y))‖₁

averaged over the batch (``adversarial``, ``r1``, ``style``, ``diversity``, ``cycle``);
λ_ds falls linearly to 0 over the diversity loss's ``decay_iterations``, and G(x, s₂) is
a constant in it, as in the paper's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import cast

import torch

from mdt.data import Batch
from mdt.ema import ema_update, moving_average
from mdt.errors import MdtError, did_you_mean
from mdt.labels import LabelEncoder, LabelSchema
from mdt.method import Method, Role, Translator, in_eval_mode
from mdt.optim import adam
from mdt.options import Option
from mdt.ranges import Beta, Rate, Weight
from mdt_stargan_v2.landmarks import FaceAlignmentNetwork


def domains(labels: torch.Tensor) -> torch.Tensor:
    """One-hot labels (B, K) -> domain indices (B,)."""
    return labels.argmax(dim=1)


class StepState:
    """What the losses of one update may read (in both phases); each value is computed on
    first use. Images are (B, 3, S, S) in [-1, 1]; domains are indices (B,)."""

    phase: str  # "discriminator" or "generator"
    mode: str  # "latent" (styles from z, mapping network) or "reference" (styles of reference images, style encoder)
    real: torch.Tensor  # the source images
    source_domain: torch.Tensor  # their domains
    target_domain: torch.Tensor  # the domains they are translated to

    def __init__(
        self,
        phase: str,
        mode: str,
        method: StarGANv2,
        source: Batch,
        targets: torch.Tensor,
        style_inputs: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        self.phase, self.mode, self._method = phase, mode, method
        self.real = source.images
        self.source_domain = domains(source.labels)
        self.target_domain = targets
        self._style_inputs = style_inputs  # (z, z2) or (reference, reference2)

    def autocast(self):
        """Network forwards run in bf16 when the run computes in it; every loss is computed in fp32."""
        return self._method.update.autocast(self.real.device)

    def _style(self, which: int) -> torch.Tensor:
        inputs = self._style_inputs[which]
        network = self._method.mapping_network if self.mode == "latent" else self._method.style_encoder
        with torch.set_grad_enabled(self.phase == "generator"), self.autocast():
            return network(inputs, self.target_domain).float()

    @cached_property
    def real_masks(self):
        """Face-landmark masks of the inputs (None unless the generator has high-pass skips)."""
        return self._method.masks(self.real)

    @cached_property
    def target_style(self) -> torch.Tensor:
        """The style the translation is made with (from the first z, or the first reference)."""
        return self._style(0)

    @cached_property
    def fake(self) -> torch.Tensor:
        """G(real, target_style): the translations (a constant in the discriminator phase)."""
        with torch.set_grad_enabled(self.phase == "generator"), self.autocast():
            return self._method.generator(self.real, self.target_style, self.real_masks).float()

    @cached_property
    def other_fake(self) -> torch.Tensor:
        """The same inputs with the second style; a constant for the losses."""
        style = self._style(1).detach()
        with torch.no_grad(), self.autocast():
            return self._method.generator(self.real, style, self.real_masks).float()

    def _scores(self, images: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            out = self._method.discriminator(images).float()
        return out[torch.arange(out.shape[0], device=out.device), domain]

    @cached_property
    def real_input(self) -> torch.Tensor:
        """The real images as a leaf that requires grad, for the R1 penalty."""
        return self.real.detach().requires_grad_(self.phase == "discriminator")

    @cached_property
    def real_scores(self) -> torch.Tensor:
        """D's logit for each real image in its own domain (from ``real_input``)."""
        return self._scores(self.real_input, self.source_domain)

    @cached_property
    def fake_scores(self) -> torch.Tensor:
        """D's logit for each translation in its target domain."""
        return self._scores(self.fake, self.target_domain)

    @cached_property
    def predicted_style(self) -> torch.Tensor:
        """E(fake, target domain): the style the style encoder reads off the translation."""
        with self.autocast():
            return self._method.style_encoder(self.fake, self.target_domain).float()

    @cached_property
    def source_style(self) -> torch.Tensor:
        """E(real, source domain): the real image's own style."""
        with self.autocast():
            return self._method.style_encoder(self.real, self.source_domain).float()

    @cached_property
    def reconstruction(self) -> torch.Tensor:
        """G(fake, source_style): the cycle back."""
        with self.autocast():
            return self._method.generator(self.fake, self.source_style, self._method.masks(self.fake.detach())).float()


class StarGANv2(Method):
    """StarGAN v2 (Choi et al. 2020): Adam(1e-4, 0, 0.99), weight decay 1e-4, mapping
    network at 1e-6, EMA 0.999 of G, F and E."""

    citation = """@inproceedings{choi2020starganv2,
  title = {StarGAN v2: Diverse Image Synthesis for Multiple Domains},
  author = {Choi, Yunjey and Uh, Youngjung and Yoo, Jaejun and Ha, Jung-Woo},
  booktitle = {Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year = {2020}
}"""

    precisions = ("fp32", "bf16")  # its step states run the networks under self.update.autocast

    roles = {
        "generator": Role(
            "generator",
            inputs=("images", "style", "landmark_masks"),
            outputs=("image",),
            optimizer="generator",
            description="G(x, s): an input and a style code -> the translation",
        ),
        "discriminator": Role(
            "discriminator",
            inputs=("images",),
            outputs=("domain_scores",),
            optimizer="discriminator",
            description="D(x) -> one real/fake logit per domain",
        ),
        "mapping_network": Role(
            "mapping_network",
            inputs=("latent", "domains"),
            outputs=("style",),
            optimizer="mapping_network",
            description="F(z, y): noise -> a style of domain y",
        ),
        "style_encoder": Role(
            "style_encoder",
            inputs=("images", "domains"),
            outputs=("style",),
            optimizer="style_encoder",
            description="E(x, y): a reference image -> its style in domain y",
        ),
    }
    label_layout = "one_class"
    samplers = {"source": "balanced", "reference": "balanced_pairs"}
    phases = {"discriminator": StepState, "generator": StepState}
    inference_networks = ("generator_ema", "mapping_network_ema", "style_encoder_ema")

    @staticmethod
    def networks_problem(arguments):
        """The generator, mapping network and style encoder take one style_dim (written or by default)."""
        styled = ("generator", "mapping_network", "style_encoder")
        for role in styled:
            if "style_dim" not in arguments[role]:
                return f"needs a style_dim in its {role}, but [networks.{role}] takes none"
        sizes = {role: arguments[role]["style_dim"] for role in styled}
        if len(set(sizes.values())) > 1:
            shown = ", ".join(f"{role} {size}" for role, size in sizes.items())
            return f"needs one style_dim in its networks, but they have {shown}; set [networks.<role>] style_dim the same in all 3"
        return None

    def __init__(
        self,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        mapping_network: torch.nn.Module,
        style_encoder: torch.nn.Module,
        label_encoder: LabelEncoder,
        losses: Mapping[str, object],
        image_size: int,
        precision: str = "fp32",
        lr: Rate = 1e-4,
        lr_mapping_network: Rate = 1e-6,
        beta1: Beta = 0.0,
        beta2: Beta = 0.99,
        weight_decay: Weight = 1e-4,
        ema_decay: Beta = 0.999,
        landmark_weights: str = "",
    ) -> None:
        schemas = label_encoder.schemas
        if len(schemas) != 1 or not schemas[0].categorical:
            raise MdtError("stargan_v2 needs one dataset with one domain per image, such as domain_folders with [labels] type = 'one_hot'")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), not {ema_decay}")
        if landmark_weights and not Path(landmark_weights).is_file():
            raise MdtError(f"landmark_weights '{landmark_weights}' does not exist; give the path of StarGAN v2's wing.ckpt")
        self.landmark_weights = landmark_weights
        self._landmarks: FaceAlignmentNetwork | None = None
        if mapping_network.style_dim != generator.style_dim or style_encoder.style_dim != generator.style_dim:
            raise MdtError(
                f"style sizes differ: generator {generator.style_dim}, mapping_network {mapping_network.style_dim}, "
                f"style_encoder {style_encoder.style_dim}; set style_dim the same in all three"
            )
        self.generator, self.discriminator = generator, discriminator
        self.mapping_network, self.style_encoder = mapping_network, style_encoder
        self.encoder = label_encoder
        self.domain_names = schemas[0].names
        self.losses = dict(losses)
        self.image_size, self.precision, self.ema_decay = image_size, precision, ema_decay
        self.latent_dim = cast(int, mapping_network.latent_dim)  # an int; torch types a module's attributes Tensor | Module
        # The averages start from the initial weights (the official code starts them from
        # PyTorch's default initialisation instead, before He initialisation).
        self.generator_ema = moving_average(generator)
        self.mapping_network_ema = moving_average(mapping_network)
        self.style_encoder_ema = moving_average(style_encoder)
        self.betas, self.weight_decay = (beta1, beta2), weight_decay
        self._rates = {"generator": lr, "mapping_network": lr_mapping_network, "style_encoder": lr, "discriminator": lr}
        self._last_values: dict[str, float] = {}

    @cached_property
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Built when training first asks: a model loaded to translate never builds them
        (torch's first optimizer imports its compiler, seconds of every `mdt translate`)."""
        return {name: adam(getattr(self, name).parameters(), rate, self.betas, self.weight_decay) for name, rate in self._rates.items()}

    def networks(self):
        return {
            "generator": self.generator,
            "mapping_network": self.mapping_network,
            "style_encoder": self.style_encoder,
            "discriminator": self.discriminator,
            "generator_ema": self.generator_ema,
            "mapping_network_ema": self.mapping_network_ema,
            "style_encoder_ema": self.style_encoder_ema,
        }

    def optimizers(self):
        return dict(self._optimizers)

    def train_step(self, batches: Sequence[Batch], step: int) -> dict[str, float]:
        self.update.start(step)
        source = next(b for b in batches if b.role == "source")
        pairs = next(b for b in batches if b.role == "reference")
        half = pairs.images.shape[0] // 2
        # With run.skip_bad_files an unreadable source leaves that batch short: use as many pairs.
        batch = min(source.images.shape[0], half)
        source = Batch(source.images[:batch], source.labels[:batch], source.source, source.role)
        targets = domains(pairs.labels[:batch])
        z = torch.randn(batch, self.latent_dim, device=source.images.device)
        z2 = torch.randn(batch, self.latent_dim, device=source.images.device)
        styles = {"latent": (z, z2), "reference": (pairs.images[:batch], pairs.images[half : half + batch])}
        for phase, mode in (
            ("discriminator", "latent"),
            ("discriminator", "reference"),
            ("generator", "latent"),
            ("generator", "reference"),
        ):
            self.update_phase(phase, mode, source, targets, styles[mode])
        ema_update(self.generator, self.generator_ema, self.ema_decay)
        ema_update(self.mapping_network, self.mapping_network_ema, self.ema_decay)
        ema_update(self.style_encoder, self.style_encoder_ema, self.ema_decay)
        return self.update.values()

    def update_phase(
        self, phase: str, mode: str, source: Batch, targets: torch.Tensor, style_inputs: tuple[torch.Tensor, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """One of the four updates: D's, or G's with D held still, with styles of ``mode``;
        G's latent update also trains the mapping network and the style encoder."""
        state = StepState(phase, mode, self, source, targets, style_inputs)
        if phase == "discriminator":
            return self.update(phase, {f"D/{mode}": state}, step=["discriminator"])
        stepped = ["generator", "mapping_network", "style_encoder"] if mode == "latent" else ["generator"]
        return self.update(phase, {f"G/{mode}": state}, step=stepped, freeze=[self.discriminator])

    def check_ready(self) -> None:
        # load the landmark network now: a missing or wrong file fails before the run starts
        if cast(float, self.generator.high_pass) > 0:  # a number; torch types a module's attributes Tensor | Module
            self.masks(torch.zeros(1, 3, 32, 32, device=next(self.generator.parameters()).device))

    def masks(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Face-landmark masks of ``images`` for a generator with high-pass skips, else None."""
        if self.generator.high_pass == 0:
            return None
        if self._landmarks is None:
            if not self.landmark_weights:
                raise MdtError(
                    "this generator uses face-landmark masks (high_pass > 0) from the FAN landmark network: give its weights, "
                    "StarGAN v2's wing.ckpt, as [method] landmark_weights (or mdt import stargan-v2 --landmarks FILE)"
                )
            self._landmarks = FaceAlignmentNetwork.from_file(self.landmark_weights).to(images.device)
        return self._landmarks.masks(images)

    def translator(self) -> StarGANv2Translator:
        return StarGANv2Translator(
            self.generator_ema, self.mapping_network_ema, self.style_encoder_ema, self.encoder.schemas, self.image_size, self.masks
        )


class StarGANv2Translator(Translator):
    """Translate to a domain with a style drawn from noise (``seed``) or taken from a
    reference image (``ref``). The moving-average networks do the work."""

    varies = "seed"

    def __init__(self, generator, mapping_network, style_encoder, schemas: Sequence[LabelSchema], image_size: int, masks=None) -> None:
        self.generator, self.mapping_network, self.style_encoder = generator, mapping_network, style_encoder
        self.masks = masks or (lambda images: None)  # face-landmark masks for a generator with high-pass skips
        self.schemas = list(schemas)
        self.domain_names = tuple(schemas[0].names)
        self.image_size = image_size
        self.options = (
            Option(
                "domain",
                "choice",
                "the target domain (with a reference: the reference's domain)",
                choices=self.domain_names,
                needed=("translate",),
            ),
            Option("seed", "int", "the style drawn from noise: one seed, one style", default=0, minimum=0),
            Option(
                "ref",
                "image",
                "a reference image whose style to use instead (a grid: one column per reference)",
                many=True,
                replaces="seed",
            ),
        )

    def domain_index(self, name: str) -> int:
        if name not in self.domain_names:
            raise MdtError(f"unknown domain '{name}'{did_you_mean(name, self.domain_names)}; domains: {', '.join(self.domain_names)}")
        return self.domain_names.index(name)

    def _device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @torch.no_grad()
    def latent_styles(self, domain: int, seeds: Sequence[int]) -> torch.Tensor:
        """One style per seed; a seed always gives the same z, on any device."""
        z = torch.stack([torch.randn(self.mapping_network.latent_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
        in_eval_mode(self.mapping_network)
        z = z.to(self._device())
        return self.mapping_network(z, torch.full((len(seeds),), domain, device=z.device))

    @torch.no_grad()
    def reference_styles(self, references: torch.Tensor, domain: int | Sequence[int]) -> torch.Tensor:
        in_eval_mode(self.style_encoder)
        count = references.shape[0]
        indices = torch.tensor([domain] * count if isinstance(domain, int) else list(domain), device=references.device)
        return self.style_encoder(references, indices)

    @torch.no_grad()
    def styled(self, images: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``images`` (B, ...) with one style (1, D) or one per image (B, D)."""
        in_eval_mode(self.generator)
        return self.generator(images, style.expand(images.shape[0], -1), self.masks(images))

    def translate(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        domain: str | None = None,
        seed: int = 0,
        ref: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """To ``domain`` with the style of ``seed``, or of the reference image(s) ``ref``
        (one for all inputs, or one per input), whose domain ``domain`` names."""
        if domain is None:
            raise MdtError(f"name the target domain with --domain; domains: {', '.join(self.domain_names)}")
        index = self.domain_index(domain)
        if ref is None:
            return self.styled(images, self.latent_styles(index, [seed]))
        if ref.shape[0] not in (1, images.shape[0]):
            raise MdtError(f"give one reference image, or one per input ({images.shape[0]}), not {ref.shape[0]}")
        return self.styled(images, self.reference_styles(ref, index))

    @torch.no_grad()
    def to_labels(  # type: ignore[override]  # its options: seed, ref
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        dataset: int,
        base: torch.Tensor | None = None,
        seed: int = 0,
        ref: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """To one-hot target ``labels`` (for metrics): each image with its own style, from
        noise drawn with ``seed``, or from its own reference in ``ref`` (one per input)."""
        targets = domains(labels)
        if ref is None:
            z = torch.randn(images.shape[0], self.mapping_network.latent_dim, generator=torch.Generator().manual_seed(seed))
            in_eval_mode(self.mapping_network)
            styles = self.mapping_network(z.to(images.device), targets)
        elif ref.shape[0] != images.shape[0]:
            raise MdtError("reference-guided translation for metrics needs one reference image per input")
        else:
            styles = self.reference_styles(ref, targets.tolist())
        return self.styled(images, styles)

    @torch.no_grad()
    def reconstruct(
        self,
        translated: torch.Tensor,
        originals: torch.Tensor,
        labels: torch.Tensor,
        dataset: int,
        translated_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Back with the style the style encoder reads off the originals (the paper's cycle)."""
        return self.styled(translated, self.reference_styles(originals, domains(labels).tolist()))

    def read_labels(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        raise MdtError("StarGAN v2's discriminator has no domain classifier to read an image's labels")

    @torch.no_grad()
    def grid(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        domain: str | None = None,
        seed: int = 0,
        num: int | None = None,
        ref: torch.Tensor | None = None,
        source: int | None = None,
        labels: torch.Tensor | None = None,
    ):
        """Rows: each input, then its translations. Columns: the references ``ref`` of
        ``domain`` (shown in a first row), or ``num`` seeds from ``seed`` in ``domain``
        (default 1), or ``num`` seeds in every domain (default 2). ``source`` and
        ``labels`` (what the engine knows of its sample images) are not needed: a style
        sets the target."""
        rows: list[list[torch.Tensor | None]] = []
        if ref is not None:
            if domain is None:
                raise MdtError("name the references' domain with --domain")
            styles = self.reference_styles(ref, self.domain_index(domain))
            columns = [self.styled(images, styles[k : k + 1]) for k in range(ref.shape[0])]
            titles = [f"{domain} ref {k + 1}" for k in range(ref.shape[0])]
            rows.append([None, *ref])
        else:
            if domain is not None:
                wanted = [(domain, seed + k) for k in range(num or 1)]
            else:
                wanted = [(name, seed + k) for name in self.domain_names for k in range(num or 2)]
            columns = [self.styled(images, self.latent_styles(self.domain_index(d), [s])) for d, s in wanted]
            titles = [f"{d} s{s}" for d, s in wanted]
        rows += [[images[i], *(c[i] for c in columns)] for i in range(images.shape[0])]
        return rows, titles
