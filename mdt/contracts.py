"""The contracts between a method, its networks and its losses, checked before anything is built.

- A method declares its network roles (:class:`mdt.method.Role`): each role's kind, what
  the method passes the network (``inputs``) and what it reads of the result
  (``outputs``). A network class (:class:`mdt.interfaces.Network`) declares its own.
- A method declares, per phase of its updates, the type of the state its losses read
  (``Method.phases``): the state's public fields are what a loss may read. A field that
  exists only when a network has an auxiliary output (an attention mask) says so in its
  annotation: ``Annotated[torch.Tensor, NeedsOutput("generator", "mask")]``.
- A loss declares the fields it reads in each phase (``reads``).

``mdt recipe check`` runs these checks; each problem is one line naming the table, the
component and the missing piece.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from mdt.errors import did_you_mean


@dataclass(frozen=True)
class NeedsOutput:
    """Annotation metadata of a step-state field that exists only when the network of
    ``role`` returns ``output``: a loss reading the field needs such a network."""

    role: str
    output: str


def interface(factory: Any, name: str) -> tuple[str, ...] | None:
    """A network class's declared ``inputs`` or ``outputs``; None when it declares none."""
    value = factory.inputs if name == "inputs" else factory.outputs
    return tuple(value) if isinstance(value, (tuple, list)) else None


def network_problem(role_name: str, role, network_type: str, factory: Any, method: str) -> str | None:
    """Why the network ``network_type`` cannot fill ``role_name`` of ``method``, or None."""
    for name, value in (("inputs", factory.inputs), ("outputs", factory.outputs)):
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
        return f"type '{network_type}' takes ({', '.join(inputs)}), but method '{method}' gives its {role_name} ({', '.join(role.inputs)})"
    if role.outputs and outputs is not None:
        missing = [o for o in role.outputs if o not in outputs]
        if missing:
            return f"type '{network_type}' returns ({', '.join(outputs)}), but method '{method}' reads '{missing[0]}' of its {role_name}"
    return None


def _annotations(klass: type) -> dict[str, Any]:
    """A class's own annotations, resolved where they can be (unresolvable ones still name fields)."""
    try:
        return typing.get_type_hints(klass, include_extras=True)
    except Exception:
        return inspect.get_annotations(klass)


def _return_annotation(value: property | cached_property) -> Any:
    function = value.fget if isinstance(value, property) else value.func
    try:
        return typing.get_type_hints(function, include_extras=True).get("return")
    except Exception:
        return None


def _fields(state_type: type) -> dict[str, tuple[str, Any]]:
    """Each public field of a step state: (description, annotation)."""
    fields: dict[str, tuple[str, Any]] = {}
    for klass in reversed(state_type.__mro__):
        if klass is object:
            continue
        for name, hint in _annotations(klass).items():
            if not name.startswith("_") and typing.get_origin(hint) is not typing.ClassVar:
                fields[name] = (hint.__name__ if isinstance(hint, type) else str(hint), hint)
        for name, value in vars(klass).items():
            if name.startswith("_") or not isinstance(value, (property, cached_property)):
                continue
            doc = inspect.getdoc(value.fget if isinstance(value, property) else value.func) or ""
            fields[name] = (doc.splitlines()[0] if doc else fields.get(name, ("", None))[0], _return_annotation(value))
    return fields


def state_fields(state_type: type) -> dict[str, str]:
    """The fields a loss may read of a step state: annotated attributes and properties,
    with their descriptions (the property's docstring, or the annotation)."""
    return {name: description for name, (description, _) in _fields(state_type).items()}


def needed_outputs(state_type: type) -> dict[str, NeedsOutput]:
    """The fields of a step state that exist only when a network returns an extra output."""
    found = {}
    for name, (_, hint) in _fields(state_type).items():
        marks = [m for m in typing.get_args(hint)[1:] if isinstance(m, NeedsOutput)] if typing.get_origin(hint) is typing.Annotated else []
        if marks:
            found[name] = marks[0]
    return found


def loss_problem(
    loss_type: str, loss_factory: Any, method: str, phases: Mapping[str, type], outputs: Mapping[str, tuple[str, ...] | None]
) -> str | None:
    """Why the loss ``loss_type`` cannot run under ``method``, or None. ``phases`` maps
    each of the method's phases to its state type; ``outputs`` each role to the outputs
    its chosen network declares."""
    reads = loss_factory.reads
    if not isinstance(reads, Mapping):
        return f"loss '{loss_type}' declares reads = {reads!r}; write a dict of phase: (field, ...)"
    for phase, fields in reads.items():
        if isinstance(fields, str):
            return f"loss '{loss_type}' declares reads[{phase!r}] = {fields!r}, a string; write a tuple of field names: ({fields!r},)"
    if not reads:
        return f"loss '{loss_type}' reads nothing in any phase; declare reads = {{phase: (field, ...)}}"
    foreign = [p for p in reads if p not in phases]
    if foreign:
        return f"loss '{loss_type}' takes part in the '{foreign[0]}' phase, which method '{method}' does not run ({', '.join(phases)})"
    for phase, fields in reads.items():
        available = state_fields(phases[phase])
        needed = needed_outputs(phases[phase])
        for field in fields:
            if field not in available:
                return f"loss '{loss_type}' reads '{field}', which method '{method}' does not offer in its {phase} phase" + did_you_mean(
                    field, available
                )
            if field in needed:
                role, output = needed[field].role, needed[field].output
                declared = outputs.get(role)
                if declared is not None and output not in declared:
                    return (
                        f"loss '{loss_type}' reads '{field}', which method '{method}' offers only when its {role} returns "
                        f"'{output}'; the chosen {role} returns ({', '.join(declared)})"
                    )
    return None
