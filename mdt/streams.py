"""The training batches: one stream per dataset and sampler role of the method, each
resumable where it stopped, on the device and augmented; unreadable files stop the run,
or with ``[run] skip_bad_files`` are named and skipped."""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from mdt.build import Components
from mdt.data import Batch, BatchStream, RawBatch, stream_of
from mdt.errors import MdtError
from mdt.registry import Registry


def to_batch(raw: RawBatch, source: int, components: Components, train: bool = True, role: str = "images") -> Batch:
    images = raw.images.to(components.device, non_blocking=True)
    images = components.augmentation(images, train=train)
    if components.settings.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return Batch(images, raw.labels.to(components.device), source, role)


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
            raise MdtError(
                f"no image of dataset '{name}' could be read in {reads} tries, as many as it holds "
                f"(the first: {raw.errors[0] if raw.errors else 'an empty batch'})"
            )
        if reads >= 20 * size:
            raise MdtError(
                f"dataset '{name}' has too many unreadable files to draw batches without one; "
                f"{skipped.count} were skipped so far (see {skipped.path})"
            )
        raw = next(stream)
    return raw


def open_streams(
    components: Components, registry: Registry, train_sets: list, consumed: list[int], topology
) -> tuple[list[tuple[int, str]], list[BatchStream]]:
    """One stream per dataset and per role of the method's ``samplers`` (StarGAN: one;
    StarGAN v2: sources and reference pairs), each continuing from its ``consumed`` batches."""
    settings = components.settings
    plan: list[tuple[int, str]] = []
    streams: list[BatchStream] = []
    for r, (role, spec) in enumerate(components.method.samplers.items()):
        stream = stream_of(spec)
        factory = registry.get("sampler", stream.sampler).factory
        for i, dataset in enumerate(train_sets):
            start = consumed[len(streams)] if len(streams) < len(consumed) else 0
            try:
                order = factory(
                    dataset, settings.batch_size, settings.seed + i + 1000 * r, start, topology.rank, topology.world_size, **stream.options
                )
            except (TypeError, ValueError) as exc:
                raise MdtError(f"sampler '{stream.sampler}' of the method's '{role}' batches: {exc}") from None
            except MdtError as exc:  # the training split of which dataset: there may be several
                assert components.recipe is not None, "build() records the recipe it built from"
                raise MdtError(f"{components.recipe.source}: [datasets.{components.dataset_names[i]}] training split: {exc}") from None
            plan.append((i, role))
            streams.append(BatchStream(dataset, order, settings.num_workers, consumed=start))
    return plan, streams
