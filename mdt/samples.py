"""What a sample is: the shape, storage type and value range of what datasets give.

Images were once the only samples mdt knew: uint8 (3, S, S). A dataset now declares its
samples (:meth:`mdt.interfaces.Dataset.samples`) from its recipe table alone, without
reading data, so that ``mdt recipe check`` and ``mdt translate`` know them without the
corpus. Every dataset of a run gives the same samples; networks, augmentations and losses
that take a ``sample`` argument receive this :class:`SampleSpec` (mdt/build.py), and one
that takes only ``image_size`` is given square RGB images of that side, which
``mdt recipe check`` refuses when the datasets give anything else.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import torch

from mdt.errors import MdtError

if TYPE_CHECKING:
    from mdt.recipe_layout import Recipe
    from mdt.registry import Registry

DTYPES = {"uint8": torch.uint8, "float32": torch.float32}


@dataclass(frozen=True)
class SampleSpec:
    """One sample as a dataset stores it: ``channels`` x ``height`` x ``width`` values of
    ``dtype`` between ``low`` and ``high``, of a ``modality`` (the registered component
    that reads, writes and pictures such samples). Networks see them scaled to [-1, 1]."""

    channels: int = 3
    height: int = 128
    width: int = 128
    dtype: Literal["uint8", "float32"] = "uint8"
    low: float = 0.0
    high: float = 255.0
    modality: str = "image"

    def __post_init__(self) -> None:
        if self.channels < 1 or self.height < 1 or self.width < 1:
            raise ValueError(f"a sample has at least one channel, row and column, not ({self.channels}, {self.height}, {self.width})")
        if self.dtype not in DTYPES:
            raise ValueError(f"a sample's dtype is one of {', '.join(DTYPES)}, not '{self.dtype}'")
        if not self.low < self.high:
            raise ValueError(f"a sample's range [{self.low}, {self.high}] is empty")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def square(self) -> bool:
        return self.height == self.width

    def describe(self) -> str:
        """``uint8 (3, 128, 128), 0 to 255``: what error messages and docs say a sample is."""
        return f"{self.dtype} {self.shape}, {_number(self.low)} to {_number(self.high)}"

    def to_unit(self, stored: torch.Tensor) -> torch.Tensor:
        """Stored values as floats in [-1, 1], the range every network sees."""
        return (stored.float() - self.low) * (2.0 / (self.high - self.low)) - 1.0

    def from_unit(self, values: torch.Tensor) -> torch.Tensor:
        """Values in [-1, 1] back to the stored range and dtype (rounded for integers)."""
        stored = (values.float().clamp(-1, 1) + 1.0) * ((self.high - self.low) / 2.0) + self.low
        return stored.round().to(DTYPES[self.dtype]) if self.dtype == "uint8" else stored

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> SampleSpec:
        return cls(**value)


def square_images(side: int) -> SampleSpec:
    """The samples of a dataset that declares none: RGB images ``side`` pixels square."""
    return SampleSpec(channels=3, height=side, width=side)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def sample_problem(sample: Any, spec: SampleSpec) -> str | None:
    """What keeps ``sample`` (a dataset item's ``image``) from being one of ``spec``; None
    when it is one. Values are not scanned: a plugin's range is its own promise."""
    expected = DTYPES[spec.dtype]
    if isinstance(sample, torch.Tensor) and sample.dtype == expected and tuple(sample.shape) == spec.shape:
        return None
    got = (
        f"{str(sample.dtype).removeprefix('torch.')} {tuple(sample.shape)}"
        if isinstance(sample, torch.Tensor)
        else f"a {type(sample).__name__}"
    )
    return f"its 'image' is {got}; its dataset declares {spec.describe()}"


class DeclaresSamples(Protocol):
    """What :func:`declared_samples` asks of a dataset's class (mdt.interfaces.Dataset has it)."""

    @classmethod
    def samples(cls, arguments: Mapping[str, Any], image_size: int) -> SampleSpec: ...


def declared_samples(recipe: Recipe, registry: Registry) -> SampleSpec:
    """The samples every ``[datasets.*]`` table declares (:meth:`Dataset.samples`), from
    the recipe alone; an error names two tables that declare different ones."""
    from mdt.signatures import parameters

    found: list[tuple[str, SampleSpec]] = []
    for table in recipe.section("datasets"):
        factory = cast("type[DeclaresSamples]", registry.get(table.kind, table.type).factory)  # a Dataset, registering checked
        defaults = {name: p.default for name, p in parameters(factory).items() if p.default is not inspect.Parameter.empty}
        try:
            spec = factory.samples({**defaults, **table.arguments()}, recipe.run.image_size)
        except (ValueError, TypeError) as exc:
            raise MdtError(f"{recipe.source}: [{table.address}] {exc}") from None
        found.append((table.address, spec))
    if not found:
        return square_images(recipe.run.image_size)
    for address, spec in found:
        if not registry.has("modality", spec.modality):
            known = ", ".join(registry.names("modality")) or "none"
            raise MdtError(
                f"{recipe.source}: [{address}] gives '{spec.modality}' samples, but no modality of that name is registered "
                f"(registered modalities: {known}); install the plugin that provides it"
            )
    first, spec = found[0]
    for address, other in found[1:]:
        if other != spec:
            raise MdtError(
                f"{recipe.source}: [{first}] gives {spec.modality} samples {spec.describe()} but [{address}] gives "
                f"{other.modality} samples {other.describe()}; the datasets of one run give the same samples"
            )
    return spec
