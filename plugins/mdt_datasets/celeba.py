"""CelebA in its published layout: ``img_align_celeba/`` and ``list_attr_celeba.txt``
(and, for ``mdt align``, ``list_landmarks_align_celeba.txt``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mdt.align import FacePoints
from mdt.errors import MdtError, did_you_mean
from mdt.labels import LabelSchema
from mdt.ranges import Count
from mdt_datasets.files import ImageFiles, Split, listed_split

DEFAULT_ATTRIBUTES = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
ALIGNED_SIZE = (178, 218)  # width, height of img_align_celeba's images


def read_attribute_file(path: Path) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """(attribute names, [(file, values in {-1, 1})]) from CelebA's attribute list:
    a count line, a line of names, then ``file v1 v2 ...`` separated by spaces."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MdtError(f"cannot read attribute file '{path}': {exc}") from None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise MdtError(f"{path}: line 1 must be the number of images, then a line of attribute names")
    names = lines[1].split()
    rows: list[tuple[str, list[int]]] = []
    first_line: dict[str, int] = {}  # an image's file name -> the line that labels it
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1:
            raise MdtError(f"{path}: line {number} has {len(fields) - 1} values, expected {len(names)}")
        wrong = [(name, v) for name, v in zip(names, fields[1:], strict=True) if v not in ("1", "-1")]
        if wrong:
            raise MdtError(f"{path}: line {number} gives {wrong[0][0]} the value '{wrong[0][1]}'; expected 1 or -1")
        values = [int(v) for v in fields[1:]]
        if fields[0] in first_line:  # two label rows for one image: which is right cannot be told
            raise MdtError(f"{path}: line {number} lists '{fields[0]}' again (first on line {first_line[fields[0]]})")
        first_line[fields[0]] = number
        rows.append((fields[0], values))
    if int(lines[0]) != len(rows):
        raise MdtError(f"{path}: line 1 says {int(lines[0])} images, but {len(rows)} rows follow")
    return names, rows


LANDMARK_FILE = "list_landmarks_align_celeba.txt"


def celeba_framing(table) -> FacePoints:
    """The mean eye and mouth centres of CelebA's aligned landmark file (in ``root``), in
    the centre crop of ``crop_size`` the dataset trains on, as fractions of it."""
    root = Path(table.get("root", "."))
    path = root / LANDMARK_FILE
    if not path.is_file():
        raise MdtError(f"CelebA's framing comes from its landmark file '{path}', which does not exist (root = '{root}')")
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        points = np.array([[float(v) for v in line.split()[1:11]] for line in lines[2:] if line.strip()])
    except ValueError:
        raise MdtError(
            f"{path}: expected lines 'file lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x "
            "leftmouth_y rightmouth_x rightmouth_y' after two header lines"
        ) from None
    if points.ndim != 2 or points.shape[1] != 10:
        raise MdtError(f"{path}: expected 10 numbers per image after the file name")
    mean = points.mean(axis=0)
    side = table.get("crop_size", 178) or min(ALIGNED_SIZE)
    left, top = round((ALIGNED_SIZE[0] - side) / 2.0), round((ALIGNED_SIZE[1] - side) / 2.0)
    at = lambda x, y: ((x - left) / side, (y - top) / side)  # noqa: E731
    return FacePoints(at(mean[0], mean[1]), at(mean[2], mean[3]), at((mean[6] + mean[8]) / 2, (mean[7] + mean[9]) / 2))


class CelebA(ImageFiles):
    """CelebA faces with binary attributes chosen by name; 178 centre crop, fixed 2000-image test split."""

    framing = staticmethod(celeba_framing)  # for mdt align
    terms = "CelebA's terms: non-commercial research only, its images not to be redistributed (mmlab.ie.cuhk.edu.hk/projects/CelebA.html)"
    shows_people = True

    def __init__(
        self,
        root: str,
        split: Split,
        image_size: int,
        attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
        crop_size: Count = 178,
        test_size: Count = 2000,
        images: str = "img_align_celeba",
        attribute_file: str = "list_attr_celeba.txt",
    ) -> None:
        root_path = Path(root)
        if root_path.exists() and not root_path.is_dir():
            raise MdtError(f"root '{root}' is a file; give the CelebA folder that holds {attribute_file} and {images}/")
        attr_path = root_path / attribute_file
        image_dir = root_path / images
        if not attr_path.is_file():
            raise MdtError(f"CelebA attribute file '{attr_path}' does not exist (root = '{root}')")
        if not image_dir.is_dir():
            raise MdtError(f"CelebA image folder '{image_dir}' does not exist (root = '{root}')")
        names, rows = read_attribute_file(attr_path)
        if not attributes:
            raise MdtError("attributes is empty; name at least one CelebA attribute")
        for attribute in attributes:
            if attribute not in names:
                raise MdtError(f"attribute '{attribute}' is not in {attr_path}{did_you_mean(attribute, names)}")
        columns = [names.index(a) for a in attributes]
        chosen = listed_split(image_dir, [file for file, _ in rows], str(attr_path), test_size, split)
        labels = torch.tensor([[1.0 if rows[i][1][c] == 1 else 0.0 for c in columns] for i in chosen]).reshape(len(chosen), len(columns))
        hair = tuple(a for a in attributes if a in HAIR_COLOURS)
        schema = LabelSchema("celeba", tuple(attributes), (hair,) if len(hair) > 1 else ())
        super().__init__([image_dir / rows[i][0] for i in chosen], labels, schema, crop_size, self.samples({}, image_size))
