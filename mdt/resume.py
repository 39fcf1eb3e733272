"""A run's checkpoints: saving one, finding where a run resumes, restoring its newest
readable checkpoint into built components, and what a resumed run's recipe changes."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from rich.console import Console

from mdt import checkpoint as ckpt
from mdt.build import Components
from mdt.data import BatchStream
from mdt.errors import MdtError
from mdt.loggers import flat
from mdt.recipe import parse_recipe, resolved
from mdt.registry import Registry
from mdt.runfolder import holds_files, is_started_run
from mdt.signatures import format_value
from mdt.weights import load_network


def save_checkpoint(components: Components, recipe_text: str, run_dir: Path, step: int, streams: list[BatchStream]) -> Path:
    method = components.method
    training = ckpt.TrainingState(
        optimizers={name: optimizer.state_dict() for name, optimizer in method.optimizers().items()},
        method_state=method.state(),
        streams=[s.consumed for s in streams],
    )
    directory = run_dir / "checkpoints"
    path = ckpt.save_model(
        ckpt.step_path(directory, step),
        networks={name: network.state_dict() for name, network in method.networks().items()},
        step=step,
        recipe=recipe_text,
        schemas=components.schemas,
        training=training,
        plugins=components.plugins,
        statistics=components.statistics,
    )
    ckpt.prune(directory, components.settings.keep_checkpoints)
    return path


def resume_point(run_dir: Path, resume: bool, main: bool, console: Console) -> list[Path]:
    """The checkpoints to resume from, newest last; none for a run that starts at step 0
    (a new one, or one stopped before its first checkpoint)."""
    if not resume:
        if main and holds_files(run_dir):
            raise MdtError(f"'{run_dir}' already holds files; pass --resume to continue a run there, or --out for a new folder")
        return []
    found = ckpt.list_checkpoints(run_dir / "checkpoints")
    if found:
        return found
    if is_started_run(run_dir):
        console.print(f"'{run_dir}' holds no checkpoint yet; starting it from step 0", markup=False, soft_wrap=True)
        return []
    raise MdtError(f"--resume: '{run_dir}' holds no checkpoint to resume from")


def restore_newest(components: Components, found: list[Path], main: bool, console: Console) -> tuple[int, ckpt.TrainingState]:
    """Restore the newest checkpoint that can be read. One that cannot (torn by a full
    disk, damaged on a copy) is set aside as ``*.unreadable``, never deleted, and named."""
    for path in reversed(found):
        try:
            saved = ckpt.read(path, content=ckpt.MODEL)
        except MdtError as exc:
            aside = path.with_name(path.name + ".unreadable")
            if main:
                os.replace(path, aside)
            console.print(f"skipped {path.name}: {exc}; kept as {aside.name}", markup=False, soft_wrap=True)
            continue
        if saved.step > components.settings.iterations:  # training backwards is not a thing: say so, touch nothing
            raise MdtError(
                f"'{path.parent.parent}' is at step {saved.step}, past [run] iterations = "
                f"{components.settings.iterations}; give iterations of at least {saved.step} to go on"
            )
        restored = restore(components, saved, path)
        console.print(f"resuming {path.parent.parent} from step {saved.step} ({path.name})", markup=False, soft_wrap=True)
        return restored
    raise MdtError(f"no checkpoint in '{found[0].parent}' can be read (each is kept as *.unreadable)")


def restore(components: Components, saved: ckpt.Checkpoint, path: Path) -> tuple[int, ckpt.TrainingState]:
    """Load a checkpoint's weights, optimizer and method state into the built components.

    Random states are restored separately, by the caller, as the last thing before the
    loop: setting up data loaders draws from torch's generator."""
    if saved.schemas != components.schemas:
        raise MdtError(
            f"{path}: the run was trained with the labels {describe_labels(saved.schemas)}, but the recipe gives "
            f"{describe_labels(components.schemas)}; resume with the run's own recipe.toml, or start a new run"
        )
    method = components.method
    kept = saved.network_names()
    for name, network in method.networks().items():
        if name not in kept:
            raise MdtError(
                f"{path}: the run has no network '{name}' (its networks: {', '.join(kept)}); the recipe builds "
                "other networks than the run did: resume with the run's own recipe.toml, or start a new run"
            )
        load_network(network, saved.network(name), name, path)
    state = saved.training_state()
    for name, optimizer in method.optimizers().items():
        if name not in state.optimizers:
            raise MdtError(f"{path}: no state for optimizer '{name}'")
        optimizer.load_state_dict(state.optimizers[name])
    method.load_state(state.method_state)
    return saved.step, state


def hyperparameters(method) -> dict[str, list[dict[str, Any]]]:
    """Each optimizer's settings per parameter group (lr, betas, ...), as the recipe made them."""
    return {
        name: [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
        for name, optimizer in method.optimizers().items()
    }


def reapply(method, settings: dict[str, list[dict[str, Any]]]) -> None:
    """Put :func:`hyperparameters` back over those a checkpoint's optimizer state restored."""
    for name, optimizer in method.optimizers().items():
        for group, values in zip(optimizer.param_groups, settings.get(name, []), strict=False):
            group.update(values)


def describe_labels(schemas) -> str:
    return "; ".join(f"{s.dataset}: {', '.join(s.names)}" for s in schemas)


def recipe_changes(text: str, recipe_text: str, registry: Registry, source: str = "the checkpoint's recipe") -> list[str]:
    """What ``recipe_text`` changes of the recipe ``text`` a run was trained with, as
    ``table.key: old -> new`` (an older mdt wrote the same recipe in an older layout: no
    change); empty when nothing."""
    if text == recipe_text:
        return []
    try:
        old = tomllib.loads(resolved(parse_recipe(text, source, registry=registry), registry).to_toml())
    except (MdtError, tomllib.TOMLDecodeError):
        return ["the old one could not be read"]
    before, after = flat(old), flat(tomllib.loads(recipe_text))
    return [
        f"{key}: {format_value(before[key]) if key in before else '(none)'} -> {format_value(after[key]) if key in after else '(none)'}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]
