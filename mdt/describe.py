"""What ``mdt list KIND NAME`` and ``mdt checkpoint info`` tell a person: a component's
arguments with their ranges and defaults, the checks it adds, the networks and step states
of a method; a checkpoint's step, recipe, labels and tensors. Lines of text; the command
line prints them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

from mdt import checkpoint as ckpt
from mdt.component import Component
from mdt.contracts import interface, state_fields
from mdt.interfaces import Method, Network
from mdt.recipe_layout import INJECTED, PROVIDED, role_values, section_of
from mdt.registry import Registry
from mdt.signatures import expected_type, parameters, range_text, type_hints, value_text

Base = TypeVar("Base")


def component_lines(registry: Registry, kind: str, name: str) -> list[str]:
    """Where a component is defined, its docstring, and what a recipe may write for it."""
    component, found = registry.get(kind, name), registry.find(kind, name)
    factory = component.factory
    lines = [f"defined at {found['file']}:{found['line']}", found["docstring"] or "(no docstring)"]
    roles = factory.roles if _subclass_of(factory, Method) else {}
    lines += _argument_lines(factory, kind, {**INJECTED, **role_values(roles)})
    fits = factory.arguments_problem if _subclass_of(factory, Component) else None
    if fits is not None and fits is not Component.arguments_problem:  # its docstring says what it checks
        lines.append(f"  also checked: {' '.join((inspect.getdoc(fits) or '').split())}")
    for label, names in (("takes", "inputs"), ("returns", "outputs")):
        declared = interface(factory, names) if _subclass_of(factory, Network) else None
        if declared:
            lines.append(f"  {label}: ({', '.join(declared)})")
    for role_name, role in roles.items():
        article = "an" if role.kind[:1] in "aeiou" else "a"
        lines.append(
            f"  network [networks.{role_name}]: {article} {role.kind} taking ({', '.join(role.inputs)}), read for "
            f"({', '.join(role.outputs)}){'; the method builds as many as it needs' if role.many else ''}"
            f"{'; ' + role.description if role.description else ''}"
        )
    for phase, state in (factory.phases if _subclass_of(factory, Method) else {}).items():
        lines.append(f"  losses may read in the {phase} phase: {', '.join(state_fields(state))}")
    return lines


def _subclass_of(factory: Callable[..., Any], base: type[Base]) -> TypeGuard[type[Base]]:
    """Whether ``factory`` is a class that subclasses ``base`` (a function registered for a
    kind mdt only calls is neither)."""
    return inspect.isclass(factory) and issubclass(factory, base)


def _argument_lines(factory, kind: str, injected: dict[str, str]) -> list[str]:
    """One line per constructor argument: set by mdt (and its range), or its default and what it takes."""
    hints, provided, lines = type_hints(factory), PROVIDED[section_of(kind)], []
    for param in parameters(factory).values():
        if param.name in INJECTED and param.name not in provided:
            lines.append(f"  {param.name}: {INJECTED[param.name]}, which mdt does not provide to a {kind}: a recipe cannot build this")
        elif param.name in injected:
            limit = range_text(expected_type(param, hints))
            lines.append(f"  {param.name}: set by mdt ({injected[param.name]}){'; it must be ' + limit if limit else ''}")
        else:
            default = "required" if param.default is param.empty else f"default {param.default!r}"
            allowed = value_text(param, hints)
            lines.append(f"  {param.name}: {default}{'; ' + allowed if allowed else ''}")
    return lines


def checkpoint_lines(path: Path, registry: Registry) -> tuple[ckpt.Checkpoint, list[str]]:
    """The checkpoint ``path`` names (a file, a run or model folder, or a judge's folder),
    read, and lines saying what it holds: a model's step, recipe and labels, or a judge's
    backbone, labels and accuracy."""
    from mdt.inference import model_recipe

    file = ckpt.resolve_any(path)
    saved = ckpt.read(file)
    step = f"  step {saved.step}" if saved.content == ckpt.MODEL else ""  # a judge's steps are in its table
    lines = [f"{file}  {saved.content}{step}  mdt {saved.version}"]
    if saved.origin:
        lines.append(f"  imported from {saved.origin}")
    if saved.content == ckpt.MODEL:
        lines += [f"  [{table.address}] {table.type}" for table in model_recipe(file, saved, registry).tables()]
    else:
        lines.append("  [classifier] " + ", ".join(f"{k}: {v}" for k, v in saved.classifier_table.items()))
        counts = saved.accuracy_images  # a judge written before mdt counted its images: none
        for key, value in saved.accuracy.items():
            on = f"{counts[key]} " if key in counts else ""
            lines.append(f"  accuracy on {on}real held-out images, {key.removeprefix('real/')}: {value:.4f}")
    lines += [f"  labels of '{schema.dataset}': {', '.join(schema.names)}" for schema in saved.schemas]
    return saved, lines


def tensor_groups(saved: ckpt.Checkpoint) -> dict[str, list[int]]:
    """A checkpoint's tensors by network (optimizer, random state): [tensors, elements]."""
    groups: dict[str, list[int]] = {}
    for name, tensor in saved.tensors.items():
        head = name.split("/")[0] if not name.startswith(ckpt.TRAINING_PREFIXES) else "/".join(name.split("/")[:2])
        groups.setdefault(head, [0, 0])
        groups[head][0] += 1
        groups[head][1] += tensor.numel()
    return groups
