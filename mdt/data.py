"""Batches: how samples from datasets reach the training device.

A dataset is any sized, indexable object with a ``schema`` (:class:`LabelSchema`)
whose items are ``{"image": sample, "label": float (n,)}``, the sample as the dataset
declares (:mod:`mdt.samples`; uint8 RGB (3, S, S) unless it says otherwise), or
``{"error": message}`` for a file that cannot be used. Errors travel as values, not
exceptions, so a DataLoader worker never turns them into a traceback; the engine
raises them, or skips and counts them when ``[run] skip_bad_files`` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader

from mdt.errors import MdtError
from mdt.samples import SampleSpec, sample_problem


@dataclass
class Batch:
    """One batch on the training device, from one dataset."""

    images: torch.Tensor  # (B, C, H, W) samples, float in [-1, 1]
    labels: torch.Tensor  # (B, n) labels in the dataset's own space
    source: int  # index of the dataset in the recipe
    role: str = "images"  # which of the method's samplers drew it


@dataclass
class RawBatch:
    """A collated batch still on the CPU: samples as stored, plus the files that failed."""

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


@dataclass(frozen=True)
class Stream:
    """Batches a method takes from every dataset each iteration: a registered ``sampler``
    (``shuffled``, ``balanced``, ``domain``, ...) and that sampler's ``options``."""

    sampler: str = "shuffled"
    options: Mapping[str, Any] = field(default_factory=dict)


def stream_of(spec: str | Stream) -> Stream:
    """``Method.samplers`` values may be a sampler's name or a :class:`Stream`."""
    return spec if isinstance(spec, Stream) else Stream(spec)


class BatchStream:
    """An endless, resumable stream of :class:`RawBatch` from one dataset, in the order
    of a sampler: an iterable of index lists (see the ``sampler`` kind)."""

    def __init__(self, dataset, order, num_workers: int = 0, consumed: int = 0) -> None:
        """``order`` yields the indices of each batch from batch ``consumed`` on."""
        self.dataset = dataset
        self.consumed = consumed
        self.whole_batches = bool(order.whole_batches)
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


def first_items(dataset, count: int, spec: SampleSpec, skip_bad_files: bool = False) -> RawBatch:
    """``count`` usable items spread evenly over ``dataset`` (so a folder-per-domain
    dataset shows every domain): the fixed inputs of sample grids. The files skipped to
    find them are in the batch's ``errors``."""
    samples, errors = [], []
    spread = sorted({k * len(dataset) // count for k in range(count)}) if len(dataset) else []
    taken = set(spread)
    for index in [*spread, *(i for i in range(len(dataset)) if i not in taken)]:
        item = dataset[index]
        problem = item_problem(item, len(dataset.schema), spec)
        if problem:
            raise MdtError(f"test item {index}: {problem}")
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
    batch = collate(samples)
    batch.errors = errors  # skipped on the way: the caller names and counts them
    return batch


def item_problem(item, labels: int, spec: SampleSpec) -> str | None:
    """What ``item`` breaks of the dataset contract (the module's docstring), ``labels``
    the size of the dataset's schema and ``spec`` the samples it declares; None when it
    keeps it. Checked on the items a run draws first, so a plugin's dataset that gives
    other samples than it declares, or too few labels, is named before training rather
    than trained on or failing deep in a network."""
    if not isinstance(item, Mapping) or not ("error" in item or {"image", "label"} <= set(item)):
        return (
            "a dataset's item is {'image': ..., 'label': ...} or {'error': message}, not "
            + type(item).__name__
            + (f" with keys {sorted(map(str, item))}" if isinstance(item, Mapping) else "")
        )
    if "error" in item:
        return None
    problem = sample_problem(item["image"], spec)
    if problem:
        return problem
    label = item["label"]
    if not isinstance(label, torch.Tensor) or tuple(label.shape) != (labels,):
        got = f"of shape {tuple(label.shape)}" if isinstance(label, torch.Tensor) else f"a {type(label).__name__}"
        return f"its 'label' is {got}; the dataset's schema has {labels} labels, so a label is a tensor of shape ({labels},)"
    return None
