"""The training engine: data in, method steps, logs, sample grids and checkpoints out.

Read :func:`train` top to bottom: it locks the run folder, prepares the run (builds the
recipe's components, restores a checkpoint when resuming, opens the batch streams:
:func:`prepare`), then trains in named phases — the fixed sample inputs and the run's
recipe first, then per step one batch per stream, one method step, and logging, sampling
and saving on their schedules — and finally measures the recipe's metrics (:func:`_loop`).
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
from PIL import Image
from rich.console import Console
from rich.markup import escape

from mdt import checkpoint as ckpt
from mdt import distributed
from mdt.build import Components, build, build_loggers, pick_device
from mdt.cache import ImageCache, choose_cache
from mdt.data import Batch, BatchStream, first_items
from mdt.errors import MdtError
from mdt.evaluation import (
    Evaluation,
    build_classifier,
    check_judge,
    check_metrics,
    classifier_table,
    earlier_judge,
    run_metrics,
    save_judge,
)
from mdt.grids import grid_image, save_png
from mdt.logbook import Logbook, metrics_step
from mdt.loggers import Loggers, RunInfo
from mdt.memory import keep_freed_memory
from mdt.method import Method, optimizer_problem
from mdt.precision import PRECISIONS, choose_precision
from mdt.progress import RecentRate, clock, progress_bar, summary
from mdt.recipe import missing_package, resolved
from mdt.recipe_layout import Recipe
from mdt.registry import Registry
from mdt.resume import hyperparameters, reapply, recipe_changes, restore_newest, resume_point, save_checkpoint
from mdt.runfolder import CACHE_NAME, RunLock
from mdt.streams import SkippedFiles, next_batch, open_streams, to_batch


@dataclass
class RunResult:
    run_dir: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """A run ready for its first step (:func:`prepare`)."""

    components: Components  # built on the device; a resumed run's checkpoint restored into them
    start: int  # the step it starts from
    saved: ckpt.TrainingState | None  # a resumed run's state; its random states are restored last
    streams: list[BatchStream]  # one per dataset and sampler role, where the run stopped
    plan: list[tuple[int, str]]  # each stream's dataset and role
    changes: list[str] | None  # what the recipe changes of the checkpoint's (None: no checkpoint's recipe)
    choices: list[str]  # what each "auto" setting became, said when the run starts


@dataclass
class Run:
    """Everything the training loop's phases share."""

    recipe: Recipe
    registry: Registry
    run_dir: Path
    resume: bool
    topology: Any  # mdt.distributed.Topology
    console: Console
    loggers: Loggers
    prepared: Prepared

    @property
    def main(self) -> bool:
        return self.topology.is_main


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def train(recipe: Recipe, registry: Registry, run_dir: Path, *, resume: bool = False, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True)
    topology = distributed.from_environment()
    main = topology.is_main
    if not main:
        console = Console(file=open(os.devnull, "w"))  # noqa: SIM115 (a console for the whole run; other ranks print nothing)
    lock = RunLock(run_dir) if main else None
    notice = lock.acquire() if lock else None
    if notice:
        console.print(f"notice: {notice}", markup=False, soft_wrap=True)
    begun = False
    opens_group = topology.distributed and not distributed.group_open()  # not when a caller opened it
    try:
        found = resume_point(run_dir, resume, main, console)
        prepared = prepare(recipe, registry, run_dir, found, topology, console)
        loggers = open_loggers(recipe, registry, run_dir, prepared.start if resume else None, main, console)
        begun = True
        try:
            result = _loop(Run(recipe, registry, run_dir, resume, topology, console, loggers, prepared))
        except BaseException:
            loggers.close(False)
            raise
        loggers.close(True)
        if opens_group:
            distributed.close()  # only after a run that ended well: with collectives pending it could hang
        return result
    finally:
        if lock:
            lock.release(remove_folder=not begun)


def _choose_precision(recipe: Recipe, found: list[Path], device: torch.device, topology, supported: tuple[str, ...] = PRECISIONS) -> str:
    """Settle ``[run] precision = "auto"`` for this run and write the choice into its recipe,
    so recipe.toml and every checkpoint say what the run computed in. Every process takes
    rank 0's choice: one made by timing could differ between them; a method that computes
    in fp32 only (its ``supported`` precisions) gets fp32. Returns the line that tells the user."""
    resumed = ckpt.saved_run_setting(found[-1], "precision") if found else None
    precision, why = choose_precision(recipe.run.precision, device, resumed)
    if topology.distributed:
        precision = distributed.agree(precision, PRECISIONS, device)
    if precision not in supported:  # "auto" chose what the method cannot compute in
        precision, why = "fp32", f"method '{recipe.table('method').type}' computes in fp32 only; {why}"
    recipe.settle("precision", precision)
    return f"precision: {precision} ({why})"


def _choose_cache(recipe: Recipe, components: Components, run_dir: Path, choices: list[str]) -> bool:
    """Settle ``[run] cache_images = "auto"`` (mdt/cache.py) and write the choice into the recipe."""
    cache, why = choose_cache(recipe.run.cache_images, components.train_sets, components.sample, run_dir / CACHE_NAME)
    recipe.settle("cache_images", cache)
    choices.append(f"image cache: {'on' if cache else 'off'} ({why})")
    return cache


def _device(settings, topology) -> torch.device:
    """The run's device, with the threads, memory reuse and process group it needs."""
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    device = pick_device(settings.device)
    if device.type == "cpu":
        keep_freed_memory()  # the same large tensors every step: reuse their pages (mdt/memory.py)
    if topology.distributed:
        distributed.shard_size(settings.batch_size, topology)
        if device.type == "cuda":
            device = torch.device("cuda", topology.local_rank)
        distributed.initialise(topology, device.type)
    return device


def _built(recipe: Recipe, registry: Registry, device: torch.device, topology) -> Components:
    """The recipe's components, checked as far as they can be before a step is taken."""
    components = build(recipe, registry, device=device)
    try:
        components.method.check_ready()
    except MdtError as exc:  # what the method needs beyond its networks: its [method] table's
        raise MdtError(f"{recipe.source}: [method] {exc}") from exc
    problem = optimizer_problem(components.method)
    if problem:
        raise MdtError(f"{recipe.source}: [method] {problem}")
    check_metrics(components, recipe)
    check_judge(components, recipe, registry)
    if topology.distributed:
        distributed.broadcast_networks(components.method.networks())
        distributed.synchronise_optimizers(components.method.optimizers())
    return components


def _training_sets(recipe: Recipe, components: Components, run_dir: Path, topology, choices: list[str]) -> list:
    """The training datasets, behind the decoded-image cache where the run keeps one."""
    if not _choose_cache(recipe, components, run_dir, choices):
        return components.train_sets

    def cached():
        return [ImageCache(ds, run_dir / CACHE_NAME, components.dataset_names[i]) for i, ds in enumerate(components.train_sets)]

    # Rank 0 creates the cache files; the others open them once they exist, so no
    # process recreates (truncates) a file another is already filling.
    train_sets = cached() if topology.is_main else components.train_sets
    if topology.distributed:
        distributed.barrier()
        train_sets = train_sets if topology.is_main else cached()
    return train_sets


def prepare(recipe: Recipe, registry: Registry, run_dir: Path, found: list[Path], topology, console: Console) -> Prepared:
    """Build the recipe's components on the device, restore ``found``'s newest readable
    checkpoint into them, and open the training streams where it stopped."""
    settings = recipe.run
    missing_package(recipe, registry)
    device = _device(settings, topology)
    supported = registry.get("method", recipe.table("method").type).factory_class(Method).precisions
    choices = [_choose_precision(recipe, found, device, topology, supported)]
    seed_everything(settings.seed + topology.rank, settings.deterministic)
    if device.type == "cuda" and not settings.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick the fastest kernels
    components = _built(recipe, registry, device, topology)
    fresh = hyperparameters(components.method) if found else {}  # the recipe's, before a checkpoint's replace them
    start, saved = restore_newest(components, found, topology.is_main, console) if found else (0, None)
    train_sets = _training_sets(recipe, components, run_dir, topology, choices)
    # What this recipe, its "auto" choices made, changes of the checkpoint's (None: no
    # checkpoint's recipe to compare with); a changed [method] (lr, betas) takes effect.
    changes = recipe_changes(saved.recipe, resolved(recipe, registry).to_toml(), registry) if saved is not None and saved.recipe else None
    if any(change.startswith("method.") for change in changes or ()):
        reapply(components.method, fresh)
    plan, streams = open_streams(components, registry, train_sets, saved.streams if saved else [], topology)
    return Prepared(components, start, saved, streams, plan, changes, choices)


def open_loggers(recipe: Recipe, registry: Registry, run_dir: Path, resumed_from: int | None, main: bool, console: Console) -> Loggers:
    """The recipe's loggers, open, on the main process only; one that cannot start stops
    the run before its first step."""
    if not main:
        return Loggers([], console)
    loggers = build_loggers(recipe, registry, console)
    full = resolved(recipe, registry)
    loggers.open(RunInfo(run_dir, full.data, full.to_toml(), resumed_from))
    return loggers


def _loop(run: Run) -> RunResult:
    """Write the run's recipe, then train from the start step: one batch per stream, one
    method step, then logging, sampling and saving on their schedules; finally the metrics."""
    skipped = SkippedFiles(run.console, run.run_dir, run.main)
    fixed = _sample_inputs(run, skipped)
    recipe_text = resolved(run.recipe, run.registry).to_toml()
    if run.main:
        _announce(run, recipe_text)
    logbook = Logbook(run.run_dir, resumed_from=run.prepared.start if run.resume else None) if run.main else None
    if run.prepared.saved is not None:
        ckpt.restore_rng(run.prepared.saved.rng)
    try:
        _train(run, fixed, skipped, recipe_text, logbook)
        return _finish(run, logbook)
    finally:
        if logbook is not None:
            logbook.close()


def _sample_inputs(run: Run, skipped: SkippedFiles) -> list[Batch]:
    """The fixed held-out inputs of every sample grid, from each dataset."""
    components, settings = run.prepared.components, run.recipe.run
    fixed = []
    for i, ds in enumerate(components.test_sets):
        try:
            raw = first_items(ds, settings.sample_count, components.sample, settings.skip_bad_files)
        except MdtError as exc:
            raise MdtError(f"{run.recipe.source}: [datasets.{components.dataset_names[i]}] {exc}") from exc
        skipped.add(raw.errors)
        fixed.append(to_batch(raw, i, components, train=False))
    return fixed


def _announce(run: Run, recipe_text: str) -> None:
    """Say what "auto" became and where the run goes; write its recipe.toml (a resumed run
    whose recipe differs writes it beside, and says what changed)."""
    console, start, changes = run.console, run.prepared.start, run.prepared.changes
    for line in run.prepared.choices:
        console.print(line, markup=False, soft_wrap=True)
    console.print(f"run folder: {run.run_dir}", markup=False, soft_wrap=True)
    recipe_file = run.run_dir / "recipe.toml"
    against = f"the checkpoint's (step {start})"  # what it trained with: an earlier resume may have changed it
    if changes is None and recipe_file.exists():
        changes, against = (
            recipe_changes(recipe_file.read_text(encoding="utf-8"), recipe_text, run.registry, str(recipe_file)),
            "the run's recipe.toml",
        )
    if changes:
        recipe_file = run.run_dir / f"recipe.resumed-{start:08d}.toml"
        console.print(
            f"[yellow]the recipe differs from {against} ({escape('; '.join(changes))}); this one is saved as {escape(recipe_file.name)}[/]",
            soft_wrap=True,
        )
    recipe_file.write_text(recipe_text, encoding="utf-8")


def _train(run: Run, fixed: list[Batch], skipped: SkippedFiles, recipe_text: str, logbook: Logbook | None) -> None:
    """The steps from the start to ``[run] iterations``, each followed by what its schedules ask."""
    settings, components, prepared = run.recipe.run, run.prepared.components, run.prepared
    last_saved: Path | None = None
    rate = RecentRate()
    with progress_bar(run.console) as progress:
        task = progress.add_task("training", total=settings.iterations, completed=prepared.start, losses="", rate="-")
        rate.update(prepared.start, time.perf_counter())
        for step in range(prepared.start, settings.iterations):
            batches = [
                to_batch(next_batch(stream, components.dataset_names[i], settings, skipped), i, components, role=role)
                for stream, (i, role) in zip(prepared.streams, prepared.plan, strict=True)
            ]
            values = components.method.train_step(batches, step)
            check_finite(values, step, last_saved, run.topology, components.device)
            done = step + 1
            rate.update(done, time.perf_counter())
            if not run.main:
                continue
            if done % settings.log_every == 0 or done == settings.iterations:
                _log(run, done, values, rate, skipped, logbook, lambda shown, speed: progress.update(task, losses=shown, rate=speed))
            if done % settings.sample_every == 0 or done == settings.iterations:
                sample_file = run.run_dir / "samples" / f"step_{done:08d}.png"
                run.loggers.image(done, "samples", np.asarray(write_samples(components, fixed, sample_file)), sample_file)
            if done % settings.checkpoint_every == 0 or done == settings.iterations:
                last_saved = save_checkpoint(components, recipe_text, run.run_dir, done, prepared.streams)
                run.loggers.checkpoint(done, last_saved)
            progress.update(task, completed=done)


def _log(run: Run, done: int, values: dict[str, float], rate: RecentRate, skipped: SkippedFiles, logbook, show) -> None:
    """A step's values into the log and the loggers; its headline beside the progress bar
    (or, where the console is no terminal, on a line of its own)."""
    per_second = rate.per_second()
    logged = {**values, "it_per_s": per_second, "skipped_files": skipped.count}
    logbook.write(done, logged)
    run.loggers.scalars(done, logged)
    shown = summary(values)
    show(shown, f"{per_second:.2f}")
    if not run.console.is_terminal:
        iterations = run.recipe.run.iterations
        run.console.print(
            f"step {done}/{iterations}  {per_second:.2f} it/s  eta {clock(rate.eta(done, iterations))}  {shown}",
            markup=False,
            soft_wrap=True,
        )


def _finish(run: Run, logbook: Logbook | None) -> RunResult:
    """The recipe's metrics at the end (a run resumed after its end has them already)."""
    settings, run_dir, start = run.recipe.run, run.run_dir, run.prepared.start
    if (
        run.main
        and start >= settings.iterations
        and metrics_step(run_dir / "log.jsonl") == settings.iterations
        and (run_dir / "metrics.json").is_file()
    ):  # resumed after its end: measured already, judge kept
        run.console.print(f"the run ended at step {start}; its metrics are in {run_dir / 'metrics.json'}", markup=False, soft_wrap=True)
        return RunResult(run_dir, settings.iterations, json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")))
    metrics = evaluate(run.prepared.components, run.recipe, run.registry, run_dir, run.console) if run.main else {}
    if metrics:
        assert logbook is not None, "the main process, which measures, keeps the log"
        logbook.write(settings.iterations, metrics, event="metrics")
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        run.loggers.metrics(settings.iterations, metrics)
    return RunResult(run_dir, settings.iterations, metrics)


def check_finite(values: dict[str, float], step: int, last_saved: Path | None, topology, device) -> None:
    """Stop at the first loss that is NaN or infinite (on any process), keeping the last checkpoint."""
    finite = distributed.all_finite(values, device) if topology.distributed else True
    for key, value in values.items():
        if not math.isfinite(value) or not finite:
            kept = f"; the last good checkpoint {last_saved} is untouched" if last_saved else "; no checkpoint was written"
            where = f"loss '{key}' is {value}" if not math.isfinite(value) else "a loss on another process is not finite"
            raise MdtError(
                f"{where} at step {step + 1}{kept}; a learning rate or loss weight set too high is the usual cause "
                "(mdt recipe show lists them)"
            )


def write_samples(components: Components, fixed: list[Batch], path: Path) -> Image.Image:
    """One grid of every dataset's fixed inputs; with several datasets, each group of rows
    is named by its dataset in a margin."""
    translator = components.method.translator()
    rows, titles, row_titles = [], None, []
    with torch.no_grad():
        for batch in fixed:
            batch_rows, titles = translator.grid(batch.images, source=batch.source, labels=batch.labels)
            rows.extend(batch_rows)
            row_titles += [components.dataset_names[batch.source]] + [None] * (len(batch_rows) - 1)
    named = row_titles if len(fixed) > 1 else None
    grid = grid_image(rows, ["input", *titles] if titles else None, row_titles=named, picture=components.modality.preview)
    save_png(grid, path)
    return grid


def evaluate(components: Components, recipe: Recipe, registry: Registry, run_dir: Path, console: Console) -> dict[str, Any]:
    """The recipe's metrics. A judge classifier trained for them is kept in the run folder
    (``classifier/``), where ``mdt eval`` finds it and where a run taken further reuses it."""
    if not components.metrics:
        return {}
    judge = earlier_judge(recipe, registry, components, run_dir / "classifier", console)
    evaluation = Evaluation(components, lambda: build_classifier(recipe, registry, components.schemas), classifier=judge, console=console)
    results = run_metrics(evaluation, components.metrics, console)
    if evaluation.classifier_trained:
        save_judge(evaluation, classifier_table(recipe), run_dir / "classifier", max_images=256)
    return results
