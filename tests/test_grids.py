"""Sample grids say what their columns and rows are, at any image size."""

from __future__ import annotations

import numpy as np
import torch
from conftest import REPO, small, write_celeba, write_rafd
from PIL import Image

from mdt.grids import WIDEST_WORD, column_width, grid_image, wrap_title


def pixels(text: str) -> int:
    """The width PIL's default font gives ``text``, measured here, not by mdt.grids."""
    import math

    from PIL import ImageFont

    return math.ceil(ImageFont.load_default().getlength(text))


def test_titles_wrap_between_words_and_a_word_is_cut_only_past_the_widest_column():
    assert wrap_title("Black_Hair", 32) == ["Black", "Hair"]
    assert wrap_title("Male", 32) == ["Male"]
    assert wrap_title("cat s0", pixels("cat s0")) == ["cat s0"]
    assert wrap_title("cat s0", pixels("cat s0") - 1) == ["cat", "s0"]
    assert wrap_title("Blond_Hair", 120) == ["Blond_Hair"]
    assert wrap_title("Wearing_Heavy_Makeup_Today", 60) == ["Wearing", "Heavy", "Makeup.."]
    # a column widens to its title's longest word, so that no word is split ...
    for title in ("Eyeglasses", "Smiling", "contemptuous", "Black_Hair", "Wearing_Heavy_Makeup"):
        width = column_width(title, 32)
        widest = max(pixels(w) for w in title.replace("_", " ").split())
        assert width == (32 if widest <= 32 else widest + 4)  # a widened column keeps its title 4 px from the next
        assert " ".join(wrap_title(title, width)).replace(" ", "_") == title
    # ... up to a limit: a longer word is cut, and says so
    assert column_width("Pneumonoultramicroscopic", 32) == WIDEST_WORD
    (cut,) = wrap_title("Pneumonoultramicroscopic", WIDEST_WORD)
    assert cut.endswith("..") and "Pneumonoultramicroscopic".startswith(cut[:-2]) and pixels(cut) <= WIDEST_WORD


def _dark_rows(image) -> np.ndarray:
    """Which pixel rows hold any dark (text) pixel."""
    return (np.asarray(image.convert("L")) < 128).any(axis=1)


def test_the_header_grows_by_a_line_for_every_wrapped_line():
    white = torch.ones(3, 32, 32)  # white cells: any dark pixel is text
    rows = [[white, white, white]]
    short = grid_image(rows, ["input", "Male", "Young"])
    wrapped = grid_image(rows, ["input", "Black_Hair", "Male"])
    assert short.size == (3 * 34 + 2, 12 + 34 + 2)
    assert wrapped.size == (3 * 34 + 2, 24 + 34 + 2)
    dark = _dark_rows(wrapped)
    assert dark[:12].any() and dark[12:24].any() and not dark[24:].any()  # "Black" over "Hair"; cells white
    assert not _dark_rows(short)[12:].any()


def test_row_titles_stand_in_a_left_margin_beside_their_rows():
    white = torch.ones(3, 32, 32)
    rows = [[white, white]] * 3
    plain = grid_image(rows, ["input", "Male"])
    named = grid_image(rows, ["input", "Male"], row_titles=["celeba", None, "rafd"])
    margin = pixels("celeba") + 4  # the title and a pad each side
    assert named.size == (plain.width + margin, plain.height)
    text = np.asarray(named.convert("L"))[12:, :margin] < 128
    by_row = [text[2 + r * 34 : 2 + (r + 1) * 34].any() for r in range(3)]
    assert by_row == [True, False, True]
    assert not (np.asarray(named.convert("L"))[12:, margin:] < 128).any()  # the cells stay white


def test_a_run_on_two_datasets_names_each_group_of_sample_rows(cli, tmp_path):
    """StarGAN on CelebA and RaFD at once: the sample grid's rows come from both datasets
    and its columns hold both label sets; the margin says which rows are which."""
    celeba = write_celeba(tmp_path / "celeba", count=24)
    rafd = write_rafd(tmp_path / "RaFD", per_class=2)
    result = cli(
        "run",
        REPO / "recipes" / "stargan_celeba_rafd.toml",
        "--out",
        "run",
        *small(f"datasets.celeba.root={celeba}", f"datasets.rafd.root={rafd}", "datasets.celeba.test_size=4", "run.sample_count=2"),
    )
    assert result.exit_code == 0, result.output
    sample = sorted((tmp_path / "run" / "samples").glob("step_*.png"))[-1]
    grid = Image.open(sample)
    titles = ["input", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]  # CelebA's five attributes
    titles += ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]  # RaFD's eight
    margin = pixels("celeba") + 4  # the longer name, and a pad each side
    # each column as wide as its image or its title's longest word, whichever is wider
    widest = [max(pixels(word) for word in title.split("_")) for title in titles]
    widths = [32 if w <= 32 else w + 4 for w in widest]
    assert grid.width == margin + sum(w + 2 for w in widths) + 2
    header = grid.height - 4 * 34 - 2  # two rows of each dataset
    assert header == 24  # "Black_Hair" wraps to two lines; "contemptuous" stays one word in its wider column
    text = np.asarray(grid.convert("L"))[header:, :margin] < 128
    assert [text[2 + r * 34 : 2 + (r + 1) * 34].any() for r in range(4)] == [True, False, True, False]
