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
from pathlib import Path
from typing import Any

from mdt.errors import MdtError, did_you_mean
from mdt.recipe_check import validate
from mdt.recipe_layout import INJECTED, LOGGERS, NETWORKS, RUN, SECTIONS, Recipe, said_where, method_roles, role_values
from mdt.registry import Registry
from mdt.signatures import parameters
from mdt.toml_text import plain_value, dump_toml


def model_recipe_text(text: str) -> str:
    """A checkpoint's recipe without its ``[loggers]``: what a shared model folder carries
    (someone's tracking server is not part of their model)."""
    data = tomllib.loads(text)
    return dump_toml(data) if data.pop(LOGGERS, None) is not None else text


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
                raise MdtError(f"{said_where(recipe, table.address, 'type')} type '{table.type}' needs the Python package "
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
