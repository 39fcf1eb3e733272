"""The registry: every component mdt can build, by kind and name.

Plugins fill it through the ``register_components`` hook (see :mod:`mdt.hookspecs`);
recipes name components by ``type``. There is one flat namespace per kind, no scopes
and no parents: a duplicate name is an error that names both origins, and an unknown
name lists what is registered, closest match first.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mdt.errors import MdtError, closest_first

KINDS = (
    "dataset",
    "label_encoder",
    "augmentation",
    "generator",
    "mapping_network",
    "style_encoder",
    "discriminator",
    "loss",
    "method",
    "metric",
    "classifier",  # judges translations for metrics: labels and features of images
    "importer",  # a click command run by `mdt import NAME`
)


@dataclass(frozen=True)
class Component:
    """One registered thing: a class or function that builds a component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str

    @property
    def description(self) -> str:
        """First line of the factory's docstring."""
        doc = inspect.getdoc(self.factory) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

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


class Registry:
    """Components by kind and name."""

    def __init__(self, kinds: tuple[str, ...] = KINDS) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in kinds}

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._components)

    def add(self, kind: str, name: str, factory: Callable[..., Any], *, plugin: str) -> Component:
        """Register ``factory`` as ``name`` of ``kind``; a taken name is an error."""
        table = self._table(kind)
        if not callable(factory):
            raise MdtError(f"plugin '{plugin}' registered {kind} '{name}' as {factory!r}, which is not callable")
        if name in table:
            first = table[name]
            raise MdtError(
                f"{kind} '{name}' is registered twice: by plugin '{first.plugin}' ({first.location}) "
                f"and by plugin '{plugin}' ({Component(kind, name, factory, plugin).location})"
            )
        component = Component(kind, name, factory, plugin)
        table[name] = component
        return component

    def get(self, kind: str, name: str) -> Component:
        """The component ``name`` of ``kind``; an unknown name lists the registered ones."""
        table = self._table(kind)
        if name not in table:
            available = closest_first(name, table)
            listing = ", ".join(f"'{n}'" for n in available) if available else "none"
            raise MdtError(f"unknown {kind} '{name}'; registered {kind}s, closest first: {listing}")
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
            raise MdtError(f"unknown component kind '{kind}'; kinds: {', '.join(self._components)}")
        return self._components[kind]
