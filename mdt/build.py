"""From a checked recipe to built components, with the engine's values injected."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from mdt.data import item_problem
from mdt.errors import MdtError
from mdt.labels import LabelEncoder, LabelSchema
from mdt.loggers import Loggers
from mdt.method import Method
from mdt.plugins import third_party_components
from mdt.precision import choose_precision
from mdt.probe import known_inputs, run_problem
from mdt.recipe_layout import NETWORKS, Recipe, Table, unprovided
from mdt.registry import Registry
from mdt.samples import SampleSpec, declared_samples
from mdt.settings import DEVICE_NAMES, RunSettings, device_problem
from mdt.signatures import parameters


@dataclass
class Components:
    """Everything a recipe builds. Datasets are absent when built for inference."""

    settings: RunSettings
    device: torch.device
    sample: SampleSpec  # what the datasets give (mdt.samples), declared by them in the recipe
    modality: Any  # the registered modality the samples name: reads, writes and pictures them (mdt.interfaces.Modality)
    statistics: dict[str, torch.Tensor]  # what the model keeps of its training data, by "<dataset>/<key>" (checkpoints hold it)
    schemas: list[LabelSchema]
    dataset_names: list[str]
    label_encoder: LabelEncoder
    augmentation: Any
    method: Method
    train_sets: list[Any] = field(default_factory=list)
    test_sets: list[Any] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    recipe: Recipe | None = None  # what built them
    plugins: list[dict[str, str]] = field(default_factory=list)  # its third-party components (checkpoints record them)


def pick_device(name: str, where: str = "[run] device") -> torch.device:
    """The device ``name`` asks for; ``where`` names the setting in errors (a recipe's
    key, or the ``device`` of a command or of the Python API)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device_problem(name):
        raise MdtError(f"{where} = '{name}' is not a device; use {DEVICE_NAMES}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MdtError(f"{where} = '{name}', but no CUDA device is available; use 'auto' or 'cpu'")
    accelerator = _device_module(device.type) if device.type != "cpu" else None
    if device.type != "cpu" and not (accelerator is not None and accelerator.is_available()):
        raise MdtError(f"{where} = '{name}', but this machine has no such device; use 'auto' or 'cpu'")
    if device.index is not None and accelerator is not None and device.index >= accelerator.device_count():  # not a CPU
        raise MdtError(f"{where} = '{name}', but this machine has {accelerator.device_count()} {device.type} device(s), numbered from 0")
    return device


def _device_module(kind: str):
    """torch's module of a device type (torch.cuda, torch.mps), or None where this torch has none."""
    try:
        return torch.get_device_module(kind)
    except RuntimeError:
        return None


def instantiate(recipe: Recipe, table: Table, registry: Registry, injected: dict[str, Any]) -> Any:
    """Build one table's component, passing the engine's values its constructor asks for."""
    component = registry.get(table.kind, table.type)
    problem = unprovided(table.address.partition(".")[0], table.type, table.kind, component.factory)
    if problem:
        raise MdtError(f"{recipe.source}: [{table.address}] {problem}")
    arguments = dict(table.arguments())
    for name in parameters(component.factory):
        if name in injected and name not in arguments:
            arguments[name] = injected[name]
    try:
        return component.factory(**arguments)
    except MdtError as exc:
        raise MdtError(f"{recipe.source}: [{table.address}] {exc}") from exc
    except (ValueError, TypeError) as exc:  # the first line: torch appends its C++ stack to some
        raise MdtError(f"{recipe.source}: [{table.address}] {table.type}: {_first_line(exc)}") from exc
    except (RuntimeError, MemoryError, OverflowError) as exc:  # sizes beyond memory or a C integer
        raise MdtError(f"{recipe.source}: [{table.address}] {table.type} could not be built with these values: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_networks(
    recipe: Recipe,
    registry: Registry,
    common: dict[str, Any],
    device: torch.device,
    check: Callable[[str, torch.nn.Module], None] | None = None,
    probe: bool = True,
) -> dict[str, Any]:
    """The method's networks by role, in the order it declares them: a network, or for a
    role with ``many`` a function that builds a fresh one per call. With ``check``, each
    network is first built on torch's meta device (no memory, no initialisation) and given
    to it, which may refuse it before anything is allocated. With ``probe`` (a run that
    will train them) every network is first run on the meta device on a batch of the
    datasets' samples (:mod:`mdt.probe`); a checkpoint's networks ran when they trained."""
    settings = recipe.run
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    networks: dict[str, Any] = {}
    for name, role in recipe.roles.items():
        table = recipe.table(f"{NETWORKS}.{name}")
        on_meta = _on_meta(recipe, table, registry, common) if probe or check is not None else None
        if on_meta is not None:
            if check is not None and not role.many:
                check(name, on_meta)
            if probe:
                _run_on_samples(recipe, table, on_meta, common)

        def make(table: Table = table, role=role) -> torch.nn.Module:
            network = instantiate(recipe, table, registry, common).to(device, memory_format=memory_format)
            if settings.compile_generator and role.kind == "generator":
                # Generators only: a discriminator is differentiated twice for its gradient
                # penalty, which compiled code gets wrong (pytorch issue 181581). In place,
                # so checkpoint keys stay the same.
                network.compile()
            return network

        networks[name] = make if role.many else make()
    return networks


def _run_on_samples(recipe: Recipe, table: Table, network: torch.nn.Module, common: dict[str, Any]) -> None:
    """Refuse, in one line, a network that cannot take the datasets' samples."""
    sample = common["sample"]
    problem = run_problem(network, known_inputs(sample, common["label_dim"]))
    if problem:
        raise MdtError(
            f"{recipe.source}: [{table.address}] type '{table.type}' cannot take the datasets' {sample.modality} samples "
            f"{sample.shape}: {problem}"
        )


def _on_meta(recipe: Recipe, table: Table, registry: Registry, common: dict[str, Any]) -> torch.nn.Module | None:
    """The network built on torch's meta device, or None where it cannot be: one that
    computes with its own tensors while it is built is checked once built, as before."""
    try:
        with torch.device("meta"):
            return instantiate(recipe, table, registry, common)
    except Exception:
        return None


def check_networks_run(recipe: Recipe, registry: Registry) -> str | None:
    """For ``mdt recipe check``: build the datasets (for their label schemas) and run every
    network on the meta device on their samples, raising on a network that cannot take
    them; returns why the networks could not be run (data not on this machine) or None."""
    sample = declared_samples(recipe, registry)
    try:
        train_sets, _ = build_datasets(recipe, registry, sample)
    except MdtError as exc:
        return str(exc)
    names = [t.name for t in recipe.section("datasets")]
    schemas = [dataclasses.replace(train.schema, dataset=name) for train, name in zip(train_sets, names, strict=True)]
    common: dict[str, Any] = {"sample": sample, "image_size": recipe.run.image_size, "iterations": recipe.run.iterations}
    common.update(precision="fp32", schemas=schemas)
    encoder = instantiate(recipe, recipe.table("labels"), registry, common)
    common.update(label_dim=encoder.condition_dim, num_classes=encoder.num_classes, label_encoder=encoder)
    for name in recipe.roles:
        table = recipe.table(f"{NETWORKS}.{name}")
        network = _on_meta(recipe, table, registry, common)
        if network is not None:
            _run_on_samples(recipe, table, network, common)
    return None


def build_loggers(recipe: Recipe, registry: Registry, console) -> Loggers:
    """The recipe's ``[loggers]``, for the main process of a training run; two that would
    write to one place are refused (``mdt recipe check`` says so before a run)."""
    named = [(t.name, instantiate(recipe, t, registry, {})) for t in recipe.section("loggers")]
    taken: dict[str, str] = {}
    for name, logger in named:
        where = logger.destination()
        if where is not None and where in taken:
            raise MdtError(
                f"{recipe.source}: [loggers.{taken[where]}] and [loggers.{name}] both write to {where}: every value would be "
                "written twice; give one of them another destination, or remove it"
            )
        if where is not None:
            taken[where] = name
    return Loggers(named, console)


def build_datasets(recipe: Recipe, registry: Registry, spec: SampleSpec) -> tuple[list[Any], list[Any]]:
    """Each ``[datasets.*]`` table's training and test splits, in the recipe's order; the
    first item of each is checked against the dataset's labels and declared samples
    (``spec``) before anything caches or trains on it (a plugin's dataset may give the
    wrong shape or type)."""
    train_sets: list[Any] = []
    test_sets: list[Any] = []
    for table in recipe.section("datasets"):
        train = instantiate(recipe, table, registry, {"split": "train", "image_size": recipe.run.image_size})
        test = instantiate(recipe, table, registry, {"split": "test", "image_size": recipe.run.image_size})
        for split, dataset in (("training", train), ("test", test)):
            problem = item_problem(dataset[0], len(dataset.schema), spec) if len(dataset) else None
            if problem:
                raise MdtError(f"{recipe.source}: [{table.address}] {split} item 0: {problem}")
        train_sets.append(train)
        test_sets.append(test)
    return train_sets, test_sets


def build_losses(recipe: Recipe, registry: Registry, common: dict[str, Any]) -> dict[str, Any]:
    """The recipe's losses by table name, each with a number ``weight`` (every method
    multiplies by it: missing, it would fail mid-step)."""
    losses = {t.name: instantiate(recipe, t, registry, common) for t in recipe.section("losses")}
    for table in recipe.section("losses"):
        if not isinstance(losses[table.name].weight, (int, float)):
            raise MdtError(
                f"{recipe.source}: [{table.address}] loss '{table.type}' has no number 'weight' once built; "
                "a loss class that defines __init__ calls super().__init__(weight)"
            )
    return losses


def build(
    recipe: Recipe,
    registry: Registry,
    *,
    schemas: list[LabelSchema] | None = None,
    statistics: dict[str, torch.Tensor] | None = None,
    device: torch.device | None = None,
    check_network: Callable[[str, torch.nn.Module], None] | None = None,
) -> Components:
    """Build a recipe's components. With ``schemas`` and ``statistics`` (from a
    checkpoint) no dataset is built: that is how ``mdt translate`` works without the
    training data. With ``check_network`` each network is checked on the meta device
    first (build_networks): a checkpoint's weights against its recipe, before a recipe
    edited to absurd sizes allocates them."""
    settings = recipe.run
    device = device or pick_device(settings.device)
    names = [t.name for t in recipe.section("datasets")]
    sample = declared_samples(recipe, registry)
    train_sets: list[Any] = []
    test_sets: list[Any] = []
    if schemas is None:
        train_sets, test_sets = build_datasets(recipe, registry, sample)
        schemas = [dataclasses.replace(train.schema, dataset=name) for train, name in zip(train_sets, names, strict=True)]
        statistics = {
            f"{name}/{key}": value for train, name in zip(train_sets, names, strict=True) for key, value in train.statistics().items()
        }
    common: dict[str, Any] = {
        "sample": sample,
        "image_size": settings.image_size,
        "iterations": settings.iterations,
        "precision": choose_precision(settings.precision, device)[0],
        "schemas": schemas,
    }
    encoder = instantiate(recipe, recipe.table("labels"), registry, common)
    common.update(label_dim=encoder.condition_dim, num_classes=encoder.num_classes, label_encoder=encoder)
    augmentation = instantiate(recipe, recipe.table("augmentation"), registry, common)
    networks = build_networks(recipe, registry, common, device, check_network, probe=bool(train_sets))  # a run that trains them
    common.update(losses=build_losses(recipe, registry, common))
    method = instantiate(recipe, recipe.table("method"), registry, {**common, **networks})
    metrics = {t.name: instantiate(recipe, t, registry, common) for t in recipe.section("metrics")}
    return Components(
        settings=settings,
        device=device,
        sample=sample,
        modality=registry.get("modality", sample.modality).factory(sample, statistics or {}),
        statistics=statistics or {},
        schemas=schemas,
        dataset_names=names,
        label_encoder=encoder,
        augmentation=augmentation,
        method=method,
        train_sets=train_sets,
        test_sets=test_sets,
        metrics=metrics,
        recipe=recipe,
        plugins=third_party_components(recipe, registry),
    )
