"""Folder-per-domain datasets (RaFD, AFHQ, your own) and CSV attribute files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import torch

from mdt.errors import MdtError, did_you_mean
from mdt.images import is_image
from mdt.labels import LabelSchema
from mdt.ranges import Between, Count
from mdt_datasets.files import ImageFiles, Split, held_out, listed_split

RAFD_EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


def _split_root(root: Path, split: str) -> tuple[Path, bool]:
    """``root/train`` or ``root/test`` when the split folders exist, else ``root``."""
    names = {"train": ("train",), "test": ("test", "val")}[split]
    if (root / "train").is_dir():
        for name in names:
            if (root / name).is_dir():
                return root / name, True
        raise MdtError(f"'{root}' has a train/ folder but no {' or '.join(n + '/' for n in names)} folder")
    return root, False


class DomainFolders(ImageFiles):
    """One folder of images per domain (class); ``root/train`` and ``root/test`` when present."""

    def __init__(
        self,
        root: str,
        split: Split,
        image_size: int,
        domains: Sequence[str] = (),
        crop_size: Count = 0,
        test_fraction: Annotated[float, Between(0, 1, below_maximum=True)] = 0.1,
        channels: Literal[1, 3] = 3,
        height: Count = 0,
        width: Count = 0,
    ) -> None:
        base = Path(root)
        if not base.is_dir():
            raise MdtError(
                f"dataset folder '{root}' is a file; give the folder of class folders"
                if base.exists()
                else f"dataset folder '{root}' does not exist"
            )
        folder, has_splits = _split_root(base, split)
        found = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        wanted = list(domains) or found
        if not wanted:
            raise MdtError(f"'{folder}' has no class folders; expected one folder of images per domain")
        if len(wanted) < 2:
            raise MdtError(
                f"'{folder}' gives one domain ('{wanted[0]}'); translation needs at least two domains, one folder of images each"
            )
        files, classes = [], []
        for index, domain in enumerate(wanted):
            directory = folder / domain
            if not directory.is_dir():
                listing = f"found: {', '.join(found)}" if found else f"'{folder}' holds no class folders"
                raise MdtError(f"class folder '{directory}' does not exist{did_you_mean(domain, found)}; {listing}")
            images = sorted(p for p in directory.iterdir() if p.is_file() and is_image(p))
            if not images:
                raise MdtError(f"class folder '{directory}' holds no images")
            if not has_splits:
                count = len(images)
                keep = held_out(count, max(1, round(count * test_fraction)) if count > 1 else 0, split)
                images = [images[i] for i in keep]
            files += images
            classes += [index] * len(images)
        labels = torch.nn.functional.one_hot(torch.tensor(classes), len(wanted)).float()
        schema = LabelSchema(self.default_name, tuple(wanted), (), categorical=True)
        shape = {"channels": channels, "height": height, "width": width}
        super().__init__(files, labels, schema, crop_size, self.samples(shape, image_size))

    default_name = "domains"


class RaFD(DomainFolders):
    """RaFD with one folder per expression (the official StarGAN layout); 256 centre crop."""

    default_name = "rafd"
    terms = "RaFD's licence agreement: non-commercial scientific research by its licensees; its images are not to be redistributed"
    shows_people = True

    def __init__(
        self,
        root: str,
        split: Split,
        image_size: int,
        expressions: Sequence[str] = RAFD_EXPRESSIONS,
        crop_size: Count = 256,
        test_fraction: Annotated[float, Between(0, 1, below_maximum=True)] = 0.1,
    ) -> None:
        super().__init__(root, split, image_size, expressions, crop_size, test_fraction)


def read_attribute_csv(csv_path: Path, attributes: Sequence[str]) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """(the attributes chosen, [(file, their 1.0/0.0 values)]) of a ``file,attr1,attr2,...``
    CSV whose cells are 1, 0 or -1; every mistake is one line naming the line and column."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except OSError as exc:
        raise MdtError(f"cannot read attribute file '{csv_path}': {exc.strerror or exc}") from None
    if not table or len(table[0]) < 2:
        raise MdtError(f"{csv_path}: the first row must be a header: file,attribute1,attribute2,...")
    header = [h.strip() for h in table[0]]
    names = header[1:]
    chosen_names = list(attributes) or names
    for attribute in chosen_names:
        if attribute not in names:
            raise MdtError(f"attribute '{attribute}' is not in {csv_path}{did_you_mean(attribute, names)}")
    columns = [names.index(a) + 1 for a in chosen_names]
    rows = []
    for number, row in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise MdtError(f"{csv_path}: line {number} has {len(row)} fields, expected {len(header)}")
        values = []
        for c in columns:
            cell = row[c].strip()
            if cell not in ("1", "0", "-1"):
                raise MdtError(f"{csv_path}: line {number}, column '{header[c]}' is '{cell}', expected 1, 0 or -1")
            values.append(1.0 if cell == "1" else 0.0)
        rows.append((row[0].strip(), values))
    if not rows:
        raise MdtError(f"{csv_path} lists no images")
    return chosen_names, rows


class CSVAttributes(ImageFiles):
    """Images in a folder with a CSV file of binary attributes: ``file,attr1,attr2,...`` (1/0 or 1/-1)."""

    def __init__(
        self,
        root: str,
        csv_file: str,
        split: Split,
        image_size: int,
        attributes: Sequence[str] = (),
        exclusive: Sequence[Sequence[str]] = (),
        crop_size: Count = 0,
        test_size: Count = 0,
        channels: Literal[1, 3] = 3,
        height: Count = 0,
        width: Count = 0,
    ) -> None:
        image_dir = Path(root)
        csv_path = Path(csv_file) if Path(csv_file).is_absolute() else image_dir / csv_file
        if not image_dir.is_dir():
            raise MdtError(
                f"image folder '{root}' is a file; give the folder of images"
                if image_dir.exists()
                else f"image folder '{root}' does not exist"
            )
        chosen_names, rows = read_attribute_csv(csv_path, attributes)
        # test_size 0: no held-out images; both splits are every listed image.
        chosen = listed_split(image_dir, [file for file, _ in rows], str(csv_path), test_size, split if test_size else "train")
        for group in exclusive:
            for name in group:
                if name not in chosen_names:
                    raise MdtError(f"exclusive group names '{name}', which is not a chosen attribute{did_you_mean(name, chosen_names)}")
        schema = LabelSchema("csv", tuple(chosen_names), tuple(tuple(g) for g in exclusive))
        labels = torch.tensor([rows[i][1] for i in chosen]).reshape(len(chosen), len(chosen_names))
        shape = {"channels": channels, "height": height, "width": width}
        super().__init__([image_dir / rows[i][0] for i in chosen], labels, schema, crop_size, self.samples(shape, image_size))
