"""The contracts between a method, its networks and its losses, checked before anything is built.

- A method declares its network roles (:class:`mdt.method.Role`): each role's kind, what
  the method passes the network (``inputs``) and what it reads of the result
  (``outputs``). A network class declares its own ``inputs`` and ``outputs``.
- A method declares, per phase of its updates, the type of the state its losses read
  (``Method.phases``): the state's public fields are what a loss may read. A field that
  exists only when a network has an auxiliary output (an attention mask) is listed in the
  state's ``needs_outputs``: ``{field: (role, output)}``.
- A loss declares the fields it reads in each phase (``reads``).

``mdt recipe check`` runs these checks; each problem is one line naming the table, the
component and the missing piece.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from mdt.errors import did_you_mean


def interface(factory: Any, name: str) -> tuple[str, ...] | None:
    """A network class's declared ``inputs`` or ``outputs``; None when it declares none."""
    value = getattr(factory, name, None)
    return tuple(value) if isinstance(value, (tuple, list)) else None


def network_problem(role_name: str, role, network_type: str, factory: Any, method: str) -> str | None:
    """Why the network ``network_type`` cannot fill ``role_name`` of ``method``, or None."""
    for name in ("inputs", "outputs"):
        value = getattr(factory, name, None)
        if isinstance(value, str):
            return f"type '{network_type}' declares {name} = {value!r}, a string; write a tuple of names: ({value!r},)"
    inputs = interface(factory, "inputs")
    outputs = interface(factory, "outputs")
    if (role.inputs and inputs is None) or (role.outputs and outputs is None):
        return (
            f"type '{network_type}' declares no {'inputs' if role.inputs and inputs is None else 'outputs'}; method "
            f"'{method}' gives its {role_name} ({', '.join(role.inputs)}) and reads ({', '.join(role.outputs)}): declare "
            "them on the network's class (inputs = (...), outputs = (...))"
        )
    if role.inputs and inputs is not None and inputs != tuple(role.inputs):
        return (
            f"type '{network_type}' takes ({', '.join(inputs)}), but method '{method}' gives its {role_name} "
            f"({', '.join(role.inputs)})"
        )
    if role.outputs and outputs is not None:
        missing = [o for o in role.outputs if o not in outputs]
        if missing:
            return (
                f"type '{network_type}' returns ({', '.join(outputs)}), but method '{method}' reads "
                f"'{missing[0]}' of its {role_name}"
            )
    return None


def state_fields(state_type: type) -> dict[str, str]:
    """The fields a loss may read of a step state: annotated attributes and properties,
    with their descriptions (the property's docstring, or the annotation)."""
    fields: dict[str, str] = {}
    for klass in reversed(state_type.__mro__):
        if klass is object:
            continue
        try:
            hints = typing.get_type_hints(klass)
        except Exception:  # unresolvable annotations still name fields
            hints = dict(getattr(klass, "__annotations__", {}))
        for name, hint in hints.items():
            if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar:
                fields[name] = getattr(hint, "__name__", str(hint))
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (property, cached_property)):
                doc = inspect.getdoc(value.fget if isinstance(value, property) else value.func) or ""
                fields[name] = doc.splitlines()[0] if doc else fields.get(name, "")
    return fields


def loss_reads(loss_factory: Any) -> dict[str, tuple[str, ...]] | None:
    """A loss's ``reads``, by phase; None when the loss declares none."""
    reads = getattr(loss_factory, "reads", None)
    if reads is None:
        return None
    return {phase: tuple(fields) for phase, fields in reads.items()}


def loss_phases(loss_factory: Any) -> tuple[str, ...]:
    """The phases a loss takes part in: the keys of its ``reads``, or its ``phases``."""
    reads = loss_reads(loss_factory)
    return tuple(reads) if reads is not None else tuple(getattr(loss_factory, "phases", ()) or ())


def loss_problem(loss_type: str, loss_factory: Any, method: str, phases: Mapping[str, type],
                 outputs: Mapping[str, tuple[str, ...] | None]) -> str | None:
    """Why the loss ``loss_type`` cannot run under ``method``, or None. ``phases`` maps
    each of the method's phases to its state type; ``outputs`` each role to the outputs
    its chosen network declares."""
    reads = getattr(loss_factory, "reads", None)
    if reads is not None and not isinstance(reads, Mapping):
        return f"loss '{loss_type}' declares reads = {reads!r}; write a dict of phase: (field, ...)"
    for phase, fields in (reads or {}).items():
        if isinstance(fields, str):
            return (f"loss '{loss_type}' declares reads[{phase!r}] = {fields!r}, a string; "
                    f"write a tuple of field names: ({fields!r},)")
    own = loss_phases(loss_factory)
    if not own:
        return f"loss '{loss_type}' names no phases"
    foreign = [p for p in own if p not in phases]
    if foreign:
        return f"loss '{loss_type}' takes part in the '{foreign[0]}' phase, which method '{method}' does not run ({', '.join(phases)})"
    for phase, fields in (loss_reads(loss_factory) or {}).items():
        state = phases[phase]
        available = state_fields(state)
        for field in fields:
            if field not in available:
                return (f"loss '{loss_type}' reads '{field}', which method '{method}' does not offer in its {phase} phase"
                        + did_you_mean(field, available))
            role, output = getattr(state, "needs_outputs", {}).get(field, (None, None))
            declared = outputs.get(role) if role else None
            if role and declared is not None and output not in declared:
                return (
                    f"loss '{loss_type}' reads '{field}', which method '{method}' offers only when its {role} returns "
                    f"'{output}'; the chosen {role} returns ({', '.join(declared)})"
                )
    return None
