"""Recipes: TOML files that say which registered components to build, with which arguments.

One table per component. ``type`` names a registered component; every other key is an
argument of its constructor. Tables that hold several components (``datasets``,
``losses``, ``metrics``, ``loggers``) have one named sub-table each; the name is what logs show.
``[networks.<role>]`` holds one table per network role of the method (see
:class:`mdt.method.Role`): the method decides which networks exist and of what kind.
Values mdt knows itself (:data:`INJECTED`, and a method's networks) are passed in by
the engine and may not be written in a recipe. Everything is checked against the
constructors' signatures and the contracts of :mod:`mdt.contracts` before anything is
built (mdt/recipe_check.py). This module reads and writes the file; what a recipe is
made of is mdt/recipe_layout.py.

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
import re
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from mdt.component import Component
from mdt.errors import MdtError, did_you_mean
from mdt.extras import install_hint
from mdt.recipe_check import validate
from mdt.recipe_layout import INJECTED, LOGGERS, NETWORKS, RUN, SECTIONS, Recipe, method_roles, role_values, said_where
from mdt.registry import Registry
from mdt.signatures import format_value, parameters
from mdt.toml_text import dump_toml, plain_value


def model_recipe_text(text: str) -> str:
    """A checkpoint's recipe without its ``[loggers]``: what a shared model folder carries
    (someone's tracking server is not part of their model)."""
    data = tomllib.loads(text)
    return dump_toml(data) if data.pop(LOGGERS, None) is not None else text


BUILTIN_RECIPES = "mdt_recipes"  # the package the repository's recipes/ is installed as
EXTENDS = "extends"
WITHOUT = "without"  # with extends: the base's named tables the recipe leaves out ("datasets.celeba")


def builtin_recipes() -> dict[str, Any]:
    """The recipes installed with mdt, by name (``quickstart``): their files, to read."""
    folder = resources.files(BUILTIN_RECIPES)
    return {
        entry.name.removesuffix(".toml"): entry for entry in sorted(folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".toml")
    }


def recipe_summary(text: str) -> str:
    """The first sentence of a recipe's opening comment: what it trains. A sentence ends
    at a full stop before a capital letter, but not after "et al.", or at the paragraph's end."""
    lines = []
    for line in text.splitlines():
        comment = line.lstrip("#").strip()
        if not line.startswith("#") or not comment:
            break
        lines.append(comment)
    opening = " ".join(lines)
    first = re.split(r"(?<!\bal)\.\s+(?=[A-Z])", opening)[0]
    return first.rstrip(".:") + "." if opening else ""


def recipe_text(name: str | Path) -> tuple[str, str]:
    """(text, source) of a recipe file, or of a built-in recipe named without a folder
    (``quickstart`` or ``quickstart.toml``) where no such file is here."""
    path = Path(name)
    if path.is_dir():
        raise MdtError(f"recipe '{path}' is a folder; give a recipe file (.toml) or a built-in recipe's name")
    if not path.is_file():
        builtin = builtin_recipes()
        key = path.name.removesuffix(".toml")
        if path.parent != Path("."):
            raise MdtError(f"recipe file '{path}' does not exist")
        if key in builtin:
            return builtin[key].read_text(encoding="utf-8"), key
        raise MdtError(
            f"recipe file '{path}' does not exist, and no built-in recipe is named '{key}'"
            f"{did_you_mean(key, builtin)}; built-in recipes (mdt recipe list): {', '.join(builtin)}"
        )
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise MdtError(f"{path}: cannot read the recipe: {exc}") from exc


def load_recipe(path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None) -> Recipe:
    """Read, override and check a recipe file or a built-in recipe by name. Raises
    :class:`MdtError` on any problem."""
    text, source = recipe_text(path)
    return parse_recipe(text, source, overrides, registry)


def recipe_tables(name: str | Path) -> dict[str, Any]:
    """A recipe's tables as written, with the recipe it extends merged in: before any
    default, override or check (what a script reads to see which tables a recipe has)."""
    return _tables(*recipe_text(name))


def _tables(text: str, source: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MdtError(f"{source}: malformed TOML: {exc}") from None
    if WITHOUT in data and EXTENDS not in data:
        raise MdtError(f"{source}: without = {format_value(data[WITHOUT])} removes tables of the recipe it extends: give extends too")
    return _extended(data, source) if EXTENDS in data else data


def _extended(data: dict, source: str) -> dict:
    """A recipe that ``extends`` another (a built-in recipe's name, or a path from the
    recipe's folder): the base's tables, each replaced key by key by the recipe's (a named
    table, such as ``[losses.identity]``, by the one of that name; a new name is added;
    ``without`` names the base's named tables to leave out). One level only: a base that
    extends another is refused."""
    name = data.pop(EXTENDS)
    if not isinstance(name, str) or not name.strip():
        raise MdtError(f"{source}: extends = {format_value(name)}: give a built-in recipe's name or a recipe file's path")
    path = Path(name) if Path(name).is_absolute() or ("/" not in name and not name.endswith(".toml")) else Path(source).parent / name
    base_text, base_source = recipe_text(path)
    try:
        base = tomllib.loads(base_text)
    except tomllib.TOMLDecodeError as exc:
        raise MdtError(f"{base_source} (extended by {source}): malformed TOML: {exc}") from None
    if EXTENDS in base:
        raise MdtError(
            f"{source}: extends '{name}', which extends '{base[EXTENDS]}' itself; a recipe extends one that extends "
            "nothing (mdt recipe show writes a whole recipe to start from)"
        )
    _remove(base, data.pop(WITHOUT, []), name, source)
    for section, value in data.items():
        old = base.get(section)
        if not isinstance(value, dict) or not isinstance(old, dict):
            base[section] = value
        elif section in SECTIONS and SECTIONS[section].many:
            for table, keys in value.items():
                both = isinstance(keys, dict) and isinstance(old.get(table), dict)
                old[table] = {**old[table], **keys} if both else keys
        else:
            base[section] = {**old, **value}
    return base


def _remove(base: dict, without: Any, name: str, source: str) -> None:
    """``without = ["datasets.celeba"]``: the base's named tables that the recipe leaves out
    (a recipe for other data replaces the base's dataset rather than adding to it)."""
    if not isinstance(without, list) or not all(isinstance(item, str) for item in without):
        raise MdtError(f'{source}: without = {format_value(without)}: give a list of tables, such as ["datasets.faces"]')
    named = ", ".join(section for section, layout in SECTIONS.items() if layout.many)
    for item in without:
        section, _, table = item.partition(".")
        if section not in SECTIONS or not SECTIONS[section].many or not table:
            raise MdtError(f"{source}: without: '{item}' is not a named table; give SECTION.NAME of a section that holds several ({named})")
        tables = base.get(section, {})
        if table not in tables:
            raise MdtError(f"{source}: without: '{name}' has no [{item}]; its {section}: {', '.join(tables) or 'none'}")
        del tables[table]


def parse_recipe(
    text: str, source: str, overrides: Sequence[str] = (), registry: Registry | None = None, model_only: bool = False
) -> Recipe:
    """A checked recipe. ``model_only``: a checkpoint's recipe, read to rebuild its model;
    its loggers, and losses of plugins not installed here, are left out: a tracker or a
    training-only plugin need not be installed where the model is used."""
    data = _tables(text, source)
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
        recipe.notices.append(
            f"{recipe.source}: [{key}] is read as [{NETWORKS}.{key}]; write it so (mdt recipe show prints the recipe that way)"
        )
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
        factory = registry.get(table.kind, table.type).factory_class(Component)
        for package in factory.requires:
            if importlib.util.find_spec(package) is None:
                hint = install_hint(factory.extra) if factory.extra else f"pip install {package}"
                raise MdtError(
                    f"{said_where(recipe, table.address, 'type')} type '{table.type}' needs the Python package "
                    f"'{package}', which is not installed ({hint})"
                )


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
                    raise MdtError(f"{recipe.source}: [{key}] holds named tables such as [{key}.{name}], but '{key}.{name}' is a value")


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
    if key == "type":
        _add_table(recipe.data, table_path)
    default = SECTIONS[head].default if head in SECTIONS else None
    if head == RUN:
        recipe.data.setdefault(RUN, {})  # [run] may be left out of a recipe; it can still be set
    elif default is not None and head not in recipe.data and table_path == head:
        recipe.data[head] = dict(default)  # the table the recipe gets anyway, now with this key
    node: Any = recipe.data
    walked = []
    for part in table_path.split("."):
        walked.append(part)
        if not isinstance(node, dict) or part not in node:
            choices = list(node) if isinstance(node, dict) else []
            choices += [RUN, *roles] if len(walked) == 1 else []
            raise MdtError(f"--set {written}: {recipe.source} has no table [{'.'.join(walked)}]{did_you_mean(part, choices)}")
        node = node[part]
    if not isinstance(node, dict):
        raise MdtError(f"--set {written}: '{table_path}' is a value, not a table")
    node[key] = value
    recipe.overridden[address] = written


def _add_table(data: dict, table_path: str) -> None:
    """A table the recipe lacks, added by ``--set TABLE.type=NAME`` (a logger, a metric, a
    loss): a named table of a section that holds several, or a section of one table."""
    head, _, name = table_path.partition(".")
    section = SECTIONS.get(head)
    if section is None or not isinstance(data.get(head, {}), dict):
        return
    if section.many and name and "." not in name:
        data.setdefault(head, {}).setdefault(name, {})
    elif not section.many and not name:
        data.setdefault(head, {})


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
                values[name] = plain_value(param.default)
        section, _, sub = table.address.partition(".")
        if sub:
            data.setdefault(section, {})[sub] = values
        else:
            data[section] = values
    return Recipe(recipe.source, data, roles=dict(recipe.roles))
