"""Synthetic faces drawn on the fly: no files, known attributes, learnable in minutes.

Each image is a face (random skin tone, position and background) whose hair colour
is one of three (an exclusive group, like CelebA's), which may wear glasses (a dark
bar over the eyes) and may smile (a red mouth). A classifier or a generator can learn
these on a laptop CPU, so the quickstart and the tests need no download.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property

import torch

from mdt.align import FacePoints
from mdt.errors import MdtError, did_you_mean
from mdt.interfaces import Dataset
from mdt.labels import LabelSchema
from mdt.ranges import Count, Positive
from mdt_datasets.files import Split

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
ATTRIBUTES = (*HAIR, "Glasses", "Smiling")
HAIR_RGB = torch.tensor([[0.08, 0.07, 0.07], [0.95, 0.85, 0.35], [0.45, 0.25, 0.10]])


def draw_face(hair: int, glasses: bool, smiling: bool, size: int, generator: torch.Generator) -> torch.Tensor:
    """A (3, size, size) float image in [0, 1]."""

    def uniform(low: float, high: float, shape=()) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    x = x - uniform(-0.12, 0.12)
    y = y - uniform(-0.08, 0.08)
    background = uniform(0.2, 0.8, (3, 1, 1)) + 0.08 * (x + y)
    skin = torch.tensor([0.92, 0.72, 0.58]) * uniform(0.75, 1.05)
    image = background.expand(3, size, size).clone()
    face = (x / 0.62) ** 2 + (y / 0.78) ** 2 < 1
    image[:, face] = skin.view(3, 1)
    hair_region = ((x / 0.72) ** 2 + ((y + 0.12) / 0.85) ** 2 < 1) & ((y < -0.42) | ((x.abs() > 0.5) & (y < 0.1)))
    image[:, hair_region] = HAIR_RGB[hair].view(3, 1) * uniform(0.9, 1.1)
    eyes = ((y + 0.08).abs() < 0.07) & (((x - 0.25).abs() < 0.09) | ((x + 0.25).abs() < 0.09))
    image[:, eyes] = 0.15
    if glasses:
        frame = ((y + 0.08).abs() < 0.14) & (x.abs() < 0.5) & ~eyes
        image[:, frame] = torch.tensor([0.1, 0.1, 0.12]).view(3, 1)
    if smiling:
        mouth = ((y - 0.42 + 0.5 * x**2).abs() < 0.07) & (x.abs() < 0.3)
        image[:, mouth] = torch.tensor([0.85, 0.1, 0.15]).view(3, 1)
    else:
        mouth = ((y - 0.45).abs() < 0.03) & (x.abs() < 0.18)
        image[:, mouth] = torch.tensor([0.55, 0.3, 0.3]).view(3, 1)
    image += 0.02 * torch.randn(image.shape, generator=generator)
    return image.clamp(0, 1)


def synthetic_framing(table) -> FacePoints:
    """Where draw_face puts the eyes and mouth on average: (x, y) = (±0.25, -0.08) and
    (0, 0.42) (a smile curves up, a closed mouth sits at 0.45) on the [-1, 1] grid, as
    fractions of the image."""
    return FacePoints(left_eye=(0.375, 0.46), right_eye=(0.625, 0.46), mouth=(0.5, 0.71))


class SyntheticFaces(Dataset):
    """Synthetic faces with three exclusive hair colours, glasses and smiling; drawn on the fly."""

    deterministic_items = True  # index i is the same image on every call: the engine may cache it
    terms = "drawn by mdt at run time: no third party's terms"

    framing = staticmethod(synthetic_framing)  # for mdt align

    def __init__(
        self,
        split: Split,
        image_size: int,
        attributes: Sequence[str] = ATTRIBUTES,
        size: Positive = 4096,
        test_size: Positive = 512,
        seed: Count = 0,
    ) -> None:
        for name in attributes:
            if name not in ATTRIBUTES:
                raise MdtError(
                    f"synthetic attribute '{name}' does not exist{did_you_mean(name, ATTRIBUTES)}; attributes: {', '.join(ATTRIBUTES)}"
                )
        if not attributes:
            raise MdtError("attributes is empty; name at least one of " + ", ".join(ATTRIBUTES))
        self.attributes = tuple(attributes)
        self.image_size = image_size
        self.count = size if split == "train" else test_size
        self.seed = seed * 2 + (0 if split == "train" else 1)
        hair = tuple(a for a in self.attributes if a in HAIR)
        categorical = set(self.attributes) == set(HAIR)
        self.schema = LabelSchema("synthetic", self.attributes, (hair,) if len(hair) > 1 and not categorical else (), categorical)

    def __len__(self) -> int:
        return self.count

    def _draw_attributes(self, index: int) -> tuple[torch.Generator, int, bool, bool]:
        generator = torch.Generator().manual_seed(self.seed * 10_000_019 + index)
        hair = int(torch.randint(0, 3, (), generator=generator))
        glasses = bool(torch.rand((), generator=generator) < 0.5)
        smiling = bool(torch.rand((), generator=generator) < 0.5)
        return generator, hair, glasses, smiling

    def _label(self, hair: int, glasses: bool, smiling: bool) -> torch.Tensor:
        values = {"Glasses": glasses, "Smiling": smiling, **{h: i == hair for i, h in enumerate(HAIR)}}
        return torch.tensor([float(values[a]) for a in self.attributes])

    @cached_property
    def labels(self) -> torch.Tensor:  # type: ignore[override]  # Dataset's class default, computed once here from the seed
        """Every item's label (N, n), without drawing a face: for class-balanced sampling."""
        return torch.stack([self._label(*self._draw_attributes(i)[1:]) for i in range(self.count)])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        generator, hair, glasses, smiling = self._draw_attributes(index)
        image = draw_face(hair, glasses, smiling, self.image_size, generator)
        return {"image": (image * 255).round().to(torch.uint8), "label": self._label(hair, glasses, smiling)}

    def counterfactual(self, index: int, label: torch.Tensor) -> torch.Tensor:
        """Item ``index`` as it would be drawn with ``label`` (in this dataset's attribute
        order): the same face, position, skin, background and noise, other attributes. Its
        true translation, for the counterfactual metric. uint8 (3, S, S)."""
        generator, hair, glasses, smiling = self._draw_attributes(index)
        wanted = dict(zip(self.attributes, (float(v) for v in label), strict=True))
        shown = [i for i, h in enumerate(HAIR) if wanted.get(h, 0.0) > 0.5]
        hair = shown[0] if shown else hair
        glasses = wanted.get("Glasses", float(glasses)) > 0.5
        smiling = wanted.get("Smiling", float(smiling)) > 0.5
        image = draw_face(hair, glasses, smiling, self.image_size, generator)
        return (image * 255).round().to(torch.uint8)
