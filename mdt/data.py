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
    role: str = "images"  # which of the method's samplers drew it


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


def domains_of(dataset) -> torch.Tensor:
    """Each item's domain: the index of its distinct label vector, read from the
    dataset's ``labels`` (N, n) without decoding an image."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise MdtError(
            f"class-balanced sampling needs every image's label up front, and the {type(dataset).__name__} dataset "
            "has no 'labels'; use a dataset that lists them, such as domain_folders"
        )
    return torch.unique(torch.as_tensor(labels), dim=0, return_inverse=True)[1]


class BalancedOrder:
    """Class-balanced batches: each item's domain is uniform over the domains, then its
    image uniform within that domain, as StarGAN v2 samples. With ``pairs`` every batch is
    ``[first B; second B]`` where item i of the second half is another image of item i's
    domain (its reference pair). Batch k depends only on (seed, k), so a resumed run
    continues exactly."""

    def __init__(self, domains: torch.Tensor, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1, pairs: bool = False) -> None:
        self.members = [m for m in (torch.nonzero(domains == d).flatten() for d in range(int(domains.max()) + 1)) if len(m)]
        self.sizes = torch.tensor([len(m) for m in self.members])
        self.batch_size, self.seed, self.start, self.pairs = batch_size, seed, start, pairs
        self.shard = batch_size // world_size
        self.rank = rank

    def _pick(self, domain: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        within = (torch.rand(len(domain), generator=generator) * self.sizes[domain]).long()
        return torch.stack([self.members[d][i] for d, i in zip(domain.tolist(), within.tolist())])

    def __iter__(self) -> Iterator[list[int]]:
        position = self.start
        mine = slice(self.rank * self.shard, (self.rank + 1) * self.shard)
        while True:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + position)
            domain = torch.randint(0, len(self.members), (self.batch_size,), generator=generator)
            batch = self._pick(domain, generator)[mine].tolist()
            if self.pairs:
                batch += self._pick(domain, generator)[mine].tolist()
            yield batch
            position += 1


#: How a method's batches are drawn (``Method.samplers``).
SAMPLERS = ("shuffled", "balanced", "balanced_pairs")


class BatchStream:
    """An endless, resumable stream of :class:`RawBatch` from one dataset."""

    def __init__(
        self, dataset, batch_size: int, seed: int, num_workers: int = 0, consumed: int = 0, rank: int = 0, world_size: int = 1,
        sampler: str = "shuffled",
    ) -> None:
        """``batch_size`` is the global batch; with several processes each takes its slice.
        ``sampler`` is one of :data:`SAMPLERS`."""
        self.dataset = dataset
        self.consumed = consumed
        if sampler == "shuffled":
            order = EpochOrder(len(dataset), batch_size, seed, start=consumed, rank=rank, world_size=world_size)
        elif sampler in ("balanced", "balanced_pairs"):
            order = BalancedOrder(domains_of(dataset), batch_size, seed, consumed, rank, world_size, pairs=sampler == "balanced_pairs")
        else:
            raise MdtError(f"unknown sampler '{sampler}'; samplers: {', '.join(SAMPLERS)}")
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
    """``count`` usable items spread evenly over ``dataset`` (so a folder-per-domain
    dataset shows every domain): the fixed inputs of sample grids."""
    samples, errors = [], []
    spread = sorted({k * len(dataset) // count for k in range(count)}) if len(dataset) else []
    taken = set(spread)
    for index in [*spread, *(i for i in range(len(dataset)) if i not in taken)]:
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
