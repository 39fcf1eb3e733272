"""Sample grids: rows of inputs, columns of translations, saved as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from mdt.errors import written_as
from mdt.images import to_pil


def grid_image(rows: Sequence[Sequence[torch.Tensor]], titles: Sequence[str] | None = None, pad: int = 2) -> Image.Image:
    """A PIL image of ``rows`` of (3, S, S) tensors in [-1, 1] (None: an empty cell);
    ``titles`` head the columns."""
    size = next(image for row in rows for image in row if image is not None).shape[-1]
    columns = max(len(r) for r in rows)
    header = 12 if titles else 0
    width = columns * (size + pad) + pad
    height = header + len(rows) * (size + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if titles:
        for c, title in enumerate(titles):
            draw.text((pad + c * (size + pad), 0), title[: max(3, size // 6)], fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image is None:
                continue
            canvas.paste(to_pil(image), (pad + c * (size + pad), header + pad + r * (size + pad)))
    return canvas


def save_png(image: Image.Image, path: str | Path) -> None:
    """Write atomically: a half-written PNG never replaces a good one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with written_as(path):
            with open(tmp, "wb") as f:
                image.save(f, format="PNG")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
