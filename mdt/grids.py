"""Sample grids: rows of inputs, columns of translations, saved as PNG."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from mdt.images import to_pil
from mdt.writing import write_file

LINE_HEIGHT = 12  # PIL's default font (10 px) and its line spacing
TITLE_LINES = 3  # a column title longer than this many lines is cut, ending in ".."
WIDEST_WORD = 96  # pixels: a column widens to fit its title's longest word up to this, then the word is cut
TITLE_GAP = 4  # pixels a column widened for its title adds, to keep it apart from the next
ROW_TITLE_WIDTH = 60  # the widest a row title's margin gets, in pixels
BREAKS = re.compile(r"(?<=[_ ])")  # a title breaks after an underscore or a space, dropped at the break


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default()


def text_width(text: str) -> int:
    """Pixels ``text`` takes in PIL's default font, which the grid writes with."""
    return math.ceil(_font().getlength(text))


def wrap_title(title: str, width: int, lines: int = TITLE_LINES) -> list[str]:
    """``title`` in at most ``lines`` lines no wider than ``width`` pixels, broken only
    between words (at an underscore or a space, dropped at the break): "Black_Hair" in a
    32 px column is "Black" over "Hair". A word wider than ``width`` is cut, and what does
    not fit in ``lines`` lines ends in "..". Callers make columns as wide as their words
    (:func:`column_width`), so that a word is cut only past :data:`WIDEST_WORD`."""
    out: list[str] = []
    for word in BREAKS.split(title):
        joined = out[-1] + word if out else word
        if out and text_width(joined.rstrip("_ ")) <= width:
            out[-1] = joined
        else:
            out.append(word)
    out = [_fit(line.rstrip("_ "), width) for line in out if line.rstrip("_ ")]
    if len(out) > lines:
        out = out[:lines]
        out[-1] = _fit(out[-1] + "..", width, cut_from=-2)
    return out


def _fit(text: str, width: int, cut_from: int = 0) -> str:
    """``text`` cut until it fits ``width`` pixels, ending in ".." when cut (``cut_from``:
    characters kept at the end, as the ".." a caller has added)."""
    if text_width(text) <= width:
        return text
    tail = text[cut_from:] if cut_from else ".."
    body = text[:cut_from] if cut_from else text
    while body and text_width(body + tail) > width:
        body = body[:-1]
    return body + tail


def column_width(title: str, size: int) -> int:
    """A column is as wide as its image, or as its title's widest word (up to
    :data:`WIDEST_WORD`): words stay whole."""
    widest = max((text_width(word.rstrip("_ ")) for word in BREAKS.split(title)), default=0)
    return size if widest <= size else max(size, min(widest + TITLE_GAP, WIDEST_WORD))


def grid_image(
    rows: Sequence[Sequence[torch.Tensor | None]],
    titles: Sequence[str] | None = None,
    pad: int = 2,
    row_titles: Sequence[str | None] | None = None,
    picture: Callable[[torch.Tensor], Image.Image] = to_pil,
) -> Image.Image:
    """A PIL image of ``rows`` of (C, H, W) tensors in [-1, 1] (None: an empty cell), each
    drawn by ``picture`` (a modality's preview; default :func:`mdt.images.to_pil`);
    ``titles`` head the columns (wrapped between words; a column widens to its title's
    longest word, its image centred), ``row_titles`` (one per row, None for none) stand in
    a margin left of their rows: which dataset a group of rows comes from when a run
    trains on several."""
    cells = [[None if image is None else picture(image) for image in row] for row in rows]
    size, tall = next(cell for row in cells for cell in row if cell is not None).size  # every cell is drawn alike
    columns = max(len(r) for r in rows)
    names = list(titles or ())
    widths = [column_width(names[c], size) if c < len(names) else size for c in range(columns)]
    lefts = [pad + sum(w + pad for w in widths[:c]) for c in range(columns)]
    wrapped = [wrap_title(t, widths[c]) for c, t in enumerate(names)]
    header = LINE_HEIGHT * max((len(w) for w in wrapped), default=0)
    named = [t for t in row_titles or () if t]
    margin_width = min(ROW_TITLE_WIDTH, max((text_width(t) for t in named), default=0))
    margin = margin_width + 2 * pad if named else 0
    width = margin + lefts[-1] + widths[-1] + pad
    height = header + len(rows) * (tall + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.font = _font()
    for c, lines in enumerate(wrapped):
        for k, line in enumerate(lines):
            draw.text((margin + lefts[c], k * LINE_HEIGHT), line, fill=(0, 0, 0))
    for r, title in enumerate(row_titles or ()):
        if title:
            top = header + pad + r * (tall + pad)
            for k, line in enumerate(wrap_title(title, margin_width, max(1, tall // LINE_HEIGHT))):
                draw.text((pad, top + k * LINE_HEIGHT), line, fill=(0, 0, 0))
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            if cell is None:
                continue
            left = margin + lefts[c] + (widths[c] - size) // 2
            canvas.paste(cell, (left, header + pad + r * (tall + pad)))
    return canvas


def save_png(image: Image.Image, path: str | Path, replace: bool = True) -> None:
    """Write atomically (a half-written PNG never replaces a good one); with ``replace``
    False, never over a file another process put there meanwhile (:mod:`mdt.writing`)."""
    write_file(path, lambda f: image.save(f, format="PNG"), replace)
