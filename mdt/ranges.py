"""Ranges of the numbers a recipe may hold: ``Annotated[int, AtLeast(1)]`` on a
constructor argument (or a ``[run]`` setting) makes ``mdt recipe check`` refuse values
outside it, naming the key, before anything is built; ``mdt list KIND NAME`` shows it.
On an argument mdt fills from ``[run]`` (``image_size``), the range checks that value.
The aliases below are the ranges most components need. Arguments that constrain each
other, or the run's image size, a component checks in its ``arguments_problem``
(docs/writing-a-plugin.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

if TYPE_CHECKING:
    from mdt.samples import SampleSpec


@dataclass(frozen=True)
class AtLeast:
    minimum: float

    def problem(self, value: float) -> str | None:
        return None if value >= self.minimum else self.describe()

    def describe(self) -> str:
        return f"of at least {self.minimum:g}"


@dataclass(frozen=True)
class Above:
    """Strictly greater: a learning rate or a scale of 0 means nothing."""

    minimum: float

    def problem(self, value: float) -> str | None:
        return None if value > self.minimum else self.describe()

    def describe(self) -> str:
        return f"greater than {self.minimum:g}"


@dataclass(frozen=True)
class Between:
    """Both ends included unless ``below_maximum`` (Adam's betas must stay under 1)."""

    minimum: float
    maximum: float
    below_maximum: bool = False

    def problem(self, value: float) -> str | None:
        fits = self.minimum <= value and (value < self.maximum if self.below_maximum else value <= self.maximum)
        return None if fits else self.describe()

    def describe(self) -> str:
        if self.below_maximum:
            return f"of at least {self.minimum:g} and below {self.maximum:g}"
        return f"from {self.minimum:g} to {self.maximum:g}"


@dataclass(frozen=True)
class PowerOfTwo:
    """A size halved to a fixed smallest map (StarGAN v2's networks): 16, 32, 64, ..."""

    minimum: int

    def problem(self, value: float) -> str | None:
        fits = value >= self.minimum and float(value).is_integer() and int(value) & (int(value) - 1) == 0
        return None if fits else self.describe()

    def describe(self) -> str:
        return f"that is a power of two of at least {self.minimum}"


RANGES = (AtLeast, Above, Between, PowerOfTwo)

Positive = Annotated[int, AtLeast(1)]  # widths, depths, counts of steps or images
Count = Annotated[int, AtLeast(0)]  # seeds, sizes where 0 means "none" or "the default"
Weight = Annotated[float, AtLeast(0)]  # loss weights, decays
Rate = Annotated[float, Above(0)]  # learning rates, scales
Fraction = Annotated[float, Between(0, 1)]
Beta = Annotated[float, Between(0, 1, below_maximum=True)]  # Adam's betas, moving-average decays


def halving_problem(image_size: int, times: int, key: str, smallest: int = 1, needs: str = "") -> str | None:
    """For a network's ``arguments_problem``: an image halved ``times`` times by stride-2
    layers and doubled back (or read whole by a kernel of the last map's size) must
    divide evenly, or the output has another size than the input; ``needs`` names what
    takes a last map of at least ``smallest`` pixels a side."""
    if image_size % 2**times:
        return f"[run] image_size {image_size} must be divisible by 2**{key} = {2**times}"
    left = image_size >> times
    if left < smallest:
        return f"[run] image_size {image_size} halved {times} times ({key}) leaves a {left}x{left} map; {needs} needs at least {smallest}x{smallest}"
    return None


def sample_halving_problem(
    sample: SampleSpec | None, image_size: int, times: int, key: str, smallest: int = 1, needs: str = ""
) -> str | None:
    """:func:`halving_problem` for both sides of the datasets' samples; square samples of
    ``[run] image_size`` (or no ``sample``) are said as that setting."""
    if sample is None or (sample.square and sample.height == image_size):
        return halving_problem(image_size, times, key, smallest, needs)
    for name, side in (("height", sample.height), ("width", sample.width)):
        if side % 2**times:
            return f"the datasets' samples are {sample.height} x {sample.width}: their {name} {side} must be divisible by 2**{key} = {2**times}"
        if side >> times < smallest:
            return f"the datasets' samples are {sample.height} x {sample.width}: their {name} halved {times} times ({key}) leaves {side >> times}; {needs} needs at least {smallest}"
    return None
