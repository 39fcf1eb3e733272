"""The training engine: data in, method steps, logs, sample grids and checkpoints out.

Read :func:`train` top to bottom: it builds the recipe's components, restores a
checkpoint when resuming, then loops — one batch per dataset, one method step, then
logging, sampling and saving on their schedules — and finally runs the recipe's
metrics.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mdt import checkpoint as ckpt
from mdt import distributed
from mdt.build import Components, build, pick_device
from mdt.cache import ImageCache
from mdt.data import Batch, BatchStream, RawBatch, first_items, stream_of
from mdt.errors import MdtError
from mdt.evaluation import Evaluation, build_classifier, check_metrics, classifier_table, real_accuracy, run_metrics, save_classifier
from mdt.grids import grid_image, save_png
from mdt.logbook import Logbook
from mdt.recipe import Recipe, parse_recipe, resolved
from mdt.registry import Registry


@dataclass
class RunResult:
    run_dir: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def new_run_dir(recipe_path: str, runs_root: Path = Path("runs")) -> Path:
    """``runs/<recipe name>``, or ``-2``, ``-3``... so no earlier run is touched."""
    stem = Path(recipe_path).stem
    candidate = runs_root / stem
    n = 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate = runs_root / f"{stem}-{n}"
        n += 1
    return candidate


def latest_run_dir(recipe_path: str, runs_root: Path = Path("runs")) -> Path:
    stem = Path(recipe_path).stem
    runs = [p for p in runs_root.glob(f"{stem}*") if p.is_dir() and ckpt.list_checkpoints(p / "checkpoints")]
    if not runs:
        raise MdtError(f"--resume: no run of '{stem}' with a checkpoint under {runs_root}/; name the run folder")
    return max(runs, key=lambda p: ckpt.list_checkpoints(p / "checkpoints")[-1].stat().st_mtime)


def to_batch(raw: RawBatch, source: int, components: Components, train: bool = True, role: str = "images") -> Batch:
    images = raw.images.to(components.device, non_blocking=True)
    images = components.augmentation(images, train=train)
    if components.settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return Batch(images, raw.labels.to(components.device), source, role)


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
        step=step, recipe=recipe_text, schemas=components.schemas, training=training,
    )
    ckpt.prune(directory, components.settings.keep_checkpoints)
    return path


def restore(components: Components, path: Path) -> tuple[int, ckpt.TrainingState]:
    """Load a checkpoint's weights, optimizer and method state into the built components.

    Random states are restored separately, by the caller, as the last thing before the
    loop: setting up data loaders draws from torch's generator."""
    saved = ckpt.read(path, content=ckpt.MODEL)
    method = components.method
    for name, network in method.networks().items():
        ckpt.load_network(network, saved.network(name), name, path)
    state = saved.training_state()
    for name, optimizer in method.optimizers().items():
        if name not in state.optimizers:
            raise MdtError(f"{path}: no state for optimizer '{name}'")
        optimizer.load_state_dict(state.optimizers[name])
    method.load_state(state.method_state)
    return saved.step, state


def train(recipe: Recipe, registry: Registry, run_dir: Path, *, resume: bool = False, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True)
    settings = recipe.run
    topology = distributed.from_environment()
    main = topology.is_main
    if not main:
        console = Console(file=open(os.devnull, "w"))
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    if resume:
        found = ckpt.list_checkpoints(run_dir / "checkpoints")
        if not found:
            raise MdtError(f"--resume: '{run_dir}' holds no checkpoint to resume from")
    elif main and run_dir.exists() and any(run_dir.iterdir()):
        raise MdtError(f"'{run_dir}' already holds files; pass --resume to continue a run there, or --out for a new folder")
    device = pick_device(settings.device)
    if topology.distributed:
        distributed.shard_size(settings.batch_size, topology)
        if device.type == "cuda":
            device = torch.device("cuda", topology.local_rank)
        distributed.initialise(topology, device.type)
    seed_everything(settings.seed + topology.rank, settings.deterministic)
    if device.type == "cuda" and not settings.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick the fastest kernels
    components = build(recipe, registry, device=device)
    components.method.check_ready()
    check_metrics(components, recipe)
    if topology.distributed:
        distributed.broadcast_networks(components.method.networks())
        distributed.synchronise_optimizers(components.method.optimizers())
    recipe_text = resolved(recipe, registry).to_toml()

    start, consumed, saved = 0, [], None
    if resume:
        start, saved = restore(components, found[-1])
        consumed = saved.streams
        console.print(f"resuming {run_dir} from step {start} ({found[-1].name})", markup=False)
    fixed = [
        to_batch(first_items(ds, settings.sample_count, settings.skip_bad_files), i, components, train=False)
        for i, ds in enumerate(components.test_sets)
    ]
    train_sets = components.train_sets
    if settings.cache_images:
        def cached():
            return [ImageCache(ds, run_dir / "cache", components.dataset_names[i]) for i, ds in enumerate(components.train_sets)]

        # Rank 0 creates the cache files; the others open them once they exist, so no
        # process recreates (truncates) a file another is already filling.
        train_sets = cached() if main else train_sets
        if topology.distributed:
            distributed.barrier()
            train_sets = train_sets if main else cached()
    plan, streams = open_streams(components, registry, train_sets, consumed, topology)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        console.print(f"run folder: {run_dir}", markup=False)
        recipe_file = run_dir / "recipe.toml"
        if recipe_file.exists() and not same_recipe(recipe_file, recipe_text, registry):
            recipe_file = run_dir / f"recipe.resumed-{start:08d}.toml"
            console.print(f"[yellow]the recipe differs from the run's recipe.toml; this one is saved as {recipe_file.name}[/]")
        recipe_file.write_text(recipe_text, encoding="utf-8")
    logbook = Logbook(run_dir, settings.tensorboard) if main else None
    if saved is not None:
        ckpt.restore_rng(saved.rng)
    skipped = 0
    last_saved: Path | None = None
    try:
        with _progress(console) as progress:
            task = progress.add_task("training", total=settings.iterations, completed=start, losses="", rate="-")
            started, started_step = time.perf_counter(), start
            for step in range(start, settings.iterations):
                batches = []
                for stream, (i, role) in zip(streams, plan):
                    raw = next(stream)
                    while raw.errors or raw.images.numel() == 0:
                        if not settings.skip_bad_files:
                            raise MdtError(f"{raw.errors[0]} (set run.skip_bad_files=true to skip such files)")
                        for error in raw.errors:
                            console.print(f"[yellow]skipped:[/] {escape(error)}")
                        skipped += len(raw.errors)
                        if raw.images.numel() and not stream.whole_batches:
                            break
                        raw = next(stream)
                    batches.append(to_batch(raw, i, components, role=role))
                values = components.method.train_step(batches, step)
                finite = distributed.all_finite(values, components.device) if topology.distributed else True
                for key, value in values.items():
                    if not math.isfinite(value) or not finite:
                        kept = f"; the last good checkpoint {last_saved} is untouched" if last_saved else "; no checkpoint was written"
                        where = f"loss '{key}' is {value}" if not math.isfinite(value) else "a loss on another process is not finite"
                        raise MdtError(f"{where} at step {step + 1}{kept}")
                done = step + 1
                if main and (done % settings.log_every == 0 or done == settings.iterations):
                    elapsed = time.perf_counter() - started
                    rate = (done - started_step) / elapsed if elapsed > 0 else 0.0
                    logbook.write(done, {**values, "it_per_s": rate, "skipped_files": skipped})
                    shown = _summary(values)
                    progress.update(task, losses=shown, rate=f"{rate:.2f}")
                    if not console.is_terminal:
                        console.print(f"step {done}/{settings.iterations}  {rate:.2f} it/s  {shown}", markup=False)
                if main and (done % settings.sample_every == 0 or done == settings.iterations):
                    write_samples(components, fixed, run_dir / "samples" / f"step_{done:08d}.png")
                if main and (done % settings.checkpoint_every == 0 or done == settings.iterations):
                    last_saved = save_checkpoint(components, recipe_text, run_dir, done, streams)
                progress.update(task, completed=done)
        metrics = evaluate(components, recipe, registry, run_dir, console) if main else {}
        if metrics:
            logbook.write(settings.iterations, metrics, event="metrics")
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    finally:
        if logbook is not None:
            logbook.close()
    return RunResult(run_dir, settings.iterations, metrics)


def same_recipe(recipe_file: Path, recipe_text: str, registry: Registry) -> bool:
    """Whether a run's recipe.toml says what ``recipe_text`` says (an older mdt wrote
    the same recipe in an older layout)."""
    text = recipe_file.read_text(encoding="utf-8")
    if text == recipe_text:
        return True
    try:
        return resolved(parse_recipe(text, str(recipe_file), registry=registry), registry).to_toml() == recipe_text
    except MdtError:
        return False


def open_streams(components: Components, registry: Registry, train_sets: list, consumed: list[int], topology) -> tuple[list[tuple[int, str]], list[BatchStream]]:
    """One stream per dataset and per role of the method's ``samplers`` (StarGAN: one;
    StarGAN v2: sources and reference pairs), each continuing from its ``consumed`` batches."""
    settings = components.settings
    plan, streams = [], []
    for r, (role, spec) in enumerate(components.method.samplers.items()):
        stream = stream_of(spec)
        factory = registry.get("sampler", stream.sampler).factory
        for i, dataset in enumerate(train_sets):
            start = consumed[len(streams)] if len(streams) < len(consumed) else 0
            try:
                order = factory(dataset, settings.batch_size, settings.seed + i + 1000 * r, start, topology.rank, topology.world_size,
                                **stream.options)
            except (TypeError, ValueError) as exc:
                raise MdtError(f"sampler '{stream.sampler}' of the method's '{role}' batches: {exc}") from None
            plan.append((i, role))
            streams.append(BatchStream(dataset, order, settings.num_workers, consumed=start))
    return plan, streams


def write_samples(components: Components, fixed: list[Batch], path: Path) -> None:
    translator = components.method.translator()
    rows, titles = [], None
    with torch.no_grad():
        for batch in fixed:
            batch_rows, titles = translator.grid(batch.images, source=batch.source, labels=batch.labels)
            rows.extend(batch_rows)
    save_png(grid_image(rows, ["input", *titles] if titles else None), path)


def evaluate(components: Components, recipe: Recipe, registry: Registry, run_dir: Path, console: Console) -> dict[str, Any]:
    """The recipe's metrics. A judge classifier trained for them is kept in the run folder
    (``classifier/``), where ``mdt eval`` finds it."""
    if not components.metrics:
        return {}
    evaluation = Evaluation(components, lambda: build_classifier(recipe, registry, components.schemas), console=console)
    results = run_metrics(evaluation, components.metrics, console)
    if evaluation.classifier_trained:
        accuracy = real_accuracy(evaluation, max_images=256)
        save_classifier(evaluation.classifier, classifier_table(recipe), components.schemas, run_dir / "classifier", accuracy)
    return results


def _summary(values: dict[str, float]) -> str:
    """The headline values: each loss, not its sub-terms (those are in the log); only
    each update's total when that would be more than twelve values."""
    losses = [k for k in values if "/" in k and not k.startswith("weight/")]
    depth = min((k.count("/") for k in losses), default=0)
    shown = [k for k in values if k.count("/") <= depth and not k.startswith("weight/")]
    if len(shown) > 12:
        shown = [k for k in values if k.endswith("/total")] or shown[:12]
    return "  ".join(f"{k}={values[k]:.4g}" for k in shown)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} it/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
