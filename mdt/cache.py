"""A decoded-sample cache: samples as stored (uint8 images) in a memory-mapped file,
filled during the first epoch, so no later epoch decodes a JPEG again.

It wraps any dataset. Files are ``<name>.images`` (N samples of the declared shape and
dtype, :mod:`mdt.samples`), ``<name>.labels``
(float32) and ``<name>.filled`` (one byte per item), so a resumed run, or a DataLoader
worker, sees what others have already decoded.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mdt.interfaces import Dataset
from mdt.samples import DTYPES, SampleSpec

AUTO = "auto"
GiB = 1 << 30


def cache_bytes(dataset, sample: SampleSpec) -> int:
    """Disk the cache of ``dataset`` takes: its samples, float32 labels (one value per
    schema name, as every item's label has), one flag each. Reads no item and no label."""
    values = sample.channels * sample.height * sample.width
    return len(dataset) * (values * DTYPES[sample.dtype].itemsize + 4 * len(dataset.schema.names) + 1)


def choose_cache(setting: bool | str, datasets: Sequence, sample: SampleSpec, directory: Path) -> tuple[bool, str]:
    """(cache the training images?, why) for a run's ``cache_images`` setting. ``"auto"``
    caches when every dataset says each index always gives the same image
    (``deterministic_items = True``: a dataset that draws a random crop per call must not be
    frozen) and the cache takes at most half the free disk, leaving at least 2 GiB."""
    if setting != AUTO:
        return bool(setting), "set in the recipe"
    varying = [type(d).__name__ for d in datasets if not d.deterministic_items]
    if varying:
        return False, f"auto: {varying[0]} does not declare deterministic_items"
    needed = sum(cache_bytes(d, sample) for d in datasets)
    probe = directory
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    spare = min(free // 2, free - 2 * GiB)
    if needed > spare:
        return False, f"auto: it needs {needed / GiB:.1f} GiB and {max(spare, 0) / GiB:.1f} GiB can be spared"
    return True, f"auto: {needed / GiB:.2f} GiB under {directory}"


class ImageCache(Dataset):
    """A dataset's decoded images and labels, kept in files beside the run (see the module's docstring)."""

    def __init__(self, dataset: Dataset, directory: Path, name: str) -> None:
        self.dataset = dataset
        self.schema = dataset.schema
        first = next((item for item in (dataset[i] for i in range(len(dataset))) if "error" not in item), None)
        if first is None:
            self._images = None
            return
        count = len(dataset)
        image_shape = tuple(first["image"].shape)
        label_size = int(first["label"].numel())
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / name
        self._images = self._open(stem.with_suffix(".images"), first["image"].numpy().dtype, (count, *image_shape))
        self._labels = self._open(stem.with_suffix(".labels"), np.float32, (count, label_size))
        self._filled = self._open(stem.with_suffix(".filled"), np.uint8, (count,))

    @staticmethod
    def _open(path: Path, dtype, shape) -> np.memmap:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        mode: Literal["r+", "w+"] = "r+" if path.exists() and path.stat().st_size == size else "w+"
        return np.memmap(path, dtype=dtype, mode=mode, shape=shape)

    @property
    def labels(self):
        """The wrapped dataset's labels, for class-balanced sampling (None if it has none)."""
        return self.dataset.labels

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        if self._images is not None and self._filled[index]:
            return {"image": torch.from_numpy(np.array(self._images[index])), "label": torch.from_numpy(np.array(self._labels[index]))}
        item = self.dataset[index]
        if self._images is not None and "error" not in item:
            self._images[index] = item["image"].numpy()
            self._labels[index] = item["label"].numpy()
            self._filled[index] = 1  # written last: a reader never sees a half-filled image as done
        return item
