"""A dataset of image files with labels: what every on-disk dataset here shares."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from mdt.errors import MdtError
from mdt.images import ImageProblem, load_image
from mdt.interfaces import Dataset
from mdt.labels import LabelSchema
from mdt.samples import SampleSpec

Split = Literal["train", "test"]


class ImageFiles(Dataset):
    """Items ``{"image": uint8 (C, H, W), "label": float (n,)}``, or ``{"error": ...}``
    for a file that cannot be decoded or is too small for the crop. Images are RGB, or
    grey for ``channels = 1``; ``height`` and ``width`` (0: ``[run] image_size``) give
    a shape other than a square, the largest centred region of that shape taken from
    each picture (:func:`mdt.images.crop_and_resize`)."""

    deterministic_items = True  # index i is the same image on every call: the engine may cache it
    labels: torch.Tensor  # every file's, given to the constructor

    @classmethod
    def samples(cls, arguments: Mapping[str, Any], image_size: int) -> SampleSpec:
        channels = arguments.get("channels", 3)
        if channels not in (1, 3):
            raise ValueError(f"channels = {channels}: images have 1 (grey) or 3 (RGB) channels")
        return SampleSpec(channels, arguments.get("height") or image_size, arguments.get("width") or image_size)

    def __init__(self, files: Sequence[Path], labels: torch.Tensor, schema: LabelSchema, crop_size: int, sample: SampleSpec) -> None:
        self.files = list(files)
        self.labels = labels.float()
        self.schema = schema
        self.crop_size = crop_size
        self.sample = sample

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        try:
            image = load_image(self.files[index], self.crop_size, (self.sample.height, self.sample.width), self.sample.channels)
        except ImageProblem as exc:
            return {"error": str(exc)}
        return {"image": image, "label": self.labels[index]}


def held_out(count: int, test_size: int, split: str, seed: int = 1234) -> list[int]:
    """Indices of ``split``: a fixed shuffle (seed 1234, as the official StarGAN code)
    whose first ``test_size`` entries are the test split."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    chosen = order[:test_size] if split == "test" else order[test_size:]
    return sorted(chosen)


def listed_split(root: Path, names: Sequence[str], where: str, test_size: int, split: str) -> list[int]:
    """Indices of ``split`` among images listed in an attribute file ``where``, after
    checking that every listed image exists in ``root``."""
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MdtError(f"{where} names '{missing[0]}', which is not in {root}/{more}")
    if test_size >= len(names):
        raise MdtError(f"test_size = {test_size} leaves no training image of the {len(names)} in {where}")
    return held_out(len(names), test_size, split)
