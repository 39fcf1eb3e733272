"""`mdt translate` and the Python API on images from outside any dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import grid_width, random_image, text_pixels
from PIL import Image
from test_recipe_errors import one_line_error


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


@pytest.fixture
def photo(tmp_path):
    # Not square and not 32 px: a file from outside any dataset.
    return random_image(tmp_path / "holiday.jpg", 90, 70, seed=3)


def pixels(picture) -> np.ndarray:
    """A picture (PIL image or PNG path) as int16 pixels, for differences in grey levels."""
    return np.asarray(picture if isinstance(picture, Image.Image) else Image.open(picture), dtype=np.int16)


def test_one_target(cli, trained, photo, tmp_path):
    from mdt.inference import load_translator

    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "blond.png", "--to", "Blond_Hair,Smiling=0")
    assert result.exit_code == 0, result.output
    out = pixels(tmp_path / "blond.png")
    assert out.shape == (32, 32, 3)
    translator = load_translator(trained)
    picture = Image.open(photo).convert("RGB")
    api = pixels(translator(picture, to={"Blond_Hair": 1, "Smiling": 0}))
    assert np.abs(out - api).max() <= 1  # the file holds the translation the request asks for
    # and the comparison tells requests apart: asking for a smile gives another picture
    other = pixels(translator(picture, to={"Blond_Hair": 1, "Smiling": 1}))
    assert np.abs(out - other).max() > 1


def test_grid(cli, trained, photo, tmp_path):
    from mdt.inference import load_translator

    checkpoint = trained / "checkpoints" / "step_00000002.safetensors"
    result = cli("translate", "--checkpoint", checkpoint, "--input", photo, "--output", "grid.png", "--grid")
    assert result.exit_code == 0, result.output
    grid = pixels(tmp_path / "grid.png")
    # the input and five targets side by side, 32 px and a 2 px pad each ("Glasses" and
    # "Smiling" a little wider, for their words); two lines of titles (12 px each) above
    titles = ["input", "Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"]
    assert grid.shape == (24 + 34 + 2, grid_width(titles), 3) and grid_width(titles) > 6 * 34 + 2
    translator = load_translator(checkpoint)
    picture = Image.open(photo).convert("RGB")
    assert np.abs(grid - pixels(translator.grid(picture))).max() <= 1

    def cell(column: int) -> np.ndarray:
        return grid[26:58, 2 + 34 * column : 34 + 34 * column]

    # the input: its centred 70 x 70 square of the 90 x 70 photo, resized to 32 px
    assert np.abs(cell(0) - pixels(picture.crop((10, 0, 80, 70)).resize((32, 32), Image.BILINEAR))).max() <= 1
    for column, hair in enumerate(("Black_Hair", "Blond_Hair", "Brown_Hair"), start=1):  # the columns' own targets
        assert np.abs(cell(column) - pixels(translator(picture, to={hair: 1}))).max() <= 1, hair


def test_a_folder_of_images(cli, trained, tmp_path):
    from mdt.inference import load_translator

    for i in range(3):
        random_image(tmp_path / "in" / f"p{i}.png", 50, 50, seed=i)
    result = cli("translate", "--checkpoint", trained, "--input", tmp_path / "in", "--output", "out", "--to", "Glasses")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p2.png"]
    translator = load_translator(trained)
    for i in range(3):  # each output is its own input's translation (one at a time: batching changes rounding at most)
        alone = pixels(translator(Image.open(tmp_path / "in" / f"p{i}.png").convert("RGB"), to={"Glasses": 1}))
        assert np.abs(pixels(tmp_path / "out" / f"p{i}.png") - alone).max() <= 1, i


def test_an_existing_output_is_not_overwritten(cli, trained, photo, tmp_path):
    from mdt.inference import load_translator

    (tmp_path / "keep.png").write_bytes(b"precious")
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "keep.png", "--to", "Glasses")
    assert result.exit_code == 2 and "exists; pass --overwrite" in result.output
    assert (tmp_path / "keep.png").read_bytes() == b"precious"
    assert (
        cli("translate", "--checkpoint", trained, "--input", photo, "--output", "keep.png", "--to", "Glasses", "--overwrite").exit_code == 0
    )
    # replaced by the translation itself
    expected = pixels(load_translator(trained)(Image.open(photo).convert("RGB"), to={"Glasses": 1}))
    assert np.abs(pixels(tmp_path / "keep.png") - expected).max() <= 1


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--to", "Blond_Hiar"], "unknown label 'Blond_Hiar' (did you mean 'Blond_Hair'?)"),
        (["--to", "Glasses=2"], "must be set to 0 or 1"),
        ([], "give --to (the target labels; the others keep the input's; e.g. Black_Hair,Blond_Hair=0), or --grid for every target"),
        (["--domain", "cat"], "no such option: --domain; this model takes --to, --from (mdt translate --checkpoint RUN --help)"),
        (["--grid", "--num", "3"], "--num 3: this model gives one output per request; its outputs do not vary"),
        (["--to", "Glasses", "--num", "3"], "--num 3: this model gives one output per request; its outputs do not vary"),
        (["--grid", "--to", "Glasses"], "--to is not for a grid: a grid shows every target"),
        (["--to", "Glasses=yes"], "--to 'Glasses=yes': the value must be a number such as 0 or 1"),
        (["--to", "Glasses,Glasses=0"], "--to 'Glasses,Glasses=0' names 'Glasses' twice; give each label once"),
        (["--to", "GLASSES"], "unknown label 'GLASSES' (did you mean 'Glasses'?)"),
    ],
)
def test_bad_requests_are_one_line(cli, trained, photo, args, expected):
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "x.png", *args)
    assert result.exit_code == 2 and expected in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_not_an_image(cli, trained, tmp_path):
    (tmp_path / "notes.png").write_text("hello")
    result = cli("translate", "--checkpoint", trained, "--input", tmp_path / "notes.png", "--output", "x.png", "--to", "Glasses")
    assert result.exit_code == 2 and "cannot read image" in result.output and "notes.png" in result.output


def test_python_api_with_pil_and_tensors(trained, photo, tmp_path):
    from mdt.images import from_pil, to_pil
    from mdt.inference import load_translator
    from mdt.labels import set_labels

    translator = load_translator(trained)
    inner = translator.translator
    picture = Image.open(photo)
    out = translator(picture, to={"Blond_Hair": 1})
    assert isinstance(out, Image.Image) and out.size == (32, 32)
    # PIL in: the same as the picture made a tensor (centre square, 32 px), translated, made a picture
    by_tensor = to_pil(translator(from_pil(picture, 32)[None], to={"Blond_Hair": 1})[0])
    assert np.array_equal(pixels(out), pixels(by_tensor))
    # a list: each picture's own translation, in order
    second = Image.open(random_image(tmp_path / "second.png", 40, 60, seed=9))
    outs = translator([picture, second], to={"Smiling": 1})
    assert len(outs) == 2 and all(isinstance(o, Image.Image) for o in outs)
    for given, got in zip((picture, second), outs, strict=True):
        assert np.abs(pixels(got) - pixels(translator(given, to={"Smiling": 1}))).max() <= 1
    assert np.abs(pixels(outs[0]) - pixels(outs[1])).max() > 1  # two inputs, two different results
    # tensors in: G(x, c) with c the labels D reads off x, Glasses set to 1
    batch = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    result = translator(batch, to={"Glasses": 1}, known={"Glasses": 0})
    assert result.shape == batch.shape
    schema = inner.encoder.schemas[0]
    read = inner.read_labels(batch, 0)
    expected = inner.generate(batch, set_labels(schema, read, {"Glasses": 1}), 0)
    assert torch.allclose(result, expected, atol=1e-6)
    without = inner.generate(batch, set_labels(schema, read, {"Glasses": 0}), 0)
    assert (result - without).abs().max() > 1e-2  # the label asked for makes a difference
    assert isinstance(translator.grid(batch[:2]), Image.Image)


def test_unnamed_labels_keep_the_source_values(trained):
    """Only the named label changes in the condition; the rest come from --from or D."""
    from mdt.inference import load_translator

    translator = load_translator(trained)
    inner = translator.translator
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    seen = []
    original = inner.encoder.encode
    inner.encoder.encode = lambda labels, source: seen.append(labels.clone()) or original(labels, source)
    known = {"Black_Hair": 1, "Glasses": 1, "Smiling": 0}
    inner.translate(images, to={"Blond_Hair": 1}, known=known)
    assert seen[-1].tolist() == [[0, 1, 0, 1, 0]] * 2


def test_help_lists_the_models_own_options(cli, trained):
    result = cli("translate", "--checkpoint", trained, "--help")
    assert result.exit_code == 0, result.output
    assert "--checkpoint" in result.output and "this model's options" in result.output
    assert "--to" in result.output and "the target labels" in result.output and "--from" in result.output


def test_the_python_api_checks_requests_against_the_options(trained):
    from mdt.errors import MdtError
    from mdt.inference import load_translator

    translator = load_translator(trained)
    assert [o.name for o in translator.options] == ["to", "known"]
    images = torch.rand(1, 3, 32, 32) * 2 - 1
    with pytest.raises(MdtError, match="this model's translation does not take 'domain'; it takes: to, known"):
        translator(images, domain="cat")
    with pytest.raises(MdtError, match=r"give --to: the target labels"):
        translator(images)
    with pytest.raises(MdtError, match="must be labels by name"):
        translator(images, to="Blond_Hair")
    with pytest.raises(MdtError, match="this model's grid does not take 'to'"):
        translator.grid(images, to={"Blond_Hair": 1})


def test_a_folder_goes_through_in_batches_with_the_outputs_of_one_at_a_time(cli, trained, tmp_path):
    for i in range(5):
        random_image(tmp_path / "in" / f"p{i}.png", 40 + 3 * i, 50, seed=i)  # sizes differ: each is cropped alone
    batched = cli(
        "translate", "--checkpoint", trained, "--input", tmp_path / "in", "--output", "batched", "--to", "Glasses", "--batch-size", "2"
    )
    assert batched.exit_code == 0, batched.output
    for i in range(5):
        alone = cli(
            "translate", "--checkpoint", trained, "--input", tmp_path / "in" / f"p{i}.png", "--output", f"alone{i}.png", "--to", "Glasses"
        )
        assert alone.exit_code == 0, alone.output
        a = np.asarray(Image.open(tmp_path / "batched" / f"p{i}.png"), dtype=np.int16)
        b = np.asarray(Image.open(tmp_path / f"alone{i}.png"), dtype=np.int16)
        assert np.abs(a - b).max() <= 1  # batching changes float rounding at most


def test_an_unreadable_image_in_a_folder_stops_or_is_skipped(cli, trained, tmp_path):
    for i in range(4):
        random_image(tmp_path / "in" / f"p{i}.png", 40, 40, seed=i)
    (tmp_path / "in" / "p2.png").write_bytes(b"not a png")
    stopped = cli(
        "translate", "--checkpoint", trained, "--input", tmp_path / "in", "--output", "out", "--to", "Glasses", "--batch-size", "2"
    )
    assert stopped.exit_code == 2
    (line,) = [line for line in stopped.stderr.splitlines() if line.strip()]  # one line; the outputs written are on stdout
    assert (
        line.startswith("error: ") and f"cannot read image '{tmp_path / 'in' / 'p2.png'}'" in line and "2 outputs written before it" in line
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png"]  # whole files only, no .tmp
    skipped = cli(
        "translate",
        "--checkpoint",
        trained,
        "--input",
        tmp_path / "in",
        "--output",
        "out",
        "--to",
        "Glasses",
        "--overwrite",
        "--skip-bad-files",
    )
    assert skipped.exit_code == 0, skipped.output
    assert f"skipped: cannot read image '{tmp_path / 'in' / 'p2.png'}'" in skipped.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p0.png", "p1.png", "p3.png"]
    assert (
        one_line_error(
            cli("translate", "--checkpoint", trained, "--input", tmp_path / "in", "--output", "out", "--to", "Glasses", "--batch-size", "0")
        )
        == "error: --batch-size 0: give at least 1"
    )


def test_loading_a_model_to_translate_builds_no_optimizer(trained):
    """Translating needs no optimizer; torch's first one imports its compiler (about 3 s of
    every `mdt translate` on two cores), so the methods build theirs when training asks."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from mdt.inference import load_translator; translator = load_translator(sys.argv[1]); "
        "method = translator.components.method; "
        "print('torch._dynamo' in sys.modules, any(k in vars(method) for k in ('g_optimizer', 'd_optimizer', '_optimizers')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(trained)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MDT_DISABLE_PLUGIN_AUTOLOAD": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_an_output_folder_it_cannot_write_is_named_as_given(trained, photo, tmp_path):
    from conftest import without_write_permission

    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    done = without_write_permission(
        ["translate", "--checkpoint", trained, "--input", photo, "--output", "ro/x.png", "--to", "Blond_Hair"], tmp_path
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.strip() == "error: cannot use 'ro/x.png': Permission denied"
    assert list((tmp_path / "ro").iterdir()) == []


def test_one_grid_of_a_folder_names_each_rows_file(cli, trained, tmp_path):
    for i in range(3):
        random_image(tmp_path / "in" / f"face{i}.png", 40, 40, seed=i)
    result = cli("translate", "--checkpoint", trained, "--input", tmp_path / "in", "--output", "all.png", "--grid")
    assert result.exit_code == 0, result.output
    grid = Image.open(tmp_path / "all.png")
    alone = cli("translate", "--checkpoint", trained, "--input", tmp_path / "in" / "face0.png", "--output", "one.png", "--grid")
    assert alone.exit_code == 0, alone.output
    single = Image.open(tmp_path / "one.png")
    margin = text_pixels("face0") + 4  # the file's name and a pad each side
    assert grid.width == single.width + margin
    header = single.height - 34 - 2
    text = np.asarray(grid.convert("L"))[header:, :margin] < 128
    assert [text[2 + r * 34 : 2 + (r + 1) * 34].any() for r in range(3)] == [True, True, True]
    # the translations themselves are those of one image at a time
    first = np.asarray(grid, dtype=np.int16)[header : header + 36, margin:]
    assert np.abs(first - np.asarray(single, dtype=np.int16)[header:]).max() <= 1


def test_the_python_api_checks_tensors_and_says_when_it_resizes(trained, photo):
    """A tensor in [0, 1], or of 0-255, or of another size than the model's, is the
    mistake a script makes most; a PIL image of another size is resized, and said once."""
    import warnings

    from mdt.errors import MdtError
    from mdt.inference import RangeNotice, ResizeNotice, load_translator

    translator = load_translator(trained, device="cpu")
    good = torch.rand(2, 3, 32, 32) * 2 - 1
    assert translator(good, to={"Blond_Hair": 1}).shape == (2, 3, 32, 32)
    with pytest.raises(MdtError, match=r"images range over \[0, 255\]; this model takes \[-1, 1\]"):
        translator(torch.full((1, 3, 32, 32), 255.0).index_fill_(3, torch.tensor([0]), 0.0), to={"Blond_Hair": 1})
    with pytest.raises(MdtError, match=r"images are 128 x 128 px; this model takes 32 x 32"):
        translator(torch.zeros(1, 3, 128, 128), to={"Blond_Hair": 1})
    with pytest.raises(MdtError, match=r"images are torch.uint8; this model takes floats in \[-1, 1\]"):
        translator(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), to={"Blond_Hair": 1})
    with pytest.warns(RangeNotice, match=r"all in \[0, 1\]"):
        translator(torch.rand(1, 3, 32, 32), to={"Blond_Hair": 1})
    picture = Image.open(photo).convert("RGB")  # 90 x 70: cropped to 70 x 70, resized to 32
    with pytest.warns(ResizeNotice, match="resized to the model's 32 x 32 px"):
        assert translator(picture, to={"Blond_Hair": 1}).size == (32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: the second time is silent
        translator(picture, to={"Blond_Hair": 1})
        load_translator(trained, device="cpu")(picture.crop((0, 0, 32, 32)), to={"Blond_Hair": 1})  # the model's size: nothing to say


def test_the_cli_says_once_that_it_resized(cli, trained, photo):
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "out.png", "--to", "Blond_Hair")
    assert result.exit_code == 0, result.output
    assert result.output.count("note: inputs were centre-cropped and resized to the model's 32 x 32 px") == 1
    assert "ResizeNotice" not in result.output
