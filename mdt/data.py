"""Batches: how samples from datasets reach the training device.

A dataset is any sized, indexable object with a ``schema`` (:class:`LabelSchema`)
whose items are ``{"image": uint8 (3, S, S), "label": float (n,)}``, or
``{"error": message}`` for a file that cannot be used. Errors travel as values, not
exceptions, so a DataLoader worker never turns them into a traceback; the engine
raises them, or skips and counts them when ``[run] skip_bad_files`` is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from mdt.errors import MdtError


@dataclass
class Batch:
    """One batch on the training device, from one dataset."""

    images: torch.Tensor  # (B, 3, S, S), float in [-1, 1]
    labels: torch.Tensor  # (B, n) labels in the dataset's own space
    source: int  # index of the dataset in the recipe


@dataclass
class RawBatch:
    """A collated batch still on the CPU: uint8 images, plus the files that failed."""

    images: torch.Tensor
    labels: torch.Tensor
    errors: list[str] = field(default_factory=list)


def collate(samples: list[dict]) -> RawBatch:
    good = [s for s in samples if "error" not in s]
    errors = [s["error"] for s in samples if "error" in s]
    if not good:
        return RawBatch(torch.empty(0, dtype=torch.uint8), torch.empty(0), errors)
    shapes = {tuple(s["image"].shape) for s in good}
    if len(shapes) > 1:
        raise MdtError(f"images in one batch have different sizes {sorted(shapes)}; set crop_size so they match")
    return RawBatch(torch.stack([s["image"] for s in good]), torch.stack([s["label"] for s in good]).float(), errors)


class EpochOrder:
    """Batches of indices in a shuffled order fixed by (seed, epoch), so that a run
    resumed at batch k sees exactly the batches it would have seen."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if size < batch_size:
            raise MdtError(f"the dataset has {size} images, fewer than the batch size {batch_size}")
        self.size, self.batch_size, self.seed, self.start = size, batch_size, seed, start
        self.per_epoch = size // batch_size
        self.shard = batch_size // world_size
        self.rank = rank

    def __iter__(self) -> Iterator[list[int]]:
        position = self.start
        while True:
            epoch, offset = divmod(position, self.per_epoch)
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
            for b in range(offset, self.per_epoch):
                batch = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield batch[self.rank * self.shard : (self.rank + 1) * self.shard].tolist()
            position = (epoch + 1) * self.per_epoch


class BatchStream:
    """An endless, resumable stream of :class:`RawBatch` from one dataset."""

    def __init__(self, dataset, batch_size: int, seed: int, num_workers: int = 0, consumed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        """``batch_size`` is the global batch; with several processes each takes its slice."""
        self.dataset = dataset
        self.consumed = consumed
        order = EpochOrder(len(dataset), batch_size, seed, start=consumed, rank=rank, world_size=world_size)
        self.loader = DataLoader(
            dataset,
            batch_sampler=order,
            num_workers=num_workers,
            collate_fn=collate,
            persistent_workers=num_workers > 0,
        )
        self._iterator = iter(self.loader)

    def __next__(self) -> RawBatch:
        batch = next(self._iterator)
        self.consumed += 1
        return batch


def first_items(dataset, count: int, skip_bad_files: bool = False) -> RawBatch:
    """The first ``count`` usable items of ``dataset``: the fixed inputs of sample grids."""
    samples, errors = [], []
    for index in range(len(dataset)):
        item = dataset[index]
        if "error" in item:
            if not skip_bad_files:
                raise MdtError(f"{item['error']} (set run.skip_bad_files=true to skip such files)")
            errors.append(item["error"])
        else:
            samples.append(item)
        if len(samples) == count:
            break
    if not samples:
        reason = f": {errors[0]}" if errors else ""
        raise MdtError(f"no readable test image to draw sample grids from{reason}")
    return collate(samples)
