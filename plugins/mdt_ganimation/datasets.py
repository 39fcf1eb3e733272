"""Datasets of continuous labels: synthetic faces with expressions of known intensity (no
download), and image files with a CSV of action-unit intensities (OpenFace's ``AU*_r``
columns, 0-5, as GANimation annotates EmotioNet)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import torch
from mdt_datasets.files import ImageFiles, Split, listed_split

from mdt.errors import MdtError, did_you_mean
from mdt.interfaces import Dataset
from mdt.labels import LabelSchema
from mdt.ranges import Count, Positive, Rate

EXPRESSIONS = ("smile", "brow_raise", "eyes_closed")


def draw_expression(smile: float, brow: float, closed: float, size: int, generator: torch.Generator) -> torch.Tensor:
    """A (3, size, size) face in [0, 1] whose mouth curves up with ``smile``, whose brows rise
    with ``brow`` and whose eyes shut with ``closed`` (each in [0, 1])."""

    def uniform(low: float, high: float, shape=()) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    x, y = x - uniform(-0.08, 0.08), y - uniform(-0.06, 0.06)
    image = (uniform(0.25, 0.75, (3, 1, 1)) + 0.06 * (x - y)).expand(3, size, size).clone()
    face = (x / 0.66) ** 2 + (y / 0.82) ** 2 < 1
    image[:, face] = (torch.tensor([0.92, 0.74, 0.6]) * uniform(0.8, 1.05)).view(3, 1)
    hair = face & (y < -0.6)
    image[:, hair] = (torch.tensor([0.25, 0.15, 0.08]) * uniform(0.5, 2.0)).clamp(0, 1).view(3, 1)
    for side in (-1, 1):
        height = 0.11 * (1 - closed) + 0.015
        eye = ((x - side * 0.27).abs() < 0.13) & ((y + 0.1).abs() < height)
        image[:, eye] = 0.1
        lid = ((x - side * 0.27).abs() < 0.14) & ((y + 0.1).abs() < 0.13) & ~eye
        image[:, lid & face] = image[:, lid & face] * 0.92
        brow_y = -0.26 - 0.17 * brow
        image[:, ((x - side * 0.27).abs() < 0.17) & ((y - brow_y).abs() < 0.045)] = torch.tensor([0.2, 0.12, 0.07]).view(3, 1)
    curve = smile - 0.2  # the middle of the mouth drops below its corners as the smile grows
    mouth = ((y - 0.42 - curve * (0.32 - x.abs()) * 1.1).abs() < 0.045 + 0.03 * smile) & (x.abs() < 0.32)
    image[:, mouth] = torch.tensor([0.75, 0.15, 0.18]).view(3, 1)
    image += 0.02 * torch.randn(image.shape, generator=generator)
    return image.clamp(0, 1)


class SyntheticExpressions(Dataset):
    """Synthetic faces whose expressions have known intensities in [0, 1]: smile,
    brow_raise, eyes_closed. Drawn on the fly; no files."""

    terms = "drawn by mdt at run time: no third party's terms"

    deterministic_items = True  # index i is the same image on every call: the engine may cache it

    def __init__(
        self,
        split: Split,
        image_size: int,
        expressions: Sequence[str] = EXPRESSIONS,
        size: Positive = 4096,
        test_size: Positive = 512,
        seed: Count = 0,
    ) -> None:
        for name in expressions:
            if name not in EXPRESSIONS:
                raise MdtError(
                    f"expression '{name}' does not exist{did_you_mean(name, EXPRESSIONS)}; expressions: {', '.join(EXPRESSIONS)}"
                )
        if not expressions:
            raise MdtError("name at least one expression")
        self.expressions, self.image_size = tuple(expressions), image_size
        self.count = size if split == "train" else test_size
        self.seed = seed * 2 + (0 if split == "train" else 1)
        self.schema = LabelSchema("expressions", self.expressions, continuous=True)

    def __len__(self) -> int:
        return self.count

    def _draw(self, index: int) -> tuple[torch.Generator, dict[str, float]]:
        generator = torch.Generator().manual_seed(self.seed * 10_000_019 + index)
        values = {name: float(torch.rand((), generator=generator)) for name in EXPRESSIONS}
        return generator, values

    def _label(self, values: dict[str, float]) -> torch.Tensor:
        return torch.tensor([values[name] for name in self.expressions])

    @cached_property
    def labels(self) -> torch.Tensor:  # type: ignore[override]  # Dataset's class default, computed once here from the seed
        """Every item's intensities (N, n), without drawing a face."""
        return torch.stack([self._label(self._draw(i)[1]) for i in range(self.count)])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        generator, values = self._draw(index)
        image = draw_expression(values["smile"], values["brow_raise"], values["eyes_closed"], self.image_size, generator)
        return {"image": (image * 255).round().to(torch.uint8), "label": self._label(values)}

    def counterfactual(self, index: int, label: torch.Tensor) -> torch.Tensor:
        """Item ``index`` drawn with the intensities ``label`` (in this dataset's expression
        order): the same face, position and noise, another expression. Its true translation,
        for the counterfactual metric. An intensity equal to the item's own label keeps the
        drawn value itself, not its float32 rounding (which could move an edge by a pixel)."""
        generator, values = self._draw(index)
        own = self._label(values)
        for i, name in enumerate(self.expressions):
            if float(label[i]) != float(own[i]):
                values[name] = float(label[i])
        image = draw_expression(values["smile"], values["brow_raise"], values["eyes_closed"], self.image_size, generator)
        return (image * 255).round().to(torch.uint8)


class CSVIntensities(ImageFiles):
    """Images in a folder with a CSV of intensities: ``file,AU01_r,AU02_r,...`` (OpenFace's
    action-unit columns, 0 to ``scale``), read as labels in [0, 1]."""

    def __init__(
        self,
        root: str,
        csv_file: str,
        split: Split,
        image_size: int,
        columns: Sequence[str] = (),
        scale: Rate = 5.0,
        crop_size: Count = 0,
        test_size: Count = 0,
    ) -> None:
        image_dir = Path(root)
        path = Path(csv_file) if Path(csv_file).is_absolute() else image_dir / csv_file
        if not image_dir.is_dir():
            raise MdtError(f"image folder '{root}' does not exist")
        if scale <= 0:
            raise MdtError(f"scale must be positive (the intensities' maximum), not {scale}")
        try:
            with open(path, newline="", encoding="utf-8") as f:
                table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
        except OSError as exc:
            raise MdtError(f"cannot read intensity file '{path}': {exc.strerror or exc}") from None
        if not table or len(table[0]) < 2:
            raise MdtError(f"{path}: the first row must be a header: file,AU01_r,AU02_r,...")
        header = [h.strip() for h in table[0]]
        names = list(columns) or header[1:]
        for name in names:
            if name not in header[1:]:
                raise MdtError(f"column '{name}' is not in {path}{did_you_mean(name, header[1:])}")
        indices = [header.index(n) for n in names]
        files, rows = [], []
        for number, row in enumerate(table[1:], start=2):
            if len(row) != len(header):
                raise MdtError(f"{path}: line {number} has {len(row)} fields, expected {len(header)}")
            try:
                values = [float(row[i]) / scale for i in indices]
            except ValueError:
                raise MdtError(f"{path}: line {number} has a value that is not a number") from None
            if any(not 0 <= v <= 1 for v in values):
                raise MdtError(f"{path}: line {number} has an intensity outside [0, {scale:g}]")
            files.append(row[0].strip())
            rows.append(values)
        if not rows:
            raise MdtError(f"{path} lists no images")
        chosen = listed_split(image_dir, files, str(path), test_size, split if test_size else "train")
        labels = torch.tensor([rows[i] for i in chosen]).reshape(len(chosen), len(names))
        schema = LabelSchema("intensities", tuple(names), continuous=True)
        super().__init__([image_dir / files[i] for i in chosen], labels, schema, crop_size, self.samples({}, image_size))
