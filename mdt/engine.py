"""The training engine: data in, method steps, logs, sample grids and checkpoints out.

Read :func:`train` top to bottom: it locks the run folder, builds the recipe's
components and restores a checkpoint when resuming (:func:`_prepare`), then loops — one
batch per dataset, one method step, then logging, sampling and saving on their
schedules — and finally runs the recipe's metrics (:func:`_loop`).
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mdt import checkpoint as ckpt
from mdt import distributed
from mdt.build import Components, build, build_loggers, pick_device
from mdt.cache import ImageCache, choose_cache
from mdt.data import Batch, BatchStream, RawBatch, first_items, stream_of
from mdt.errors import MdtError
from mdt.evaluation import (Evaluation, build_classifier, check_judge, check_metrics, classifier_table, earlier_judge, run_metrics,
                            save_judge)
from mdt.grids import grid_image, save_png
from mdt.logbook import Logbook, metrics_step
from mdt.loggers import Loggers, RunInfo, flat
from mdt.memory import keep_freed_memory
from mdt.method import optimizer_problem
from mdt.precision import PRECISIONS, choose_precision
from mdt.recipe import Recipe, format_value, missing_package, parse_recipe, resolved
from mdt.registry import Registry
from mdt.runfolder import CACHE_NAME, RunLock, holds_files, is_started_run


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
        step=step, recipe=recipe_text, schemas=components.schemas, training=training, plugins=components.plugins,
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
            raise MdtError(f"'{path.parent.parent}' is at step {saved.step}, past [run] iterations = "
                           f"{components.settings.iterations}; give iterations of at least {saved.step} to go on")
        restored = restore(components, saved, path)
        console.print(f"resuming {path.parent.parent} from step {saved.step} ({path.name})", markup=False, soft_wrap=True)
        return restored
    raise MdtError(f"no checkpoint in '{found[0].parent}' can be read (each is kept as *.unreadable)")


def restore(components: Components, saved: ckpt.Checkpoint, path: Path) -> tuple[int, ckpt.TrainingState]:
    """Load a checkpoint's weights, optimizer and method state into the built components.

    Random states are restored separately, by the caller, as the last thing before the
    loop: setting up data loaders draws from torch's generator."""
    if saved.schemas != components.schemas:
        raise MdtError(f"{path}: the run was trained with the labels {describe_labels(saved.schemas)}, but the recipe gives "
                       f"{describe_labels(components.schemas)}; resume with the run's own recipe.toml, or start a new run")
    method = components.method
    kept = saved.network_names()
    for name, network in method.networks().items():
        if name not in kept:
            raise MdtError(f"{path}: the run has no network '{name}' (its networks: {', '.join(kept)}); the recipe builds "
                           "other networks than the run did: resume with the run's own recipe.toml, or start a new run")
        ckpt.load_network(network, saved.network(name), name, path)
    state = saved.training_state()
    for name, optimizer in method.optimizers().items():
        if name not in state.optimizers:
            raise MdtError(f"{path}: no state for optimizer '{name}'")
        optimizer.load_state_dict(state.optimizers[name])
    method.load_state(state.method_state)
    return saved.step, state


def hyperparameters(method) -> dict[str, list[dict[str, Any]]]:
    """Each optimizer's settings per parameter group (lr, betas, ...), as the recipe made them."""
    return {name: [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
            for name, optimizer in method.optimizers().items()}


def reapply(method, settings: dict[str, list[dict[str, Any]]]) -> None:
    """Put :func:`hyperparameters` back over those a checkpoint's optimizer state restored."""
    for name, optimizer in method.optimizers().items():
        for group, values in zip(optimizer.param_groups, settings.get(name, []), strict=False):
            group.update(values)


def describe_labels(schemas) -> str:
    return "; ".join(f"{s.dataset}: {', '.join(s.names)}" for s in schemas)


class RecentRate:
    """Iterations per second over the last ``window`` seconds, and the time left at
    that pace: after a slow start (compiling, a cold cache) the average since the start
    would under-report for a long time."""

    def __init__(self, window: float = 30.0) -> None:
        self.window = window
        self._points: collections.deque[tuple[int, float]] = collections.deque()

    def update(self, step: int, now: float) -> None:
        self._points.append((step, now))
        while len(self._points) > 2 and now - self._points[1][1] >= self.window:
            self._points.popleft()  # keep one point at or beyond the window's start

    def per_second(self) -> float:
        if len(self._points) < 2:
            return 0.0
        (s0, t0), (s1, t1) = self._points[0], self._points[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, done: int, total: int) -> float | None:
        rate = self.per_second()
        return (total - done) / rate if rate > 0 else None


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class SkippedFiles:
    """Unreadable files passed over with ``[run] skip_bad_files``: counted for the log,
    the first few named on the console, every one listed in the run's skipped_files.txt;
    each once, however many epochs read it (a resumed run goes on from that list)."""

    SHOWN = 10

    def __init__(self, console: Console, run_dir: Path, main: bool) -> None:
        self.console, self.path, self.main = console, run_dir / "skipped_files.txt", main
        self.seen = set(self.path.read_text(encoding="utf-8").splitlines()) if self.path.is_file() else set()
        self.count = len(self.seen)

    def add(self, errors: list[str]) -> None:
        for error in errors:
            if error in self.seen:  # the same file in a later epoch (its message names it)
                continue
            self.seen.add(error)
            self.count += 1
            if self.count <= self.SHOWN:
                self.console.print(f"[yellow]skipped:[/] {escape(error)}", soft_wrap=True)
            elif self.count == self.SHOWN + 1:
                self.console.print(f"[yellow]more files skipped:[/] each is listed in {escape(str(self.path))}", soft_wrap=True)
            if self.main:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(error + "\n")


def next_batch(stream: BatchStream, name: str, settings, skipped: SkippedFiles) -> RawBatch:
    """The next batch with usable images; unreadable files stop the run, or are skipped
    with ``skip_bad_files`` until a whole epoch's worth of reads has given nothing."""
    raw = next(stream)
    reads, usable = 0, False
    while raw.errors or raw.images.numel() == 0:
        if not settings.skip_bad_files:
            raise MdtError(f"{raw.errors[0]} (set run.skip_bad_files=true to skip such files)")
        skipped.add(raw.errors)
        usable |= raw.images.numel() > 0
        if usable and not stream.whole_batches:
            break
        reads += settings.batch_size
        size = len(stream.dataset)
        if not usable and reads >= size:
            raise MdtError(f"no image of dataset '{name}' could be read in {reads} tries, as many as it holds "
                           f"(the first: {raw.errors[0] if raw.errors else 'an empty batch'})")
        if reads >= 20 * size:
            raise MdtError(f"dataset '{name}' has too many unreadable files to draw batches without one; "
                           f"{skipped.count} were skipped so far (see {skipped.path})")
        raw = next(stream)
    return raw


def train(recipe: Recipe, registry: Registry, run_dir: Path, *, resume: bool = False, console: Console | None = None) -> RunResult:
    console = console or Console(stderr=True)
    topology = distributed.from_environment()
    main = topology.is_main
    if not main:
        console = Console(file=open(os.devnull, "w"))
    lock = RunLock(run_dir) if main else None
    notice = lock.acquire() if lock else None
    if notice:
        console.print(f"notice: {notice}", markup=False, soft_wrap=True)
    begun = False
    opens_group = topology.distributed and not distributed.group_open()  # not when a caller opened it
    try:
        found = resume_point(run_dir, resume, main, console)
        choices: list[str] = []  # what "auto" became, said once the run starts
        components, start, saved, streams, plan, changes = _prepare(recipe, registry, run_dir, found, topology, console, choices)
        loggers = open_loggers(recipe, registry, run_dir, start if resume else None, main, console)
        begun = True
        try:
            result = _loop(recipe, registry, run_dir, components, start, saved, streams, plan, resume, topology, console, loggers,
                           choices, changes)
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


def _choose_precision(recipe: Recipe, found: list[Path], device: torch.device, topology) -> str:
    """Settle ``[run] precision = "auto"`` for this run and write the choice into its recipe,
    so recipe.toml and every checkpoint say what the run computed in. Every process takes
    rank 0's choice: one made by timing could differ between them. Returns the line that
    tells the user."""
    resumed = ckpt.saved_run_setting(found[-1], "precision") if found else None
    precision, why = choose_precision(recipe.run.precision, device, resumed)
    if topology.distributed:
        precision = distributed.agree(precision, PRECISIONS, device)
    recipe.settle("precision", precision)
    return f"precision: {precision} ({why})"


def _choose_cache(recipe: Recipe, components: Components, run_dir: Path, choices: list[str]) -> bool:
    """Settle ``[run] cache_images = "auto"`` (mdt/cache.py) and write the choice into the recipe."""
    cache, why = choose_cache(recipe.run.cache_images, components.train_sets, recipe.run.image_size, run_dir / CACHE_NAME)
    recipe.settle("cache_images", cache)
    choices.append(f"image cache: {'on' if cache else 'off'} ({why})")
    return cache


def _prepare(recipe: Recipe, registry: Registry, run_dir: Path, found: list[Path], topology, console: Console, choices: list[str]):
    """Build the recipe's components on the device, restore ``found``'s newest readable
    checkpoint into them, and open the training streams where it stopped."""
    settings = recipe.run
    missing_package(recipe, registry)
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
    choices.append(_choose_precision(recipe, found, device, topology))
    seed_everything(settings.seed + topology.rank, settings.deterministic)
    if device.type == "cuda" and not settings.deterministic:
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick the fastest kernels
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
    fresh = hyperparameters(components.method) if found else {}  # the recipe's, before a checkpoint's replace them
    start, saved = restore_newest(components, found, topology.is_main, console) if found else (0, None)
    train_sets = components.train_sets
    if _choose_cache(recipe, components, run_dir, choices):
        def cached():
            return [ImageCache(ds, run_dir / CACHE_NAME, components.dataset_names[i]) for i, ds in enumerate(components.train_sets)]

        # Rank 0 creates the cache files; the others open them once they exist, so no
        # process recreates (truncates) a file another is already filling.
        train_sets = cached() if topology.is_main else train_sets
        if topology.distributed:
            distributed.barrier()
            train_sets = train_sets if topology.is_main else cached()
    # What this recipe, its "auto" choices made, changes of the checkpoint's (None: no
    # checkpoint's recipe to compare with); a changed [method] (lr, betas) takes effect.
    changes = recipe_changes(saved.recipe, resolved(recipe, registry).to_toml(), registry) if saved is not None and saved.recipe \
        else None
    if any(change.startswith("method.") for change in changes or ()):
        reapply(components.method, fresh)
    plan, streams = open_streams(components, registry, train_sets, saved.streams if saved else [], topology)
    return components, start, saved, streams, plan, changes


def open_loggers(recipe: Recipe, registry: Registry, run_dir: Path, resumed_from: int | None, main: bool, console: Console) -> Loggers:
    """The recipe's loggers, open, on the main process only; one that cannot start stops
    the run before its first step."""
    if not main:
        return Loggers([], console)
    loggers = build_loggers(recipe, registry, console)
    full = resolved(recipe, registry)
    loggers.open(RunInfo(run_dir, full.data, full.to_toml(), resumed_from))
    return loggers


def _loop(recipe: Recipe, registry: Registry, run_dir: Path, components: Components, start: int, saved, streams, plan,
          resume: bool, topology, console: Console, loggers: Loggers, choices: list[str], changes: list[str] | None) -> RunResult:
    """Write the run's recipe, then train from ``start``: one batch per stream, one method
    step, then logging, sampling and saving on their schedules; finally the metrics."""
    settings, main = recipe.run, topology.is_main
    recipe_text = resolved(recipe, registry).to_toml()
    skipped = SkippedFiles(console, run_dir, main)
    fixed = []
    for i, ds in enumerate(components.test_sets):
        try:
            raw = first_items(ds, settings.sample_count, settings.skip_bad_files)
        except MdtError as exc:
            raise MdtError(f"{recipe.source}: [datasets.{components.dataset_names[i]}] {exc}") from exc
        skipped.add(raw.errors)
        fixed.append(to_batch(raw, i, components, train=False))
    if main:
        for line in choices:
            console.print(line, markup=False, soft_wrap=True)
        console.print(f"run folder: {run_dir}", markup=False, soft_wrap=True)
        recipe_file = run_dir / "recipe.toml"
        against = f"the checkpoint's (step {start})"  # what it trained with: an earlier resume may have changed it
        if changes is None and recipe_file.exists():
            changes, against = recipe_changes(recipe_file.read_text(encoding="utf-8"), recipe_text, registry, str(recipe_file)), \
                "the run's recipe.toml"
        if changes:
            recipe_file = run_dir / f"recipe.resumed-{start:08d}.toml"
            console.print(f"[yellow]the recipe differs from {against} ({escape('; '.join(changes))}); this one is saved as "
                          f"{escape(recipe_file.name)}[/]", soft_wrap=True)
        recipe_file.write_text(recipe_text, encoding="utf-8")
    logbook = Logbook(run_dir, resumed_from=start if resume else None) if main else None
    if saved is not None:
        ckpt.restore_rng(saved.rng)
    last_saved: Path | None = None
    rate = RecentRate()
    try:
        with _progress(console) as progress:
            task = progress.add_task("training", total=settings.iterations, completed=start, losses="", rate="-")
            rate.update(start, time.perf_counter())
            for step in range(start, settings.iterations):
                batches = [to_batch(next_batch(stream, components.dataset_names[i], settings, skipped), i, components, role=role)
                           for stream, (i, role) in zip(streams, plan)]
                values = components.method.train_step(batches, step)
                check_finite(values, step, last_saved, topology, components.device)
                done = step + 1
                rate.update(done, time.perf_counter())
                if main and (done % settings.log_every == 0 or done == settings.iterations):
                    per_second = rate.per_second()
                    logged = {**values, "it_per_s": per_second, "skipped_files": skipped.count}
                    logbook.write(done, logged)
                    loggers.scalars(done, logged)
                    shown = _summary(values)
                    progress.update(task, losses=shown, rate=f"{per_second:.2f}")
                    if not console.is_terminal:
                        eta = clock(rate.eta(done, settings.iterations))
                        console.print(f"step {done}/{settings.iterations}  {per_second:.2f} it/s  eta {eta}  {shown}", markup=False, soft_wrap=True)
                if main and (done % settings.sample_every == 0 or done == settings.iterations):
                    sample_file = run_dir / "samples" / f"step_{done:08d}.png"
                    grid = write_samples(components, fixed, sample_file)
                    loggers.image(done, "samples", np.asarray(grid), sample_file)
                if main and (done % settings.checkpoint_every == 0 or done == settings.iterations):
                    last_saved = save_checkpoint(components, recipe_text, run_dir, done, streams)
                    loggers.checkpoint(done, last_saved)
                progress.update(task, completed=done)
        if main and start >= settings.iterations and metrics_step(run_dir / "log.jsonl") == settings.iterations \
                and (run_dir / "metrics.json").is_file():  # resumed after its end: measured already, judge kept
            console.print(f"the run ended at step {start}; its metrics are in {run_dir / 'metrics.json'}", markup=False, soft_wrap=True)
            return RunResult(run_dir, settings.iterations, json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")))
        metrics = evaluate(components, recipe, registry, run_dir, console) if main else {}
        if metrics:
            logbook.write(settings.iterations, metrics, event="metrics")
            (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
            loggers.metrics(settings.iterations, metrics)
    finally:
        if logbook is not None:
            logbook.close()
    return RunResult(run_dir, settings.iterations, metrics)


def check_finite(values: dict[str, float], step: int, last_saved: Path | None, topology, device) -> None:
    """Stop at the first loss that is NaN or infinite (on any process), keeping the last checkpoint."""
    finite = distributed.all_finite(values, device) if topology.distributed else True
    for key, value in values.items():
        if not math.isfinite(value) or not finite:
            kept = f"; the last good checkpoint {last_saved} is untouched" if last_saved else "; no checkpoint was written"
            where = f"loss '{key}' is {value}" if not math.isfinite(value) else "a loss on another process is not finite"
            raise MdtError(f"{where} at step {step + 1}{kept}; a learning rate or loss weight set too high is the usual cause "
                           "(mdt recipe show lists them)")


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
    return [f"{key}: {format_value(before[key]) if key in before else '(none)'} -> "
            f"{format_value(after[key]) if key in after else '(none)'}"
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]


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
            except MdtError as exc:  # the training split of which dataset: there may be several
                raise MdtError(f"{components.recipe.source}: [datasets.{components.dataset_names[i]}] training split: {exc}") from None
            plan.append((i, role))
            streams.append(BatchStream(dataset, order, settings.num_workers, consumed=start))
    return plan, streams


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
    grid = grid_image(rows, ["input", *titles] if titles else None, row_titles=row_titles if len(fixed) > 1 else None)
    save_png(grid, path)
    return grid


def evaluate(components: Components, recipe: Recipe, registry: Registry, run_dir: Path, console: Console) -> dict[str, Any]:
    """The recipe's metrics. A judge classifier trained for them is kept in the run folder
    (``classifier/``), where ``mdt eval`` finds it and where a run taken further reuses it."""
    if not components.metrics:
        return {}
    judge = earlier_judge(recipe, registry, components, run_dir / "classifier", console)
    evaluation = Evaluation(components, lambda: build_classifier(recipe, registry, components.schemas), classifier=judge,
                            console=console)
    results = run_metrics(evaluation, components.metrics, console)
    if evaluation.classifier_trained:
        save_judge(evaluation, classifier_table(recipe), run_dir / "classifier", max_images=256)
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
