"""Own photos framed like a dataset's training images: ``mdt align`` and ``translate --align``.

A model trained on CelebA has only seen faces whose eyes and mouth sit where CelebA's
alignment put them; a photo framed otherwise is translated badly. A dataset component
may say where that is (its ``framing``); a ``landmarks`` component (StarGAN v2's FAN,
with the user's weights file) finds the eyes and mouth of a photo; one similarity
transform (rotation, uniform scale, shift) then moves the photo's points onto the
framing's, least squares, and crops the square. Without landmarks, or where none are
found, the documented fallback is the centre square, resized.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from mdt.errors import MdtError

Point = tuple[float, float]


@dataclass(frozen=True)
class FacePoints:
    """The centres of the eyes (the one on the image's left first) and of the mouth,
    in pixels, or as fractions of a square image in a :class:`Framing`."""

    left_eye: Point
    right_eye: Point
    mouth: Point

    def array(self) -> np.ndarray:
        return np.array([self.left_eye, self.right_eye, self.mouth], dtype=np.float64)


Framing = FacePoints  # a dataset's framing: FacePoints as fractions of its square training image

#: A landmark detector: a photo -> its FacePoints in pixels, or None when it finds no face.
Detector = Callable[[Image.Image], "FacePoints | None"]


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 matrix of the rotation, uniform scale and shift that moves the points
    ``source`` (N, 2) closest to ``target`` (N, 2), least squares (Umeyama, no reflection)."""
    mean_s, mean_t = source.mean(0), target.mean(0)
    s, t = source - mean_s, target - mean_t
    u, singular, vt = np.linalg.svd(t.T @ s)
    flip = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ flip @ vt
    scale = (singular * np.diag(flip)).sum() / (s**2).sum()
    shift = mean_t - scale * rotation @ mean_s
    return np.hstack([scale * rotation, shift[:, None]])


def border_colour(image: Image.Image) -> tuple[int, ...]:
    """The median colour of the image's edge: what fills the crop beyond the photo."""
    pixels = np.asarray(image.convert("RGB"))
    edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    return tuple(int(v) for v in np.median(edge, axis=0))


def align_face(image: Image.Image, points: FacePoints, framing: Framing, size: int) -> Image.Image:
    """The ``size`` x ``size`` crop of ``image`` in which ``points`` land on ``framing``."""
    matrix = similarity(points.array(), framing.array() * size)
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]  # PIL maps output pixels to input pixels
    return image.convert("RGB").transform(
        (size, size), Image.Transform.AFFINE, tuple(inverse.ravel()), Image.Resampling.BILINEAR, fillcolor=border_colour(image)
    )


def centre_square(image: Image.Image, size: int) -> Image.Image:
    """The fallback: the largest centred square, resized to ``size``."""
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BICUBIC)


def align(image: Image.Image, framing: Framing | None, size: int, detector: Detector | None) -> tuple[Image.Image, str]:
    """The photo framed like the training images, and how: ``"landmarks"`` or ``"centre crop"``."""
    points = detector(image) if detector is not None and framing is not None else None
    if points is None or framing is None:  # no framing: no points either
        return centre_square(image, size), "centre crop"
    return align_face(image, points, framing, size), "landmarks"


def dataset_framing(recipe_data: Mapping[str, Any], registry) -> Framing | None:
    """The framing of the recipe's first dataset that has one: its class's
    ``framing(table)`` (:class:`mdt.interfaces.Dataset`), given the dataset's recipe table."""
    for name, table in recipe_data.get("datasets", {}).items():
        found = registry.get("dataset", table["type"]).factory.framing(table)
        if found is not None:
            return check_framing(found, f"[datasets.{name}]")
    return None


def detector(registry, weights: str | None, name: str | None) -> Detector | None:
    """The ``landmarks`` component ``name`` (the only one registered when not named),
    built from ``weights``; None without weights."""
    if weights is None:
        if name is not None:
            raise MdtError(f"--detector {name} needs its weights file: give --landmarks FILE")
        return None
    names = registry.names("landmarks")
    if name is None:
        if len(names) != 1:
            raise MdtError(f"name the landmark detector with --detector; registered: {', '.join(names) or 'none'}")
        name = names[0]
    return registry.get("landmarks", name).factory(weights)


def check_framing(framing: Framing, where: str) -> Framing:
    for name, (x, y) in (("left_eye", framing.left_eye), ("right_eye", framing.right_eye), ("mouth", framing.mouth)):
        if not (0 <= x <= 1 and 0 <= y <= 1):
            raise MdtError(f"{where}: the framing's {name} ({x:.3f}, {y:.3f}) lies outside the image; expected fractions in [0, 1]")
    return framing


def framer(recipe_data: Mapping[str, Any], registry, size: int, landmarks, warn) -> Callable:
    """``mdt translate --align``: (file, picture) -> the picture framed like the model's
    training images; ``warn`` (a console) hears of a photo in which no face was found."""
    framing = dataset_framing(recipe_data, registry)
    if framing is None and landmarks is not None:
        raise MdtError("no dataset of this model says where its faces sit (a framing); --align without --landmarks takes the centre square")
    find = detector(registry, str(landmarks) if landmarks else None, None)

    def framed(file, picture):
        aligned, way = align(picture, framing, size, find)
        if find is not None and way != "landmarks":
            warn.print(f"{file}: no face found; centre crop", markup=False)
        return aligned

    return framed


def align_files(
    input_path,
    output,
    recipe_data: Mapping[str, Any],
    registry,
    size: int,
    landmarks,
    name: str | None,
    overwrite: bool,
    skip_bad_files: bool,
    warn,
) -> tuple[dict[str, int], int]:
    """``mdt align``: each image of ``input_path`` (a file or a folder) framed like the
    recipe's training images into ``output``; returns how many were framed each way, and
    how many were skipped as unreadable."""
    from mdt.grids import save_png
    from mdt.translate_files import bad_input, fresh_outputs, image_files, read_picture

    framing = dataset_framing(recipe_data, registry)
    if framing is None and landmarks is not None:
        raise MdtError("no dataset of this model says where its faces sit (a framing); align without --landmarks for the centre square")
    find = detector(registry, str(landmarks) if landmarks else None, name)
    files = image_files(input_path)
    targets = [output] if input_path.is_file() else [output / f"{f.stem}.png" for f in files]
    if input_path.is_file() and output.suffix.lower() != ".png":
        raise MdtError(f"OUTPUT '{output}' must be a .png file for a single input image")
    fresh_outputs(targets, overwrite, files, input_path)
    how: dict[str, int] = {}
    for file, target in zip(files, targets, strict=True):
        try:
            picture = read_picture(file, 0)
        except MdtError as exc:
            bad_input(exc, sum(how.values()), skip_bad_files, warn)
            continue
        picture, way = align(picture, framing, size, find)
        save_png(picture, target, replace=overwrite)
        how[way] = how.get(way, 0) + 1
        if find is not None and way != "landmarks":
            warn.print(f"{file}: no face found; centre crop", markup=False)
    skipped = len(files) - sum(how.values())
    if not how:
        raise MdtError(f"nothing aligned: all {skipped} inputs in '{input_path}' were unreadable")
    return how, skipped
