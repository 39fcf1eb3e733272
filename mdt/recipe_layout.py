"""What a recipe is made of: its sections, the values mdt passes in, and :class:`Recipe`,
a parsed recipe's tables (mdt/recipe.py reads the file; mdt/recipe_check.py checks it).

One table per component. ``type`` names a registered component; every other key is an
argument of its constructor. Tables that hold several components (``datasets``,
``losses``, ``metrics``, ``loggers``) have one named sub-table each; the name is what logs show.
``[networks.<role>]`` holds one table per network role of the method (see
:class:`mdt.method.Role`): the method decides which networks exist and of what kind.
Values mdt knows itself (:data:`INJECTED`, and a method's networks) are passed in by
the engine and may not be written in a recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mdt.method import Method
from mdt.registry import Registry
from mdt.settings import RunSettings
from mdt.signatures import parameters
from mdt.toml_text import dump_toml


@dataclass(frozen=True)
class Section:
    kind: str
    many: bool = False
    required: bool = True
    default: Mapping[str, Any] | None = None  # the table a recipe without it gets; --set may then set its keys


RUN = "run"
NETWORKS = "networks"
LOGGERS = "loggers"
SECTIONS: dict[str, Section] = {
    "datasets": Section("dataset", many=True),
    "labels": Section("label_encoder"),
    "augmentation": Section("augmentation"),
    NETWORKS: Section("network", many=True, required=False),  # one per role of the method; kinds from the roles
    "losses": Section("loss", many=True),
    "method": Section("method"),
    "metrics": Section("metric", many=True, required=False),
    "classifier": Section("classifier", required=False, default={"type": "timm"}),  # the judge of translations (mdt eval)
    LOGGERS: Section("logger", many=True, required=False),  # trackers besides log.jsonl (mdt.loggers)
}


INJECTED: dict[str, str] = {
    "split": "the dataset split, 'train' or 'test'",
    "sample": "the samples the datasets declare (mdt.samples.SampleSpec)",
    "image_size": "[run] image_size",
    "iterations": "[run] iterations",
    "precision": "[run] precision",
    "schemas": "the datasets' label schemas",
    "label_dim": "the label encoder's condition size",
    "num_classes": "the label encoder's number of classifier outputs",
    "label_encoder": "the [labels] component",
    "losses": "the [losses] components",
}


# Which INJECTED values each section's constructors receive: mdt/build.py builds the
# sections in this order, and a value exists once what it comes from is built. `mdt eval`
# builds metrics on their own, so they receive none.
_BEFORE_LABELS = ("sample", "image_size", "iterations", "precision", "schemas")
_AFTER_LABELS = (*_BEFORE_LABELS, "label_dim", "num_classes", "label_encoder")
PROVIDED: dict[str, tuple[str, ...]] = {
    "datasets": ("split", "image_size"),
    "labels": _BEFORE_LABELS,
    "augmentation": _AFTER_LABELS,
    NETWORKS: _AFTER_LABELS,
    "losses": _AFTER_LABELS,
    "method": (*_AFTER_LABELS, "losses"),
    "metrics": (),
    "classifier": ("schemas", "sample"),
    LOGGERS: (),
}


def section_of(kind: str) -> str:
    """The recipe section whose tables build components of ``kind`` (a network's kind is its role's)."""
    return next((name for name, section in SECTIONS.items() if section.kind == kind), NETWORKS)


def unprovided(section: str, type_name: str, kind: str, factory: Callable[..., Any]) -> str | None:
    """Why ``factory`` cannot be built in ``section``: it asks for a value mdt gives other
    sections only (a dataset asking for the label encoder); None when it can."""
    for name in parameters(factory):
        if name in INJECTED and name not in PROVIDED.get(section, ()):
            return f"type '{type_name}' asks for '{name}' ({INJECTED[name]}), which mdt does not provide to a {kind}"
    return None


def role_values(roles: Mapping[str, Any]) -> dict[str, str]:
    """What a method's constructor receives for its roles (its networks), as INJECTED says it."""
    return {name: f"the [{NETWORKS}.{name}] network" for name in roles}


def method_roles(data: Mapping[str, Any], registry: Registry) -> dict[str, Any]:
    """The network roles of the recipe's method; none while its type is missing or unknown."""
    method = data.get("method")
    name = method.get("type") if isinstance(method, dict) else None
    if not isinstance(name, str) or name not in registry.names("method"):
        return {}
    return dict(registry.get("method", name).factory_class(Method).roles)


@dataclass
class Table:
    """One component table of a recipe."""

    address: str  # "generator", "datasets.celeba"
    kind: str
    values: dict[str, Any]

    @property
    def name(self) -> str:
        return self.address.rpartition(".")[2]

    @property
    def type(self) -> str:
        return self.values["type"]

    def arguments(self) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k != "type"}


@dataclass
class Recipe:
    """A parsed recipe: its file name (for messages), its tables, and its method's network roles."""

    source: str
    data: dict[str, Any]
    overridden: dict[str, str] = field(default_factory=dict)  # "table.key" set from the command line -> as written there
    roles: dict[str, Any] = field(default_factory=dict)  # the method's roles, once checked against a registry
    notices: list[str] = field(default_factory=list)  # old spellings read the new way

    @property
    def run(self) -> RunSettings:
        return RunSettings(**self.data.get(RUN, {}))

    def tables(self) -> Iterator[Table]:
        for section_name, section in SECTIONS.items():
            if section_name not in self.data:
                continue
            if section.many:
                for name, values in self.data[section_name].items():
                    kind = self.roles[name].kind if section_name == NETWORKS and name in self.roles else section.kind
                    yield Table(f"{section_name}.{name}", kind, values)
            else:
                yield Table(section_name, section.kind, self.data[section_name])

    def table(self, address: str) -> Table:
        for table in self.tables():
            if table.address == address:
                return table
        raise KeyError(address)

    def section(self, name: str) -> list[Table]:
        return [t for t in self.tables() if t.address == name or t.address.startswith(name + ".")]

    def to_toml(self) -> str:
        return dump_toml(self.data)

    def settle(self, key: str, value: Any) -> None:
        """Write what an ``"auto"`` ``[run]`` setting became for this run, so the run's
        recipe.toml and checkpoints record it."""
        self.data.setdefault(RUN, {})[key] = value


RUN_FILLED = ("image_size", "iterations")  # INJECTED values that are [run] settings


def run_filled(recipe: Recipe) -> dict[str, Any]:
    """The values of :data:`RUN_FILLED` in the recipe's ``[run]``."""
    return {"image_size": recipe.run.image_size, "iterations": recipe.run.iterations}


def said_where(recipe: Recipe, address: str, key: str | None = None) -> str:
    if key is not None and f"{address}.{key}" in recipe.overridden:
        return f"--set {recipe.overridden[f'{address}.{key}']}:"
    return f"{recipe.source}: [{address}]"
