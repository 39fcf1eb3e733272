"""The ``cyclegan`` method (Zhu et al. 2017): unpaired translation between two domains with
two generators and two discriminators — and, given more domains, one such model for every
pair of them: the pairwise approach that StarGAN argues against, trained in one run so that
``mdt eval --compare`` can set it beside a StarGAN on the same judge.

Each iteration takes one batch from every domain (a ``domain`` stream each) and, for every
pair (A, B) of domains, makes the paper's two updates, generators first:

    G:  L_GAN(G_AB, D_B) + L_GAN(G_BA, D_A) + λ_cyc·(‖G_BA(G_AB(a)) − a‖₁ + ‖G_AB(G_BA(b)) − b‖₁)
        + λ_idt·(‖G_BA(a) − a‖₁ + ‖G_AB(b) − b‖₁)                                λ_cyc = 10, λ_idt = 5
    D:  ½[(D_A(a) − 1)² + D_A(fake_a)²] + ½[(D_B(b) − 1)² + D_B(fake_b)²]      (least squares)

where D sees the generators' fakes through a pool of the last ``pool_size`` (50) fakes.
Adam(2e-4, 0.5, 0.999) for all generators and for all discriminators; the rate is constant,
then falls linearly to 0 over the last ``decay_fraction`` of the run (the paper's 100 + 100
epochs: one half).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import torch

from mdt.data import Batch, Stream
from mdt.errors import MdtError
from mdt.labels import LabelEncoder, LabelSchema, matching, parse_assignments
from mdt.method import Method, Role, Translator, in_eval_mode
from mdt.optim import adam
from mdt.options import Option
from mdt.ranges import Beta, Count, Fraction, Rate
from mdt.schedule import linear_decay


class ImagePool:
    """The last ``size`` fakes a generator made; a discriminator is shown, for each new
    fake, either it or (half the time, once the pool is full) an older one it replaces
    (Shrivastava et al. 2017). Draws from torch's generator, so a resumed run repeats them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        shown = []
        for image in fakes.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                shown.append(image)
            elif torch.rand(()) < 0.5:
                index = int(torch.randint(len(self.images), ()))
                shown.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                shown.append(image)
        return torch.stack(shown)

    def state(self) -> torch.Tensor | None:
        return torch.stack(self.images) if self.images else None

    def load(self, images: torch.Tensor | None, device: torch.device) -> None:
        self.images = [] if images is None else [image.to(device) for image in images]


@dataclass
class Pair:
    """One two-domain CycleGAN: domains ``a`` and ``b`` (indices into the method's domains)."""

    a: int
    b: int
    name: str  # "" for a model of two domains, else "<A>-<B>" in logs and checkpoints
    generator_ab: torch.nn.Module
    generator_ba: torch.nn.Module
    discriminator_a: torch.nn.Module
    discriminator_b: torch.nn.Module
    pool_a: ImagePool = field(default_factory=lambda: ImagePool(0))
    pool_b: ImagePool = field(default_factory=lambda: ImagePool(0))

    def networks(self) -> dict[str, torch.nn.Module]:
        suffix = f".{self.name}" if self.name else ""
        return {
            f"generator_ab{suffix}": self.generator_ab,
            f"generator_ba{suffix}": self.generator_ba,
            f"discriminator_a{suffix}": self.discriminator_a,
            f"discriminator_b{suffix}": self.discriminator_b,
        }


class CycleState:
    """What the losses of one pair's update may read; each value is computed on first use.
    Images are (B, 3, S, S) in [-1, 1]; ``_a`` names things of domain A, ``_b`` of B."""

    phase: str  # "discriminator" or "generator"
    real_a: torch.Tensor  # a batch of domain A
    real_b: torch.Tensor  # a batch of domain B

    def __init__(
        self,
        phase: str,
        pair: Pair,
        real_a: torch.Tensor,
        real_b: torch.Tensor,
        autocast,
        pooled: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        self.phase, self._pair, self.real_a, self.real_b, self._autocast = phase, pair, real_a, real_b, autocast
        self._pooled = pooled  # the discriminator phase's fakes (fake_a, fake_b), from the pools

    def _run(self, network: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        with self._autocast(images.device):
            return network(images).float()

    @cached_property
    def fake_b(self) -> torch.Tensor:
        """G_AB(real_a): A translated into B (in the discriminator phase, from the pool)."""
        return self._pooled[1] if self._pooled is not None else self._run(self._pair.generator_ab, self.real_a)

    @cached_property
    def fake_a(self) -> torch.Tensor:
        """G_BA(real_b): B translated into A (in the discriminator phase, from the pool)."""
        return self._pooled[0] if self._pooled is not None else self._run(self._pair.generator_ba, self.real_b)

    @cached_property
    def reconstruction_a(self) -> torch.Tensor:
        """G_BA(G_AB(real_a)): A there and back."""
        return self._run(self._pair.generator_ba, self.fake_b)

    @cached_property
    def reconstruction_b(self) -> torch.Tensor:
        """G_AB(G_BA(real_b)): B there and back."""
        return self._run(self._pair.generator_ab, self.fake_a)

    @cached_property
    def identity_a(self) -> torch.Tensor:
        """G_BA(real_a): the generator into A, given an image of A."""
        return self._run(self._pair.generator_ba, self.real_a)

    @cached_property
    def identity_b(self) -> torch.Tensor:
        """G_AB(real_b): the generator into B, given an image of B."""
        return self._run(self._pair.generator_ab, self.real_b)

    @cached_property
    def real_scores_a(self) -> torch.Tensor:
        """D_A's patch scores of real_a."""
        return self._run(self._pair.discriminator_a, self.real_a)

    @cached_property
    def real_scores_b(self) -> torch.Tensor:
        """D_B's patch scores of real_b."""
        return self._run(self._pair.discriminator_b, self.real_b)

    @cached_property
    def fake_scores_a(self) -> torch.Tensor:
        """D_A's patch scores of fake_a."""
        return self._run(self._pair.discriminator_a, self.fake_a)

    @cached_property
    def fake_scores_b(self) -> torch.Tensor:
        """D_B's patch scores of fake_b."""
        return self._run(self._pair.discriminator_b, self.fake_b)


def domain_names(schema: LabelSchema, domains: Sequence[str]) -> list[str]:
    """The domains as written (``Blond_Hair``, ``Smiling=0``); by default a categorical
    dataset's classes. Each is checked against the dataset's labels."""
    names = list(domains) or (list(schema.names) if schema.categorical else [])
    if len(names) < 2:
        raise MdtError(
            f'cyclegan needs at least two domains; name them, e.g. domains = ["Black_Hair", "Blond_Hair"] '
            f"(labels of '{schema.dataset}': {', '.join(schema.names)})"
        )
    if len(set(names)) != len(names):
        raise MdtError(f"cyclegan domains {names} name one domain twice")
    assignments = [parse_assignments(name, "domain") for name in names]
    for name, values in zip(names, assignments, strict=True):
        for label, value in values.items():
            schema.index(label)
            if value not in (0, 1) and not (schema.continuous and 0 <= value <= 1):
                held = "from 0 to 1" if schema.continuous else "0 or 1"
                raise MdtError(f"cyclegan domain '{name}' sets '{label}' to {value:g}, but the labels of '{schema.dataset}' are {held}")
    for (k, a), (j, b) in itertools.combinations(enumerate(assignments), 2):
        if not exclusive(schema, a, b):
            raise MdtError(
                f"cyclegan domains '{names[k]}' and '{names[j]}' can both hold one image, so their streams would share "
                "images; name domains that exclude each other: classes of one exclusive group (Black_Hair, Blond_Hair) "
                "or values of one label (Male=0, Male=1)"
            )
    return names


def exclusive(schema: LabelSchema, a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Whether no image can match both assignments: they set one label to two values, or
    each sets a different member of one exclusive group."""
    if any(name in b and b[name] != value for name, value in a.items()):
        return True
    return any(
        value == 1 and other != name and b.get(other) == 1 and other in schema.group_of(name) for name, value in a.items() for other in b
    )


class CycleGAN(Method):
    """CycleGAN (Zhu et al. 2017) between two domains, or for every pair of several: LSGAN, cycle and identity losses."""

    citation = """@inproceedings{zhu2017cyclegan,
  title = {Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks},
  author = {Zhu, Jun-Yan and Park, Taesung and Isola, Phillip and Efros, Alexei A.},
  booktitle = {Proceedings of the IEEE International Conference on Computer Vision (ICCV)},
  year = {2017}
}"""

    precisions = ("fp32", "bf16")  # its step states run the networks under self.update.autocast

    roles = {
        "generator_ab": Role(
            "generator",
            inputs=("images",),
            outputs=("image",),
            optimizer="generators",
            inference=True,
            many=True,
            description="G_AB: domain A -> B (one per pair of domains)",
        ),
        "generator_ba": Role(
            "generator",
            inputs=("images",),
            outputs=("image",),
            optimizer="generators",
            inference=True,
            many=True,
            description="G_BA: domain B -> A",
        ),
        "discriminator_a": Role(
            "discriminator",
            inputs=("images",),
            outputs=("scores",),
            optimizer="discriminators",
            many=True,
            description="D_A: real images of A against G_BA's fakes",
        ),
        "discriminator_b": Role(
            "discriminator",
            inputs=("images",),
            outputs=("scores",),
            optimizer="discriminators",
            many=True,
            description="D_B: real images of B against G_AB's fakes",
        ),
    }
    phases = {"discriminator": CycleState, "generator": CycleState}

    def __init__(
        self,
        generator_ab,
        generator_ba,
        discriminator_a,
        discriminator_b,
        label_encoder: LabelEncoder,
        losses: Mapping[str, object],
        iterations: int,
        image_size: int,
        precision: str = "fp32",
        domains: Sequence[str] = (),
        lr: Rate = 2e-4,
        beta1: Beta = 0.5,
        beta2: Beta = 0.999,
        pool_size: Count = 50,
        decay_fraction: Fraction = 0.5,
    ) -> None:
        schemas = label_encoder.schemas
        if len(schemas) != 1:
            raise MdtError(f"cyclegan learns between domains of one dataset, but the recipe has {len(schemas)}")
        if pool_size < 0 or not 0.0 <= decay_fraction <= 1.0 or lr <= 0:
            raise ValueError(f"pool_size must be >= 0, decay_fraction in [0, 1] and lr > 0, not {pool_size}, {decay_fraction}, {lr}")
        self.schema = schemas[0]
        self.domains = domain_names(self.schema, domains)
        self.assignments = [parse_assignments(d, "domain") for d in self.domains]
        self.losses, self.iterations, self.image_size = dict(losses), iterations, image_size
        self.precision, self.lr, self.decay_fraction = precision, lr, decay_fraction
        several = len(self.domains) > 2
        self.pairs = [
            Pair(
                a,
                b,
                f"{a}-{b}" if several else "",
                generator_ab(),
                generator_ba(),
                discriminator_a(),
                discriminator_b(),
                ImagePool(pool_size),
                ImagePool(pool_size),
            )
            for a, b in itertools.combinations(range(len(self.domains)), 2)
        ]
        self.betas = (beta1, beta2)
        # One unpaired stream per domain.
        self.samplers = {f"domain_{k}": Stream("domain", {"domain": name}) for k, name in enumerate(self.domains)}

    def networks(self):
        return {name: net for pair in self.pairs for name, net in pair.networks().items()}

    @property
    def inference_networks(self) -> tuple[str, ...]:
        return tuple(name for name in self.networks() if name.startswith("generator"))

    @cached_property
    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Built when training first asks: a model loaded to translate never builds them
        (torch's first optimizer imports its compiler, seconds of every `mdt translate`)."""
        generators = [p for pair in self.pairs for net in (pair.generator_ab, pair.generator_ba) for p in net.parameters()]
        discriminators = [p for pair in self.pairs for net in (pair.discriminator_a, pair.discriminator_b) for p in net.parameters()]
        return {"generators": adam(generators, self.lr, self.betas), "discriminators": adam(discriminators, self.lr, self.betas)}

    def optimizers(self):
        return dict(self._optimizers)

    def train_step(self, batches: Sequence[Batch], step: int) -> dict[str, float]:
        rate = self.lr * linear_decay(step, self.iterations, self.decay_fraction * self.iterations)
        self.update.start(step, {"generators": rate, "discriminators": rate})
        real = {int(b.role.removeprefix("domain_")): b.images for b in batches}
        made = {self._prefix(pair, "G"): self._state("generator", pair, real) for pair in self.pairs}
        self.update("generator", made, step=["generators"], freeze=self.discriminators())
        shown = {
            self._prefix(pair, "D"): self._state(
                "discriminator",
                pair,
                real,
                (  # the fakes just made, through the pools
                    pair.pool_a.query(state.fake_a.detach()),
                    pair.pool_b.query(state.fake_b.detach()),
                ),
            )
            for pair, state in zip(self.pairs, made.values(), strict=True)
        }
        self.update("discriminator", shown, step=["discriminators"])
        return self.update.values(lr=rate)

    def discriminators(self) -> list[torch.nn.Module]:
        return [net for pair in self.pairs for net in (pair.discriminator_a, pair.discriminator_b)]

    def _state(self, phase: str, pair: Pair, real: dict[int, torch.Tensor], pooled=None) -> CycleState:
        return CycleState(phase, pair, real[pair.a], real[pair.b], self.update.autocast, pooled)

    def _prefix(self, pair: Pair, phase: str) -> str:
        """Where a pair's values are logged: "G", or "Black_Hair-Blond_Hair/G" with several pairs."""
        return "/".join(filter(None, [pair.name and f"{self.domains[pair.a]}-{self.domains[pair.b]}", phase]))

    def state(self) -> dict:
        return {
            "pools": {str(k): [pair.pool_a.state(), pair.pool_b.state()] for k, pair in enumerate(self.pairs)},
            "domains": list(self.domains),
        }

    def load_state(self, state: dict) -> None:
        trained = state.get("domains", self.domains)  # a checkpoint from before domains were kept: taken as given
        if list(trained) != self.domains:  # the pairs' generators would be turned around, or belong to other domains
            raise MdtError(
                f"the run was trained between the domains {', '.join(trained)} in this order, but the recipe "
                f"gives {', '.join(self.domains)}; resume with the run's own method.domains"
            )
        device = next(self.pairs[0].generator_ab.parameters()).device
        for k, (pool_a, pool_b) in state.get("pools", {}).items():
            self.pairs[int(k)].pool_a.load(pool_a, device)
            self.pairs[int(k)].pool_b.load(pool_b, device)

    def translator(self) -> CycleGANTranslator:
        return CycleGANTranslator(self.pairs, self.domains, self.assignments, self.schema, self.image_size)


class CycleGANTranslator(Translator):
    """Translate between the method's domains with each pair's generators. An input's
    domain is given (``origin``), known (metrics, sample grids), or with two domains, the
    one that is not the target."""

    def __init__(self, pairs: Sequence[Pair], domains: Sequence[str], assignments, schema: LabelSchema, image_size: int) -> None:
        self.pairs, self.domains, self.assignments = list(pairs), list(domains), list(assignments)
        self.schemas, self.image_size = [schema], image_size
        self.options = (
            Option("to", "choice", "the target domain", choices=tuple(self.domains), needed=("translate",), grid=False),
            Option(
                "origin",
                "choice",
                "the input's domain (with two domains, the one that is not the target)",
                choices=tuple(self.domains),
                flag="from",
                needed=("grid",),
            ),
        )

    def _generator(self, source: int, target: int) -> torch.nn.Module:
        for pair in self.pairs:
            if (pair.a, pair.b) == (source, target):
                return in_eval_mode(pair.generator_ab)
            if (pair.b, pair.a) == (source, target):
                return in_eval_mode(pair.generator_ba)
        raise MdtError(f"no model translates '{self.domains[source]}' to '{self.domains[target]}'")

    def domain_of(self, labels: torch.Tensor) -> torch.Tensor:
        """(B,) the first domain each label row falls in, -1 for none."""
        found = torch.full((labels.shape[0],), -1, dtype=torch.long)
        for k in reversed(range(len(self.domains))):
            found[matching(self.schemas[0], labels, self.assignments[k])] = k
        return found

    @torch.no_grad()
    def _translate(self, images: torch.Tensor, sources: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Each image from its source domain to its target (unchanged where they are one)."""
        out = images.clone()
        for s, t in {(int(s), int(t)) for s, t in zip(sources, targets, strict=True) if s != t and s >= 0 and t >= 0}:
            rows = ((sources == s) & (targets == t)).nonzero().flatten().to(images.device)
            out[rows] = self._generator(s, t)(images[rows])
        return out

    def translate(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        to: str | None = None,
        origin: str | None = None,
    ) -> torch.Tensor:
        if to is None:
            raise MdtError(f"name the target domain with --to; domains: {', '.join(self.domains)}")
        target = self.domains.index(to)
        if origin is None:
            if len(self.domains) != 2:
                raise MdtError("this model has several domains and cannot tell an input's; give its domain with --from")
            origin = self.domains[1 - target]
        count = images.shape[0]
        return self._translate(images, torch.full((count,), self.domains.index(origin)), torch.full((count,), target))

    @torch.no_grad()
    def grid(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        origin: str | None = None,
        source: int | None = None,
        labels: torch.Tensor | None = None,
    ):
        """Each input, then its translation into every domain (itself in its own). The
        inputs' domain: ``origin``, or read off ``labels`` (the engine's sample images)."""
        if labels is not None:
            sources = self.domain_of(labels.cpu())
        elif origin is not None:
            sources = torch.full((images.shape[0],), self.domains.index(origin))
        else:
            raise MdtError("a grid needs the inputs' domain: give --from")
        columns = [self._translate(images, sources, torch.full_like(sources, t)) for t in range(len(self.domains))]
        rows = [[images[i]] + [c[i] for c in columns] for i in range(images.shape[0])]
        return rows, list(self.domains)

    def targets(self):
        return [(name, 0, dict(labels)) for name, labels in zip(self.domains, self.assignments, strict=True)]

    def accepts(self, labels: torch.Tensor, dataset: int) -> torch.Tensor:
        return (self.domain_of(labels.cpu()) >= 0).to(labels.device)

    def to_labels(self, images, labels, dataset, base=None):
        """Each input (of the domain its ``base`` labels show) into the domain ``labels`` ask for."""
        if base is None:
            raise MdtError("CycleGAN needs the inputs' own labels to know which generator to use")
        sources = self.domain_of(base.cpu())
        wanted = labels.cpu()
        targets = torch.full_like(sources, -1)
        for k in reversed(range(len(self.domains))):  # the domain asked for, other than the source
            hit = matching(self.schemas[0], wanted, self.assignments[k]) & (sources != k)
            targets[hit] = k
        return self._translate(images, sources, targets)
