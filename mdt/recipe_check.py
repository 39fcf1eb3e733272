"""Checking a parsed recipe against the registered components before anything is built:
every table's keys against its constructor's signature (mdt/signatures.py), the values
mdt fills in, the method's contracts with its networks and losses (mdt/contracts.py),
and what components ask of each other. Each problem is one line naming the recipe, the
table and the key.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from mdt import contracts
from mdt.errors import MdtError, did_you_mean
from mdt.labels import LABEL_LAYOUTS, LabelEncoder
from mdt.recipe_layout import (
    INJECTED,
    NETWORKS,
    RUN,
    SECTIONS,
    Recipe,
    Table,
    method_roles,
    role_values,
    run_filled,
    said_where,
    unprovided,
)
from mdt.registry import Registry, plural
from mdt.samples import SampleSpec, declared_samples, square_images
from mdt.settings import RunSettings, device_problem
from mdt.signatures import expected_type, format_value, parameters, type_hints, type_problem


def validate(recipe: Recipe, registry: Registry) -> None:
    """Check every table against its component's signature and the method's contracts;
    raise on the first problem."""
    _check_table_arguments(recipe, RUN, dict(recipe.data.get(RUN, {})), RunSettings, injected={})
    problem = device_problem(recipe.run.device)
    if problem:
        raise MdtError(f"{said_where(recipe, RUN, 'device')} key 'device' = '{recipe.run.device}': {problem}")
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
            raise MdtError(f"{said_where(recipe, table.address)} {problem}")
        problem = unprovided(table.address.partition(".")[0], table.type, table.kind, component.factory)
        if problem:
            raise MdtError(f"{said_where(recipe, table.address)} {problem}")
        if table.kind == "loss" and "weight" not in parameters(component.factory):  # every method multiplies by it
            raise MdtError(
                f"{said_where(recipe, table.address)} loss '{table.type}' takes no 'weight' argument; a loss is "
                "weighted in its method's sum (subclass mdt.loss.Loss, whose constructor takes it)"
            )
        injected = {**INJECTED, **role_values(recipe.roles)} if table.address == "method" else INJECTED
        _check_table_arguments(recipe, table.address, table.arguments(), component.factory, injected=injected)
        _check_run_values(recipe, table, component.factory)
    sample = declared_samples(recipe, registry)
    for table in recipe.tables():
        factory = registry.get(table.kind, table.type).factory
        _check_argument_combination(recipe, table, factory, sample)
        _check_takes_samples(recipe, table, factory, sample)
    _check_networks_together(recipe, method, registry)
    _check_label_layout(recipe, method, registry)
    if recipe.run.precision not in ("auto", *method.factory.precisions):
        raise MdtError(
            f"{said_where(recipe, RUN, 'precision')} key 'precision' = '{recipe.run.precision}': method "
            f"'{method.name}' computes in {' or '.join(method.factory.precisions)} only"
        )


def _check_run_values(recipe: Recipe, table: Table, factory) -> None:
    """A range on an argument mdt fills from ``[run]`` (a network that takes only powers of
    two as ``image_size``) checks the recipe's ``[run]`` value."""
    params, hints = parameters(factory), type_hints(factory)
    for name, value in run_filled(recipe).items():
        if name in params:
            problem = type_problem(value, expected_type(params[name], hints))
            if problem:
                raise MdtError(
                    f"{said_where(recipe, RUN, name)} key '{name}' = {format_value(value)}: "
                    f"[{table.address}] type '{table.type}' takes {problem}"
                )


def _check_argument_combination(recipe: Recipe, table: Table, factory, sample: SampleSpec) -> None:
    """A component whose arguments constrain each other or the samples' size (StarGAN's
    discriminator halves them ``layers`` times) says what does not fit in
    ``arguments_problem(values)``: the table's values, its defaults filled in, with
    ``[run]``'s ``image_size`` and ``iterations`` and the datasets' ``sample`` whether it
    takes them or not."""
    values = {name: p.default for name, p in parameters(factory).items() if p.default is not inspect.Parameter.empty}
    values.update(table.arguments())
    values.update(run_filled(recipe), sample=sample)
    problem = factory.arguments_problem(values)
    if problem:
        raise MdtError(f"{said_where(recipe, table.address)} type '{table.type}': {problem}")


def _check_takes_samples(recipe: Recipe, table: Table, factory, sample: SampleSpec) -> None:
    """A network or augmentation that takes ``image_size`` but no ``sample`` is made for
    RGB images of that side: datasets that give anything else are refused here, in one
    line, rather than at the first step with a shape error from inside a network."""
    touches_samples = table.address.startswith(NETWORKS + ".") or table.address == "augmentation"
    if not touches_samples or sample == square_images(recipe.run.image_size):
        return
    params = parameters(factory)
    if "image_size" in params and "sample" not in params:
        raise MdtError(
            f"{said_where(recipe, table.address)} type '{table.type}' takes RGB images of [run] image_size "
            f"({recipe.run.image_size} x {recipe.run.image_size}), but the datasets give {sample.modality} samples "
            f"{sample.describe()}; use a {table.kind} that takes the datasets' samples (a 'sample' argument)"
        )


def _check_networks_together(recipe: Recipe, method, registry: Registry) -> None:
    """What the method needs of its networks together (``Method.networks_problem``): each
    role's network arguments, written or by default."""
    arguments = {}
    for name in recipe.roles:
        table = recipe.table(f"{NETWORKS}.{name}")
        params = parameters(registry.get(table.kind, table.type).factory)
        arguments[name] = {**{k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}, **table.arguments()}
    problem = method.factory.networks_problem(arguments)
    if problem:
        raise MdtError(f"{recipe.source}: method '{method.name}' {problem}")


def _check_label_layout(recipe: Recipe, method, registry: Registry) -> None:
    """A method that needs one class per image (``label_layout``) and a ``[labels]``
    encoder that declares another layout cannot work together."""
    needed = method.factory.label_layout
    labels = recipe.table("labels")
    given = registry.get(labels.kind, labels.type).factory_class(LabelEncoder).label_layout
    if needed and given and needed != given:
        fitting = [
            n for n in registry.names(labels.kind) if registry.get(labels.kind, n).factory_class(LabelEncoder).label_layout == needed
        ]
        such = f"; use a type that gives it, such as {', '.join(repr(n) for n in fitting)}" if fitting else ""
        raise MdtError(
            f"{said_where(recipe, 'labels', 'type')} type '{labels.type}' gives {LABEL_LAYOUTS.get(given, given)}, but "
            f"method '{method.name}' needs {LABEL_LAYOUTS.get(needed, needed)}{such}"
        )


def _component(recipe: Recipe, table: Table, registry: Registry):
    where = said_where(recipe, table.address)
    if "type" not in table.values:
        raise MdtError(f"{where} has no 'type' key ({_kind_hint(table.kind, registry)})")
    if not isinstance(table.values["type"], str):
        raise MdtError(f"{where} 'type' must be a string naming a registered {table.kind}")
    try:
        return registry.get(table.kind, table.type)
    except MdtError as exc:
        raise MdtError(f"{said_where(recipe, table.address, 'type')} {exc}") from None


def _check_roles(recipe: Recipe, method: str, roles: Mapping[str, Any], registry: Registry) -> None:
    """One [networks.<role>] table per role of the method, and no other."""
    tables = recipe.data.get(NETWORKS, {})
    for name, role in roles.items():
        if name not in tables:
            raise MdtError(f"{recipe.source}: method '{method}' needs a [{NETWORKS}.{name}] table ({_kind_hint(role.kind, registry)})")
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


def _check_table_arguments(recipe: Recipe, address: str, arguments: dict[str, Any], factory, injected: Mapping[str, str]) -> None:
    """Check one table's keys against ``factory``'s signature; ``injected`` names are mdt's to fill."""
    params = parameters(factory)
    hints = type_hints(factory)
    settable = [n for n in params if n not in injected]
    for key, value in arguments.items():
        where = said_where(recipe, address, key)
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
            raise MdtError(f"{said_where(recipe, address)} missing required key '{name}'")
