"""Samplers: the order in which a method's batches are drawn from a dataset.

Every sampler yields lists of item indices forever, and batch k depends only on (seed,
k), so a resumed run continues with exactly the batches it would have seen. With several
processes (``world_size``) each takes its ``rank``-th slice of every global batch.

- ``shuffled``: epochs of a fixed shuffle (StarGAN);
- ``balanced``: each item's domain uniform over the domains, then its image uniform
  within that domain (StarGAN v2's sources);
- ``balanced_pairs``: the same, as ``[first B; second B]`` where item i of the second
  half is another image of item i's domain (StarGAN v2's references);
- ``domain``: epochs of a fixed shuffle of one domain's images, the domain given as
  labels (``"Blond_Hair"``, ``"Smiling=0"``): CycleGAN's unpaired streams.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from mdt.errors import MdtError
from mdt.interfaces import Sampler
from mdt.labels import matching, parse_assignments


class EpochOrder(Sampler):
    """Batches of indices in a shuffled order fixed by (seed, epoch)."""

    def __init__(self, dataset, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self._setup(len(dataset), batch_size, seed, start, rank, world_size)
        self.members: torch.Tensor | None = None

    def _setup(self, size: int, batch_size: int, seed: int, start: int, rank: int, world_size: int) -> None:
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
            if self.members is not None:
                order = self.members[order]
            for b in range(offset, self.per_epoch):
                batch = order[b * self.batch_size : (b + 1) * self.batch_size]
                yield batch[self.rank * self.shard : (self.rank + 1) * self.shard].tolist()
            position = (epoch + 1) * self.per_epoch


def labels_of(dataset, sampler: str) -> torch.Tensor:
    """Every item's labels (N, n), read from the dataset's ``labels`` without decoding an image."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        raise MdtError(
            f"the '{sampler}' sampler needs every image's label up front, and the {type(dataset).__name__} dataset "
            "has no 'labels'; use a dataset that lists them, such as domain_folders"
        )
    return torch.as_tensor(labels)


def domains_of(dataset, sampler: str = "balanced") -> torch.Tensor:
    """Each item's domain: the index of its distinct label vector."""
    return torch.unique(labels_of(dataset, sampler), dim=0, return_inverse=True)[1]


class DomainOrder(EpochOrder):
    """Epochs of a fixed shuffle of the images whose labels match ``domain``."""

    def __init__(self, dataset, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1, domain: str = "") -> None:
        if not domain:
            raise MdtError("the 'domain' sampler needs a domain, such as 'Blond_Hair' or 'Smiling=0'")
        wanted = matching(dataset.schema, labels_of(dataset, "domain"), parse_assignments(domain, "domain"))
        members = torch.nonzero(wanted).flatten()
        if len(members) < batch_size:
            raise MdtError(f"domain '{domain}' has {len(members)} images, fewer than the batch size {batch_size}")
        self._setup(len(members), batch_size, seed, start, rank, world_size)
        self.members = members


class BalancedOrder(Sampler):
    """Class-balanced batches; with ``pairs``, each item followed (in the second half) by
    another image of its domain. See the module docstring."""

    def __init__(
        self, dataset, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1, pairs: bool = False
    ) -> None:
        domains = domains_of(dataset, "balanced_pairs" if pairs else "balanced")
        self.members = [m for m in (torch.nonzero(domains == d).flatten() for d in range(int(domains.max()) + 1)) if len(m)]
        self.sizes = torch.tensor([len(m) for m in self.members])
        self.batch_size, self.seed, self.start, self.pairs = batch_size, seed, start, pairs
        self.shard = batch_size // world_size
        self.rank = rank

    @property
    def whole_batches(self) -> bool:  # type: ignore[override]  # Sampler's class default, read-only here: it follows pairs
        """A pair without its partner is no pair: a batch with an unreadable file is skipped whole."""
        return self.pairs

    def _pick(self, domain: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        within = (torch.rand(len(domain), generator=generator) * self.sizes[domain]).long()
        return torch.stack([self.members[d][i] for d, i in zip(domain.tolist(), within.tolist(), strict=True)])

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


class BalancedPairs(BalancedOrder):
    """Class-balanced reference pairs: [first B; second B], item i of both halves from one domain."""

    def __init__(self, dataset, batch_size: int, seed: int, start: int = 0, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(dataset, batch_size, seed, start, rank, world_size, pairs=True)
