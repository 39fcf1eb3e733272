"""Writers never destroy or mix a user's files: an output that is, or lies inside, its
input is refused whatever --overwrite says, and the refusal does not advise --overwrite."""

from __future__ import annotations

import pytest
from conftest import random_image
from test_recipe_errors import one_line_error


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def photos(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("grid", [False, True])
def test_translating_a_folder_into_itself_is_refused_and_the_originals_stay(cli, trained, tmp_path, grid):
    for i in range(3):
        random_image(tmp_path / "same" / f"p{i}.png", 50, 50, seed=i)
    before = photos(tmp_path / "same")
    flags = ["--grid"] if grid else ["--to", "Blond_Hair"]
    for output in ("same", "same/translated", "./same/../same"):
        line = one_line_error(cli("translate", "--checkpoint", trained, "--input", "same", "--output", output, *flags, "--overwrite"))
        assert "the input 'same'" in line and "whatever --overwrite says" in line, line
        assert "pass --overwrite" not in line
    assert photos(tmp_path / "same") == before  # not one byte changed, nothing added


def test_translating_a_file_onto_itself_is_refused(cli, trained, tmp_path):
    random_image(tmp_path / "x.png", 50, 50, seed=1)
    before = (tmp_path / "x.png").read_bytes()
    (tmp_path / "link.png").symlink_to(tmp_path / "x.png")
    for output in ("x.png", "link.png"):  # the same file under another name: resolved first
        line = one_line_error(
            cli("translate", "--checkpoint", trained, "--input", "x.png", "--output", output, "--to", "Glasses", "--overwrite")
        )
        assert f"output '{output}' is the input 'x.png'" in line and "pass --overwrite" not in line, line
    assert (tmp_path / "x.png").read_bytes() == before


def test_aligning_a_folder_into_itself_is_refused(cli, trained, tmp_path):
    for i in range(2):
        random_image(tmp_path / "inside" / f"p{i}.png", 60, 40, seed=i)
    before = photos(tmp_path / "inside")
    line = one_line_error(cli("align", "inside", "inside", "--checkpoint", trained, "--overwrite"))
    assert "the input 'inside'" in line and "pass --overwrite" not in line, line
    assert photos(tmp_path / "inside") == before
