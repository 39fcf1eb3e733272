"""Recipes: TOML files that say which registered components to build, with which arguments.

One table per component. ``type`` names a registered component; every other key is an
argument of its constructor. Tables that hold several components (``datasets``,
``losses``, ``metrics``, ``loggers``) have one named sub-table each; the name is what logs show.
``[networks.<role>]`` holds one table per network role of the method (see
:class:`mdt.method.Role`): the method decides which networks exist and of what kind.
Values mdt knows itself (:data:`INJECTED`, and a method's networks) are passed in by
the engine and may not be written in a recipe. Everything is checked against the
constructors' signatures and the contracts of :mod:`mdt.contracts` before anything is
built.

Older recipes wrote networks as top-level tables (``[generator]``); a top-level table
named like a role of the recipe's method is read as ``[networks.<role>]``, with a notice,
and ``--set generator.conv_dim=8`` is short for ``--set networks.generator.conv_dim=8``.
Older recipes' ``[run] tensorboard = true`` is read as ``[loggers.tensorboard]`` when the
tensorboard package is installed (what it did then), and is dropped otherwise.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mdt import contracts
from mdt.errors import MdtError, did_you_mean
from mdt.labels import LABEL_LAYOUTS
from mdt.ranges import RANGES
from mdt.registry import Registry, plural
from mdt.settings import RunSettings, device_problem


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
_BEFORE_LABELS = ("image_size", "iterations", "precision", "schemas")
_AFTER_LABELS = (*_BEFORE_LABELS, "label_dim", "num_classes", "label_encoder")
PROVIDED: dict[str, tuple[str, ...]] = {
    "datasets": ("split", "image_size"),
    "labels": _BEFORE_LABELS,
    "augmentation": _AFTER_LABELS,
    NETWORKS: _AFTER_LABELS,
    "losses": _AFTER_LABELS,
    "method": (*_AFTER_LABELS, "losses"),
    "metrics": (),
    "classifier": ("schemas",),
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
    return dict(registry.get("method", name).factory.roles)


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


def model_recipe_text(text: str) -> str:
    """A checkpoint's recipe without its ``[loggers]``: what a shared model folder carries
    (someone's tracking server is not part of their model)."""
    data = tomllib.loads(text)
    return dump_toml(data) if data.pop(LOGGERS, None) is not None else text


# ---------------------------------------------------------------- loading


def load_recipe(path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """Read, override and check a recipe file. Raises :class:`MdtError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise MdtError(f"recipe file '{path}' does not exist" if not path.exists() else f"recipe '{path}' is a folder; give a recipe file (.toml)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MdtError(f"{path}: cannot read the recipe: {exc}") from exc
    return parse_recipe(text, str(path), overrides, registry)


def parse_recipe(text: str, source: str, overrides: Sequence[str] = (), registry: Registry | None = None,
                 model_only: bool = False) -> Recipe:
    """A checked recipe. ``model_only``: a checkpoint's recipe, read to rebuild its model;
    its loggers, and losses of plugins not installed here, are left out: a tracker or a
    training-only plugin need not be installed where the model is used."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MdtError(f"{source}: malformed TOML: {exc}") from None
    if model_only:
        data.pop(LOGGERS, None)
        _drop_unknown_losses(data, registry)
    recipe = Recipe(source, data)
    roles = method_roles(data, registry) if registry is not None else {}
    _read_old_network_tables(recipe, roles)
    _read_old_run_keys(recipe)
    _check_layout(recipe, roles)
    for override in overrides:
        apply_override(recipe, override, roles)
    if registry is not None:
        validate(recipe, registry)
    return recipe


def _drop_unknown_losses(data: dict, registry: Registry | None) -> None:
    """A model's recipe keeps the losses this machine knows; one whose plugin is missing
    only trained it (at least one is kept, so the recipe stays well formed)."""
    losses = data.get("losses")
    if registry is None or not isinstance(losses, dict):
        return
    known = set(registry.names("loss"))
    kept = {name: table for name, table in losses.items() if not isinstance(table, dict) or table.get("type") in known}
    if kept:
        data["losses"] = kept


def _read_old_network_tables(recipe: Recipe, roles: Mapping[str, Any]) -> None:
    """Top-level tables named like the method's roles (``[generator]``, older recipes)
    become ``[networks.<role>]``."""
    for key in [k for k in recipe.data if k in roles and k not in SECTIONS and k != RUN]:
        networks = recipe.data.setdefault(NETWORKS, {})
        if key in networks:
            raise MdtError(f"{recipe.source}: [{key}] and [{NETWORKS}.{key}] are the same table; keep [{NETWORKS}.{key}]")
        networks[key] = recipe.data.pop(key)
        recipe.notices.append(f"{recipe.source}: [{key}] is read as [{NETWORKS}.{key}]; write it so (mdt recipe show prints the recipe that way)")
    if isinstance(recipe.data.get(NETWORKS), dict):  # in the order the method declares its roles
        networks = recipe.data.pop(NETWORKS)
        recipe.data[NETWORKS] = {**{k: networks[k] for k in roles if k in networks}, **networks}


def _read_old_run_keys(recipe: Recipe) -> None:
    """``[run] tensorboard`` (before loggers were components) becomes ``[loggers.tensorboard]``."""
    run = recipe.data.get(RUN)
    if not isinstance(run, dict) or "tensorboard" not in run:
        return
    wanted = run.pop("tensorboard")
    if wanted is True and importlib.util.find_spec("tensorboard") is not None:
        loggers = recipe.data.setdefault(LOGGERS, {})
        if isinstance(loggers, dict) and not any(isinstance(t, dict) and t.get("type") == "tensorboard" for t in loggers.values()):
            loggers.setdefault("tensorboard", {"type": "tensorboard"})
            recipe.notices.append(f"{recipe.source}: [run] tensorboard = true is read as [loggers.tensorboard]; write it so")


def missing_package(recipe: Recipe, registry: Registry) -> None:
    """Raise when a component the recipe trains with needs a Python package that is not
    installed (a factory's ``requires``). Not part of :func:`validate`: a run folder whose
    recipe names an MLflow logger still translates on a machine without MLflow."""
    for table in recipe.tables():
        factory = registry.get(table.kind, table.type).factory
        for package in factory.requires:
            if importlib.util.find_spec(package) is None:
                raise MdtError(f"{_where(recipe, table.address, 'type')} type '{table.type}' needs the Python package "
                               f"'{package}', which is not installed (pip install {package})")


def _check_layout(recipe: Recipe, roles: Mapping[str, Any]) -> None:
    known = [RUN, *SECTIONS]
    for key, value in recipe.data.items():
        if key not in known:
            hint = did_you_mean(key, [*known, *roles])
            raise MdtError(f"{recipe.source}: unknown table [{key}]{hint}; tables are: {', '.join(known)}")
        if not isinstance(value, dict):
            raise MdtError(f"{recipe.source}: '{key}' must be a table ([{key}]), not a value")
        section = SECTIONS.get(key)
        if section and section.many:
            for name, sub in value.items():
                if not isinstance(sub, dict):
                    raise MdtError(
                        f"{recipe.source}: [{key}] holds named tables such as [{key}.{name}], "
                        f"but '{key}.{name}' is a value"
                    )


def parse_value(text: str) -> Any:
    """A ``--set`` value in TOML syntax; a bare word such as a path is taken as a string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        if re.fullmatch(r"[\w./\\:+~@%-]+", text):
            return text
        raise MdtError(f"--set value '{text}' is not a TOML value (quote strings: key='a b')") from None


def apply_override(recipe: Recipe, override: str, roles: Mapping[str, Any] = {}) -> None:
    """Apply ``table.key=value`` (a nested table: ``datasets.celeba.root=...``); a role of
    the method may be written without ``networks.`` (``generator.conv_dim=8``)."""
    address, sep, raw = override.partition("=")
    address = address.strip()
    if not sep or "." not in address:
        raise MdtError(f"--set '{override}': expected table.key=value, for example run.iterations=10")
    written = address
    table_path, _, key = address.rpartition(".")
    head = table_path.split(".")[0]
    if head in roles and head not in recipe.data:
        table_path, address = f"{NETWORKS}.{table_path}", f"{NETWORKS}.{address}"
    value = parse_value(raw.strip())
    if head == RUN:
        recipe.data.setdefault(RUN, {})  # [run] may be left out of a recipe; it can still be set
    elif head in SECTIONS and SECTIONS[head].default is not None and head not in recipe.data and table_path == head:
        recipe.data[head] = dict(SECTIONS[head].default)  # the table the recipe gets anyway, now with this key
    node: Any = recipe.data
    walked = []
    for part in table_path.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            choices = list(node) if isinstance(node, dict) else []
            choices += [RUN, *roles] if len(walked) == 1 else []
            raise MdtError(
                f"--set {written}: {recipe.source} has no table [{'.'.join(walked)}]{did_you_mean(part, choices)}"
            )
        node = node[part]
    if not isinstance(node, dict):
        raise MdtError(f"--set {written}: '{table_path}' is a value, not a table")
    node[key] = value
    recipe.overridden[address] = written


# ---------------------------------------------------------------- checking


def validate(recipe: Recipe, registry: Registry) -> None:
    """Check every table against its component's signature and the method's contracts;
    raise on the first problem."""
    _check_table_arguments(recipe, RUN, dict(recipe.data.get(RUN, {})), RunSettings, injected={})
    problem = device_problem(recipe.run.device)
    if problem:
        raise MdtError(f"{_where(recipe, RUN, 'device')} key 'device' = '{recipe.run.device}': {problem}")
    for name, section in SECTIONS.items():
        if section.required and name not in recipe.data:
            raise MdtError(f"{recipe.source}: missing table [{name}] ({_kind_hint(section.kind, registry)})")
        if section.many and name in recipe.data and section.required and not recipe.data[name]:
            raise MdtError(f"{recipe.source}: [{name}] needs at least one named table such as [{name}.example]")
    method = _component(recipe, recipe.table("method"), registry)
    recipe.roles = method_roles(recipe.data, registry)
    _check_roles(recipe, method.name, recipe.roles, registry)
    for table in recipe.tables():
        component = _component(recipe, table, registry)
        problem = _contract_problem(recipe, table, component, method, registry)
        if problem:  # the wrong component altogether says more than its keys
            raise MdtError(f"{_where(recipe, table.address)} {problem}")
        problem = unprovided(table.address.partition(".")[0], table.type, table.kind, component.factory)
        if problem:
            raise MdtError(f"{_where(recipe, table.address)} {problem}")
        if table.kind == "loss" and "weight" not in parameters(component.factory):  # every method multiplies by it
            raise MdtError(f"{_where(recipe, table.address)} loss '{table.type}' takes no 'weight' argument; a loss is "
                           "weighted in its method's sum (subclass mdt.loss.Loss, whose constructor takes it)")
        injected = {**INJECTED, **role_values(recipe.roles)} if table.address == "method" else INJECTED
        _check_table_arguments(recipe, table.address, table.arguments(), component.factory, injected=injected)
        _check_run_values(recipe, table, component.factory)
        _check_argument_combination(recipe, table, component.factory)
    _check_networks_together(recipe, method, registry)
    _check_label_layout(recipe, method, registry)


RUN_FILLED = ("image_size", "iterations")  # INJECTED values that are [run] settings


def run_filled(recipe: Recipe) -> dict[str, Any]:
    """The values of :data:`RUN_FILLED` in the recipe's ``[run]``."""
    return {"image_size": recipe.run.image_size, "iterations": recipe.run.iterations}


def _check_run_values(recipe: Recipe, table: Table, factory) -> None:
    """A range on an argument mdt fills from ``[run]`` (a network that takes only powers of
    two as ``image_size``) checks the recipe's ``[run]`` value."""
    params, hints = parameters(factory), type_hints(factory)
    for name, value in run_filled(recipe).items():
        if name in params:
            problem = type_problem(value, expected_type(params[name], hints))
            if problem:
                raise MdtError(f"{_where(recipe, RUN, name)} key '{name}' = {format_value(value)}: "
                               f"[{table.address}] type '{table.type}' takes {problem}")


def _check_argument_combination(recipe: Recipe, table: Table, factory) -> None:
    """A component whose arguments constrain each other or the run's image size (StarGAN's
    discriminator halves the image ``layers`` times) says what does not fit in
    ``arguments_problem(values)``: the table's values, its defaults filled in, with
    ``[run]``'s ``image_size`` and ``iterations`` whether it takes them or not."""
    values = {name: p.default for name, p in parameters(factory).items() if p.default is not inspect.Parameter.empty}
    values.update(table.arguments())
    values.update(run_filled(recipe))
    problem = factory.arguments_problem(values)
    if problem:
        raise MdtError(f"{_where(recipe, table.address)} type '{table.type}': {problem}")


def _check_networks_together(recipe: Recipe, method, registry: Registry) -> None:
    """What the method needs of its networks together (``Method.networks_problem``): each
    role's network arguments, written or by default."""
    arguments = {}
    for name in recipe.roles:
        table = recipe.table(f"{NETWORKS}.{name}")
        params = parameters(registry.get(table.kind, table.type).factory)
        arguments[name] = {**{k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty},
                           **table.arguments()}
    problem = method.factory.networks_problem(arguments)
    if problem:
        raise MdtError(f"{recipe.source}: method '{method.name}' {problem}")


def _check_label_layout(recipe: Recipe, method, registry: Registry) -> None:
    """A method that needs one class per image (``label_layout``) and a ``[labels]``
    encoder that declares another layout cannot work together."""
    needed = method.factory.label_layout
    labels = recipe.table("labels")
    given = registry.get(labels.kind, labels.type).factory.label_layout
    if needed and given and needed != given:
        fitting = [n for n in registry.names(labels.kind) if registry.get(labels.kind, n).factory.label_layout == needed]
        such = f"; use a type that gives it, such as {', '.join(repr(n) for n in fitting)}" if fitting else ""
        raise MdtError(f"{_where(recipe, 'labels', 'type')} type '{labels.type}' gives {LABEL_LAYOUTS.get(given, given)}, but "
                       f"method '{method.name}' needs {LABEL_LAYOUTS.get(needed, needed)}{such}")


def _component(recipe: Recipe, table: Table, registry: Registry):
    where = _where(recipe, table.address)
    if "type" not in table.values:
        raise MdtError(f"{where} has no 'type' key ({_kind_hint(table.kind, registry)})")
    if not isinstance(table.values["type"], str):
        raise MdtError(f"{where} 'type' must be a string naming a registered {table.kind}")
    try:
        return registry.get(table.kind, table.type)
    except MdtError as exc:
        raise MdtError(f"{_where(recipe, table.address, 'type')} {exc}") from None


def _check_roles(recipe: Recipe, method: str, roles: Mapping[str, Any], registry: Registry) -> None:
    """One [networks.<role>] table per role of the method, and no other."""
    tables = recipe.data.get(NETWORKS, {})
    for name, role in roles.items():
        if name not in tables:
            raise MdtError(
                f"{recipe.source}: method '{method}' needs a [{NETWORKS}.{name}] table ({_kind_hint(role.kind, registry)})"
            )
    for name in tables:
        if name not in roles:
            listing = ", ".join(roles) or "none"
            raise MdtError(
                f"{recipe.source}: [{NETWORKS}.{name}] is not a network of method '{method}'{did_you_mean(name, roles)}; its networks: {listing}"
            )
    accepted = parameters(registry.get("method", method).factory)
    for name in roles:
        if name not in accepted:
            raise MdtError(f"method '{method}' declares the role '{name}' but its constructor takes no '{name}' argument")


def _contract_problem(recipe: Recipe, table: Table, component, method, registry: Registry) -> str | None:
    """What keeps a network or a loss from working with the method (:mod:`mdt.contracts`)."""
    if table.address.startswith(NETWORKS + "."):
        return contracts.network_problem(table.name, recipe.roles[table.name], table.type, component.factory, method.name)
    if table.address.startswith("losses."):
        outputs = {}
        for network in recipe.section(NETWORKS):
            if network.name in recipe.roles and network.type in registry.names(network.kind):
                outputs[network.name] = contracts.interface(registry.get(network.kind, network.type).factory, "outputs")
        return contracts.loss_problem(table.type, component.factory, method.name, method.factory.phases, outputs)
    return None


def _kind_hint(kind: str, registry: Registry) -> str:
    names = registry.names(kind)
    return f"registered {plural(kind)}: {', '.join(names) if names else 'none'}"


def _where(recipe: Recipe, address: str, key: str | None = None) -> str:
    if key is not None and f"{address}.{key}" in recipe.overridden:
        return f"--set {recipe.overridden[f'{address}.{key}']}:"
    return f"{recipe.source}: [{address}]"


def parameters(factory: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The keyword parameters of a component's constructor."""
    params = inspect.signature(factory).parameters
    return {
        n: p
        for n, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable annotations are not checked, not fatal
        return {}


DEFAULT_TYPES = (bool, int, float, str)  # bool first: True is an int too


def expected_type(param: inspect.Parameter, hints: Mapping[str, Any]) -> Any:
    """What a key's value must be: its annotation, or, where a plugin left the argument
    unannotated, the type of its default (``width=64`` takes an integer, ``names=[]`` a
    list), so a wrong value is refused when the recipe is checked rather than deep in a
    build. No annotation and no default (or a default of None): anything."""
    annotation = hints.get(param.name, param.annotation)
    if annotation is not inspect.Parameter.empty or param.default in (inspect.Parameter.empty, None):
        return annotation
    default = param.default
    if isinstance(default, (list, tuple)):
        return list
    if isinstance(default, dict):
        return dict
    return next((t for t in DEFAULT_TYPES if isinstance(default, t)), inspect.Parameter.empty)


def _check_table_arguments(recipe: Recipe, address: str, arguments: dict[str, Any], factory, injected: Mapping[str, str]) -> None:
    """Check one table's keys against ``factory``'s signature; ``injected`` names are mdt's to fill."""
    params = parameters(factory)
    hints = type_hints(factory)
    settable = [n for n in params if n not in injected]
    for key, value in arguments.items():
        where = _where(recipe, address, key)
        if key in injected and key in params:
            raise MdtError(f"{where} key '{key}' is set by mdt ({injected[key]}); remove it from the recipe")
        if key not in params:
            hint = did_you_mean(key, [*settable, "type"])  # a misspelt 'type' itself lands here too
            listing = "" if hint else f"; keys: {', '.join(settable) if settable else 'none'}"
            raise MdtError(f"{where} unknown key '{key}'{hint}{listing}")
        problem = type_problem(value, expected_type(params[key], hints))
        if problem:
            raise MdtError(f"{where} key '{key}' = {format_value(value)}: expected {problem}")
    for name, param in params.items():
        if param.default is inspect.Parameter.empty and name not in arguments and name not in injected:
            raise MdtError(f"{_where(recipe, address)} missing required key '{name}'")


def range_text(expected: Any) -> str | None:
    """What an argument's range annotation allows, as ``mdt list`` shows it ("an integer of
    at least 1", "one of 'offline', 'online'")."""
    if typing.get_origin(expected) is typing.Literal:
        return "one of " + ", ".join(format_value(a) for a in typing.get_args(expected))
    if typing.get_origin(expected) is not typing.Annotated:
        return None
    base, *extras = typing.get_args(expected)
    ranges = [r.describe() for r in extras if isinstance(r, RANGES)]
    return f"{problem_noun(base)} {' and '.join(ranges)}" if ranges else None


def value_text(param: inspect.Parameter, hints: Mapping[str, Any]) -> str | None:
    """What ``mdt list`` says an argument takes: its range ("an integer of at least 1"),
    else its type ("a list", "a number"), else None (anything)."""
    expected = expected_type(param, hints)
    options = [expected]
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(expected) if a is not type(None)]
    texts = [range_text(option) or type_problem(_ANY_VALUE, option) for option in options]
    return " or ".join(t for t in texts if t) or None


_ANY_VALUE = object()  # fits no type: type_problem then names the type


def type_problem(value: Any, expected: Any) -> str | None:
    """None when ``value`` fits the annotation ``expected``, else what was expected."""
    if expected in (inspect.Parameter.empty, Any, object):
        return None
    if typing.get_origin(expected) is typing.Annotated:
        base, *extras = typing.get_args(expected)
        problem = type_problem(value, base)
        ranges = [r for r in extras if isinstance(r, RANGES)]
        if ranges and isinstance(value, float) and not math.isfinite(value):
            noun = "a finite number" if base is float else problem_noun(base)
            return f"{noun} {' and '.join(r.describe() for r in ranges)}"
        if problem or not ranges or not isinstance(value, (int, float)):
            return problem
        out_of_range = [p for r in ranges if (p := r.problem(value))]
        return f"{problem_noun(base)} {out_of_range[0]}" if out_of_range else None
    origin = typing.get_origin(expected)
    args = typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        problems = [type_problem(value, a) for a in options]
        if any(p is None for p in problems):
            return None
        return " or ".join(p for p in problems if p)
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(format_value(a) for a in args)
    if expected is bool:
        return None if isinstance(value, bool) else "true or false"
    if expected is int:  # TOML's integers are 64-bit; Python's parser takes any
        return None if isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63 \
            else "an integer (64-bit)" if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if expected is float:  # a recipe's inf or nan would only fail later, mid-run
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "a finite number" if number else "a number"
    if expected is str:
        return None if isinstance(value, str) else "a string"
    if origin in (list, tuple, Sequence) or expected in (list, tuple):
        if not isinstance(value, list):
            return "a list"
        item = args[0] if args else Any
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = args[0]
        elif origin is tuple and args:
            if len(args) != len(value):
                return f"a list of {len(args)} items"
        for element in value:
            problem = type_problem(element, item)
            if problem:
                return f"a list whose items are {problem}"
        return None
    if origin is dict or expected is dict:
        if not isinstance(value, dict):
            return "a table"
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        for key, item in value.items():
            problem = type_problem(key, key_type) or type_problem(item, value_type)
            if problem:
                return f"a table of {_noun(key_type)} keys and {_noun(value_type)} values"
        return None
    if isinstance(expected, type) and issubclass(expected, Path):
        return None if isinstance(value, str) else "a path (a string)"
    return None


def _noun(expected: Any) -> str:
    """What a table's keys or values are, for a message ("number", "string")."""
    return {str: "string", int: "integer", float: "number", bool: "true or false"}.get(expected, "any")


def problem_noun(expected: Any) -> str:
    return "an integer" if expected is int else "a number"


def format_value(value: Any) -> str:
    return _toml_value(value)


# ---------------------------------------------------------------- resolving and writing


def resolved(recipe: Recipe, registry: Registry) -> Recipe:
    """A copy of ``recipe`` with every default written out, so nothing is implicit."""
    data: dict[str, Any] = {RUN: dataclasses.asdict(recipe.run)}
    for table in recipe.tables():
        factory = registry.get(table.kind, table.type).factory
        injected = {**INJECTED, **role_values(recipe.roles)} if table.address == "method" else INJECTED
        values = {"type": table.type}
        for name, param in parameters(factory).items():
            if name in injected:
                continue
            if name in table.values:
                values[name] = table.values[name]
            elif param.default is not inspect.Parameter.empty and param.default is not None:
                values[name] = _plain(param.default)
        section, _, sub = table.address.partition(".")
        if sub:
            data.setdefault(section, {})[sub] = values
        else:
            data[section] = values
    return Recipe(recipe.source, data, roles=dict(recipe.roles))


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def dump_toml(data: dict[str, Any]) -> str:
    """Write nested tables as TOML; a value that is a table becomes ``[a.b]``."""
    lines: list[str] = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
        for key, value in tables.items():
            emit(f"{prefix}.{_toml_key(key)}" if prefix else _toml_key(key), value)

    emit("", data)
    return "\n".join(lines) + "\n"
