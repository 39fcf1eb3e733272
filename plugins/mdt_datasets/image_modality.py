"""The ``image`` modality: picture files in and out of ``mdt translate``, RGB or grey."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from mdt.errors import MdtError
from mdt.grids import save_png
from mdt.images import IMAGE_SUFFIXES, ImageProblem, from_pil, read_rgb, to_pil
from mdt.interfaces import Modality


class Images(Modality):
    """Image files (PNG, JPEG, WebP, TIFF, BMP, a GIF's first frame) turned upright and
    made 8-bit RGB (:func:`mdt.images.read_rgb`), centre-cropped to the samples' shape
    and resized; grey samples are the pictures' luma. Outputs are PNG files."""

    suffixes = IMAGE_SUFFIXES
    output_suffix = ".png"
    noun = "image"
    task = "image-to-image"

    def read(self, path: Path) -> Image.Image:
        try:
            return read_rgb(path)
        except ImageProblem as exc:
            raise MdtError(str(exc)) from None

    def to_sample(self, given: Image.Image, crop_size: int = 0) -> torch.Tensor:
        sample = self.sample
        try:
            return from_pil(given, (sample.height, sample.width), crop_size, sample.channels)
        except ImageProblem as exc:
            raise MdtError(str(exc)) from None

    def from_sample(self, values: torch.Tensor, given: Image.Image, request: Mapping[str, Any]) -> Image.Image:
        return to_pil(values)

    def write(self, output: Image.Image, path: Path, replace: bool = True) -> None:
        save_png(output, path, replace)
