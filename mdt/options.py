"""What a user may ask of a translator, described by the translator itself.

A translator lists its :class:`Option` objects. From that one description mdt makes the
flags of ``mdt translate`` (``--to``, ``--domain``, ``--strength``), the controls of the
``mdt serve`` page (label radios, a slider, an image upload) and the checks of the
Python API (``load_translator(...)(image, **request)``), so a third party's method gets
all three for free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mdt.errors import MdtError, did_you_mean
from mdt.labels import parse_assignments

OptionType = Literal["labels", "choice", "int", "float", "image"]
CALLS = ("translate", "grid")  # what an option may be needed by


@dataclass(frozen=True)
class Option:
    """One keyword of a translator's ``translate`` and ``grid``.

    ``type``: ``labels`` (``{name: value}``, on the command line ``Blond_Hair,Male=0``),
    ``choice`` (one of ``choices``), ``int`` or ``float`` (within ``minimum`` and
    ``maximum``; both given: a slider on the page), ``image`` (a picture; with ``many``,
    several: a grid's columns). ``needed``: the calls that cannot do without it,
    ``"translate"`` and/or ``"grid"`` (a grid that translates from one known domain into
    every other needs that domain); model cards name what a grid needs in their example.
    ``grid``: ``grid`` takes it. ``page``: the serve page shows it. ``flag``: the command
    line's name when it is not the keyword (StarGAN's ``known`` is ``--from``).
    ``replaces``: the option this one takes the place of when given (StarGAN v2's ``ref``
    replaces ``seed``); the command line refuses both, and ``--num`` varying that one.
    ``sample``: a value as the command line writes it (``Black_Hair,Blond_Hair=0``), shown
    in mdt translate's help and errors; ``help`` itself stays free of command-line syntax,
    for the page and Python.
    """

    name: str
    type: OptionType
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    needed: tuple[str, ...] = ()
    grid: bool = True
    many: bool = False
    page: bool = True
    flag: str = ""
    replaces: str = ""
    sample: str = ""

    @property
    def cli_help(self) -> str:
        """``help`` with ``sample``, a value as the command line writes it
        (``Black_Hair,Blond_Hair=0``): for mdt translate's help and errors, not for the
        page or Python, which take values their own way."""
        return f"{self.help}; e.g. {self.sample}" if self.sample else self.help

    def __post_init__(self) -> None:
        unknown = [call for call in self.needed if call not in CALLS]
        if unknown or isinstance(self.needed, str):
            raise ValueError(f"option '{self.name}': needed = {self.needed!r}; write a tuple of {' and/or '.join(map(repr, CALLS))}")

    def needed_by(self, call: str) -> bool:
        """Whether ``call`` ("translate" or "grid") cannot do without this option."""
        return call in self.needed

    @property
    def example(self) -> str | None:
        """A value to show in an example command line, where one can be named without the model's labels."""
        if self.type == "choice" and self.choices:
            return self.choices[0]
        if self.type in ("int", "float"):
            return str(next(v for v in (self.default, self.minimum, 0) if v is not None))
        return None

    @property
    def cli_flag(self) -> str:
        return "--" + (self.flag or self.name).replace("_", "-")

    def parse(self, text: str) -> Any:
        """The value of a command-line text."""
        if self.type == "labels":
            return parse_assignments(text, self.cli_flag)
        if self.type in ("int", "float"):
            try:
                return self.check(int(text) if self.type == "int" else float(text))
            except ValueError:
                raise MdtError(f"{self.cli_flag} '{text}': expected {'an integer' if self.type == 'int' else 'a number'}") from None
        return self.check(text)

    def check(self, value: Any) -> Any:
        """``value`` if it fits the option, else a one-line error naming it."""
        where = self.cli_flag if not self.flag else f"{self.cli_flag} ({self.name})"
        if self.type in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.type == "int" and not float(value).is_integer()):
                raise MdtError(f"{where} must be {'an integer' if self.type == 'int' else 'a number'}, not {value!r}")
            if not math.isfinite(value):
                raise MdtError(f"{where} = {value} must be a finite number")
            if self.type == "int" and not -(2**63) <= value < 2**63:
                raise MdtError(f"{where} = {value} is too large: an integer option fits in 64 bits")
            low, high = self.minimum, self.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                shown = (lambda v: str(int(v))) if self.type == "int" else (lambda v: f"{v:g}")
                wanted = (
                    f"in [{shown(low)}, {shown(high)}]"
                    if low is not None and high is not None
                    else (f"at least {shown(low)}" if low is not None else f"at most {shown(high)}")
                )
                raise MdtError(f"{where} = {value} must be {wanted}")
            return int(value) if self.type == "int" else float(value)
        if self.type == "choice" and value not in self.choices:
            raise MdtError(f"{where}: '{value}' is not one of {', '.join(self.choices)}{did_you_mean(str(value), self.choices)}")
        if self.type == "labels" and not isinstance(value, Mapping):
            raise MdtError(f"{where} must be labels by name, such as {{'Blond_Hair': 1}}")
        return value


def check_request(options: Sequence[Option], request: Mapping[str, Any], for_grid: bool = False) -> dict[str, Any]:
    """A translator's request checked against its options: no unknown keyword, values in
    range. ``for_grid``: for ``grid``, which takes the options marked ``grid``."""
    known = {o.name: o for o in options if o.grid or not for_grid}
    checked = {}
    for name, value in request.items():
        if name not in known:
            what = "grid" if for_grid else "translation"
            taken = ", ".join(known) or "nothing"
            raise MdtError(f"this model's {what} does not take '{name}'{did_you_mean(name, known)}; it takes: {taken}")
        option = known[name]
        checked[name] = value if value is None or option.type == "image" else option.check(value)
    for option in options:
        if option.needed_by("grid" if for_grid else "translate") and checked.get(option.name) is None:
            raise MdtError(f"give {option.cli_flag}: {option.cli_help}" + (" (a grid needs it)" if for_grid else ""))
    return checked
