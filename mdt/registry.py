"""The registry: every component mdt can build, by kind and name.

Plugins fill it through the ``register_components`` hook (see :mod:`mdt.hookspecs`);
recipes name components by ``type``. There is one flat namespace per kind, no scopes
and no parents: a duplicate name is an error that names both origins, and an unknown
name lists what is registered, closest match first.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from mdt.errors import MdtError, closest_first, did_you_mean

#: The kinds mdt itself builds from recipes or calls. A plugin declares more kinds with
#: ``register("kind", name, description)`` (StarGAN v2 declares its mapping network's).
CORE_KINDS: dict[str, str] = {
    "dataset": "samples and labels: schema, samples(), __len__, __getitem__ -> {'image', 'label'} or {'error'}",
    "label_encoder": "labels of each dataset -> the condition a generator sees and the classification loss",
    "augmentation": "stored batches -> [-1, 1] float batches on the device (kornia), for training or not",
    "generator": "a network that makes images; what it takes and returns is declared by its inputs and outputs",
    "discriminator": "a network that judges images; what it returns is declared by its outputs",
    "loss": "one term of a method's updates: phases, reads, weight, __call__(phase, state) -> (value, {term: value})",
    "method": "a training algorithm: its network roles, phases, optimizers, train_step and translator",
    "metric": "__call__(evaluation) -> {name: value}: a measurement of mdt eval",
    "classifier": "the judge of translations: fit, predict, features",
    "sampler": "the order of a dataset's items: batches of indices, resumable at any position",
    "importer": "a click command run by `mdt import NAME`",
    "landmarks": "a face-landmark detector built from a weights file: (PIL image) -> mdt.align.FacePoints or None (mdt align)",
    "logger": "a tracker a run's scalars, sample grids, recipe and metrics go to, besides log.jsonl (mdt.loggers)",
    "modality": "what a dataset's samples are made of: reads inputs and writes outputs of mdt translate, pictures samples",
}
KIND = "kind"  # register(KIND, name, description) declares a kind
ComponentClass = TypeVar("ComponentClass")


def plural(kind: str) -> str:
    """'generators', 'losses', 'landmarks': a kind's name in lists of its components."""
    if kind.endswith("ss"):
        return kind + "es"
    return kind if kind.endswith("s") else kind + "s"


@dataclass(frozen=True)
class Kind:
    """A kind of component, declared by mdt or by a plugin."""

    name: str
    description: str
    plugin: str


@dataclass(frozen=True)
class Component:
    """One registered thing: a class or function that builds a component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str = ""  # the installed package that holds the plugin, and its version
    version: str = ""

    @property
    def description(self) -> str:
        """First line of the factory's docstring."""
        doc = inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def origin(self) -> str:
        """The plugin by name, and its installed package where known: 'mdt_stargan' (mdt 0.1.0)."""
        package = f" ({self.distribution} {self.version})".replace(" )", ")") if self.distribution else ""
        return f"'{self.plugin}'{package}"

    @property
    def location(self) -> str:
        """``file:line`` where the factory is defined."""
        try:
            target = inspect.unwrap(self.factory)
            file = inspect.getsourcefile(target) or "?"
            line = inspect.getsourcelines(target)[1]
        except (OSError, TypeError):
            return "?"
        return f"{file}:{line}"

    def signature(self) -> inspect.Signature:
        return inspect.signature(self.factory)

    def factory_class(self, base: type[ComponentClass]) -> type[ComponentClass]:
        """The factory as the subclass of ``base``, its kind's base class, that registering
        it checked it to be (:func:`_check_base`); for a kind mdt inspects."""
        return cast("type[ComponentClass]", self.factory)


LISTED = 8  # names an "unknown NAME" error lists, closest first


class Registry:
    """Components by kind and name."""

    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}
        self._components: dict[str, dict[str, Component]] = {}
        self.unknown_note = ""  # added to "unknown NAME" errors: why a component may be missing (the plugin host's)
        for name, description in CORE_KINDS.items():
            self.add_kind(name, description, plugin="mdt")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._components)

    def kind(self, name: str) -> Kind:
        self._table(name)
        return self._kinds[name]

    def add_kind(self, name: str, description: str, *, plugin: str) -> Kind:
        """Declare a kind of component; a kind has one owner."""
        if not isinstance(name, str) or not name.isidentifier():
            raise MdtError(f"plugin '{plugin}' declared kind {name!r}; a kind is a Python identifier such as 'upsampler'")
        if name in self._kinds:
            raise MdtError(f"kind '{name}' is declared twice: by '{self._kinds[name].plugin}' and by plugin '{plugin}'")
        self._kinds[name] = Kind(name, str(description), plugin)
        self._components[name] = {}
        return self._kinds[name]

    def add(
        self, kind: str, name: str, factory: Callable[..., Any], *, plugin: str, distribution: str = "", version: str = ""
    ) -> Component:
        """Register ``factory`` as ``name`` of ``kind``; a taken name is an error."""
        table = self._table(kind)
        if not callable(factory):
            raise MdtError(f"plugin '{plugin}' registered {kind} '{name}' as {factory!r}, which is not callable")
        if _built(factory):
            raise MdtError(
                f"plugin '{plugin}' registered {kind} '{name}' as an instance of {type(factory).__name__}; "
                "register the class (or a function that builds one)"
            )
        _check_base(kind, name, factory, plugin)
        component = Component(kind, name, factory, plugin, distribution, version)
        arguments: Mapping[str, inspect.Parameter]
        try:
            arguments = component.signature().parameters
        except (TypeError, ValueError):  # a builtin without a signature: nothing a recipe could set
            arguments = {}
        if "type" in arguments:
            raise MdtError(
                f"plugin '{plugin}' registered {kind} '{name}' with an argument named 'type', which a recipe "
                "cannot set: its table's 'type' key chooses the component; rename the argument"
            )
        if name in table:
            first, second = table[name], component
            same = " (the same object twice)" if first.factory is second.factory else ""
            raise MdtError(
                f"{kind} '{name}' is registered twice: by plugin {first.origin}, defined at {first.location}, and by plugin "
                f"{second.origin}, defined at {second.location}{same}; give one of them another name"
            )
        table[name] = component
        return component

    def has(self, kind: str, name: str) -> bool:
        return name in self._components.get(kind, {})

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``; an unknown name lists the registered ones."""
        table = self._table(kind)
        if name not in table:
            elsewhere = [other for other, components in self._components.items() if name in components and other != kind]
            if elsewhere:
                raise MdtError(f"unknown {kind} '{name}': '{name}' is a registered {elsewhere[0]}, not a {kind}")
            available = closest_first(name, table)
            listing = ", ".join(f"'{n}'" for n in available[:LISTED]) if available else "none"
            more = f" and {len(available) - LISTED} more (mdt list {kind})" if len(available) > LISTED else ""
            raise MdtError(f"unknown {kind} '{name}'; registered {plural(kind)}, closest first: {listing}{more}{self.unknown_note}")
        return table[name]

    def find(self, kind: str, name: str) -> dict[str, str]:
        """Where ``name`` is defined: plugin, file, line and docstring."""
        component = self.get(kind, name)
        file, _, line = component.location.rpartition(":")
        return {
            "plugin": component.plugin,
            "file": file,
            "line": line,
            "docstring": inspect.getdoc(component.factory) or "",
        }

    def names(self, kind: str) -> list[str]:
        return sorted(self._table(kind))

    def components(self, kind: str | None = None) -> Iterator[Component]:
        kinds = self.kinds if kind is None else (kind,)
        for k in kinds:
            table = self._table(k)
            for name in sorted(table):
                yield table[name]

    def _table(self, kind: str) -> dict[str, Component]:
        if kind not in self._components:
            hint = did_you_mean(kind, self._components)
            raise MdtError(f"unknown component kind '{kind}'{hint}; kinds: {', '.join(self._components)}")
        return self._components[kind]


def _check_base(kind: str, name: str, factory: Any, plugin: str) -> None:
    """A component of a kind mdt inspects is a class that subclasses the kind's base, which
    declares every hook mdt calls on it (mdt/interfaces.py)."""
    from mdt.interfaces import base_of

    base = base_of(kind)
    if base is None or (inspect.isclass(factory) and issubclass(factory, base)):
        return
    what = f"class {factory.__name__}" if inspect.isclass(factory) else f"{type(factory).__name__} {_shown(factory)}"
    raise MdtError(
        f"plugin '{plugin}' registered {kind} '{name}' as {what}, which does not subclass mdt.{base.__name__}; "
        f"subclass it: it declares what mdt calls on a {kind}, with defaults (docs/writing-a-plugin.md)"
    )


def _shown(factory: Any) -> str:
    """A function's or object's name for a message."""
    return f"'{factory.__qualname__}'" if inspect.isfunction(factory) or inspect.ismethod(factory) else repr(factory)


def _built(factory: Any) -> bool:
    """A network or loss already built, registered where its class belongs (a slip that
    would fail later, confusingly: the instance would be called with the recipe's keys)."""
    import torch

    from mdt.loss import Loss

    return isinstance(factory, (torch.nn.Module, Loss))
