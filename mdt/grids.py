"""Sample grids: rows of inputs, columns of translations, saved as PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from mdt.errors import written_as
from mdt.images import to_pil

CHAR_WIDTH, LINE_HEIGHT = 6, 12  # PIL's default bitmap font: about 6 x 11 pixels a character
TITLE_LINES = 3  # a column title longer than this many lines is cut, ending in ".."
ROW_TITLE_CHARS = 10  # the widest a row title's margin gets, in characters


def wrap_title(title: str, chars: int, lines: int = TITLE_LINES) -> list[str]:
    """``title`` in at most ``lines`` lines of at most ``chars`` characters, broken at an
    underscore or space (dropped at the break) where one falls within a line, else cut;
    what does not fit ends in "..". A 32 px column fits five characters: "Black_Hair"
    becomes "Black" over "Hair" rather than "Black", which says nothing of the hair."""
    chars = max(3, chars)
    out, rest = [], title
    while rest:
        if len(rest) <= chars:
            out.append(rest)
            break
        cut = max(rest.rfind("_", 0, chars + 1), rest.rfind(" ", 0, chars + 1))
        if cut > 0:
            out.append(rest[:cut])
            rest = rest[cut + 1 :]
        else:
            out.append(rest[:chars])
            rest = rest[chars:]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: chars - 2] + ".."
    return out


def grid_image(
    rows: Sequence[Sequence[torch.Tensor | None]],
    titles: Sequence[str] | None = None,
    pad: int = 2,
    row_titles: Sequence[str | None] | None = None,
) -> Image.Image:
    """A PIL image of ``rows`` of (3, S, S) tensors in [-1, 1] (None: an empty cell);
    ``titles`` head the columns (wrapped to the column's width), ``row_titles`` (one per
    row, None for none) stand in a margin left of their rows: which dataset a group of
    rows comes from when a run trains on several."""
    size = next(image for row in rows for image in row if image is not None).shape[-1]
    columns = max(len(r) for r in rows)
    wrapped = [wrap_title(t, (size + pad) // CHAR_WIDTH) for t in titles or ()]
    header = LINE_HEIGHT * max((len(w) for w in wrapped), default=0)
    named = [t for t in row_titles or () if t]
    margin_chars = min(ROW_TITLE_CHARS, max((len(t) for t in named), default=0))
    margin = margin_chars * CHAR_WIDTH + 2 * pad if named else 0
    width = margin + columns * (size + pad) + pad
    height = header + len(rows) * (size + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, lines in enumerate(wrapped):
        for k, line in enumerate(lines):
            draw.text((margin + pad + c * (size + pad), k * LINE_HEIGHT), line, fill=(0, 0, 0))
    for r, title in enumerate(row_titles or ()):
        if title:
            top = header + pad + r * (size + pad)
            for k, line in enumerate(wrap_title(title, margin_chars, max(1, size // LINE_HEIGHT))):
                draw.text((pad, top + k * LINE_HEIGHT), line, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image is None:
                continue
            canvas.paste(to_pil(image), (margin + pad + c * (size + pad), header + pad + r * (size + pad)))
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
