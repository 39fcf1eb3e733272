"""Inputs an adversarial review of translate, export, save-pretrained and align tried:
each is refused in one line with exit code 2, and nothing is left half-written; images
that can be read are read as a person would see them."""

from __future__ import annotations

import json
import os
import re
import struct
import zlib

import numpy as np
import pytest
from conftest import random_image, text_pixels
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file
from test_recipe_errors import one_line_error

from mdt.errors import MdtError
from mdt.images import read_rgb
from mdt.options import Option


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def newest_checkpoint(run):
    return sorted((run / "checkpoints").glob("step_*.safetensors"))[-1]


def with_metadata(source, target, **changes):
    """A copy of the checkpoint ``source`` whose header metadata has ``changes``."""
    with safe_open(str(source), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
    save_file(tensors, str(target), metadata={**metadata, **changes})
    return target


def png_claiming(width: int, height: int, path):
    """A PNG whose header claims ``width`` x ``height`` pixels (and holds none)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("command", ["translate", "export", "save-pretrained", "align"])
def test_an_output_under_a_file_is_one_line(cli, trained, tmp_path, command):
    (tmp_path / "afile").write_text("keep me")
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    args = {
        "translate": ["translate", "--checkpoint", trained, "--input", photo, "--output", "afile/x.png", "--to", "Blond_Hair"],
        "export": ["export", "--checkpoint", trained, "--format", "torchscript", "--out", "afile/models"],
        "save-pretrained": ["save-pretrained", trained, "afile/model"],
        "align": ["align", photo, "afile/x.png", "--checkpoint", trained],
    }[command]
    line = one_line_error(cli(*args))
    assert "afile" in line and "where a folder is needed" in line
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_folder_the_system_refuses_is_one_line(cli, trained, tmp_path, monkeypatch):
    import mdt_datasets.image_modality

    def refused(image, path, replace=True):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mdt_datasets.image_modality, "save_png", refused)  # the image modality writes outputs
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    line = one_line_error(cli("translate", "--checkpoint", trained, "--input", photo, "--output", "locked/x.png", "--to", "Blond_Hair"))
    assert line == "error: cannot use 'locked/x.png': Permission denied"


def test_a_folder_that_exists_where_a_new_one_is_made(tmp_path):
    from mdt.errors import os_error_line

    assert os_error_line(FileExistsError(17, "File exists", str(tmp_path))) == f"'{tmp_path}' already exists"
    assert os_error_line(OSError(28, "No space left on device")) == "cannot use a file: No space left on device"


def test_a_header_claiming_billions_of_pixels_is_a_bad_file(cli, trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_image(folder / "a.png", 64, 64, seed=1)
    png_claiming(60000, 60000, folder / "b.png")
    line = one_line_error(
        cli("translate", "--checkpoint", trained, "--input", folder / "b.png", "--output", "b_out.png", "--to", "Blond_Hair")
    )
    assert "cannot read image" in line and "b.png" in line
    result = cli("translate", "--checkpoint", trained, "--input", folder, "--output", "out", "--to", "Blond_Hair", "--skip-bad-files")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]


@pytest.mark.parametrize("field,value", [("schemas", "{broken"), ("schemas", '[{"x": 1}]'), ("step", "abc"), ("streams", "[1,")])
def test_a_damaged_checkpoint_header_names_the_field(cli, trained, tmp_path, field, value):
    damaged = with_metadata(newest_checkpoint(trained), tmp_path / "damaged.safetensors", **{field: value})
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    line = one_line_error(cli("translate", "--checkpoint", damaged, "--input", photo, "--output", "o.png", "--to", "Blond_Hair"))
    assert f"'{field}' metadata is damaged" in line and "damaged.safetensors" in line
    line = one_line_error(cli("save-pretrained", damaged, "model"))
    assert f"'{field}' metadata is damaged" in line
    assert not (tmp_path / "model").exists()


def test_save_pretrained_writes_nothing_when_the_metrics_are_damaged(cli, trained, tmp_path):
    import shutil

    run = shutil.copytree(trained, tmp_path / "run")
    (run / "metrics.json").write_text("{broken")
    line = one_line_error(cli("save-pretrained", run, "model"))
    assert "metrics.json" in line and "not valid JSON" in line
    assert not (tmp_path / "model").exists()
    (run / "metrics.json").write_text("[1, 2]")
    assert "should hold an object" in one_line_error(cli("save-pretrained", run, "model"))
    assert not (tmp_path / "model").exists()


def test_a_model_folder_is_readable_by_others(cli, trained, tmp_path):
    old = os.umask(0o022)
    try:
        assert cli("save-pretrained", trained, "model").exit_code == 0
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "model" / "model.safetensors").st_mode & 0o777 == 0o644


def test_export_replaces_files_only_when_asked(cli, trained, tmp_path):
    args = ["export", "--checkpoint", trained, "--format", "torchscript", "--out", "models"]
    assert cli(*args).exit_code == 0
    written = sorted((tmp_path / "models").iterdir())
    before = {p: p.stat().st_mtime_ns for p in written}
    line = one_line_error(cli(*args))
    assert "exists; pass --overwrite" in line and str(written[0].name) in line
    assert {p: p.stat().st_mtime_ns for p in written} == before
    for path in written:  # stale files where the new ones go: --overwrite must really replace them
        path.write_bytes(b"stale")
    assert cli(*args, "--overwrite").exit_code == 0
    assert sorted((tmp_path / "models").iterdir()) == written
    from test_export import exported_agree

    assert exported_agree(trained, tmp_path / "models", "torchscript") == {"generator", "discriminator"}  # the model's own outputs


@pytest.mark.parametrize("grid", [False, True])
def test_two_inputs_with_one_name_would_overwrite_each_other(cli, trained, tmp_path, grid):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_image(folder / "a.png", 64, 64, seed=1)
    random_image(folder / "a.jpg", 64, 64, seed=2)
    line = one_line_error(
        cli("translate", "--checkpoint", trained, "--input", folder, "--output", "out", *(["--grid"] if grid else ["--to", "Blond_Hair"]))
    )
    assert "a.jpg" in line and "a.png" in line and "would both be written" in line
    assert not (tmp_path / "out").exists()


def test_align_refuses_two_inputs_with_one_name(cli, trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    random_image(folder / "a.png", 64, 64, seed=1)
    random_image(folder / "a.jpg", 64, 64, seed=2)
    assert "would both be written" in one_line_error(cli("align", folder, "aligned", "--checkpoint", trained))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_option_refuses_what_is_not_a_finite_number(value):
    strength = Option("strength", "float", "how far to go", default=1.0, minimum=0.0, maximum=1.0)
    with pytest.raises(MdtError, match="must be a finite number"):
        strength.check(value)
    with pytest.raises(MdtError, match="must be a finite number"):
        Option("offset", "float", "unbounded").parse(str(value))


def test_an_integer_option_fits_in_64_bits():
    seed = Option("seed", "int", "a style's seed", default=0, minimum=0)
    assert seed.parse(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(MdtError, match="too large"):
        seed.parse("99999999999999999999")


def test_a_phone_photo_is_read_upright(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: shown rotated 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100, subsampling=0)
    stored = np.asarray(Image.open(tmp_path / "phone.jpg").convert("RGB")).astype(int)
    upright = np.asarray(read_rgb(tmp_path / "phone.jpg")).astype(int)
    assert upright.shape == (30, 20, 3)
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    grey = np.array([[0, 0x8000, 0xFFFF, 0x0100]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    rgb = np.asarray(read_rgb(tmp_path / "deep.png"))
    assert rgb[0, :, 0].tolist() == [0, 128, 255, 1] and (rgb[..., 0] == rgb[..., 2]).all()


def test_the_bad_header_json_is_rejected_before_anything_is_built(tmp_path, trained):
    from mdt import checkpoint as ckpt

    damaged = with_metadata(newest_checkpoint(trained), tmp_path / "d.safetensors", optimizers=json.dumps({"g": 1})[:-1])
    with pytest.raises(MdtError, match="'optimizers' metadata is damaged"):
        ckpt.read(damaged, training=False)


@pytest.mark.parametrize(
    "args,expected",
    [
        (["translate", "--crop", "abc"], "Invalid value for '--crop': 'abc' is not a valid integer (mdt translate --help)"),
        (["translate", "--batch-size"], "Option '--batch-size' requires an argument (mdt"),
        (["export", "--format", "onnx"], "Missing option '--checkpoint' (mdt export --help)"),
        (["tranlsate"], "No such command 'tranlsate'"),
    ],
)
def test_a_flag_click_cannot_read_is_one_line(cli, args, expected):
    assert expected in one_line_error(cli(*args))


def a_folder_with_a_bad_file(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, seed in (("a", 1), ("c", 3)):
        random_image(folder / f"{name}.png", 64, 64, seed=seed)
    (folder / "b.png").write_text("not an image")
    return folder


def test_grids_stop_at_a_bad_file_or_skip_it_when_asked(cli, trained, tmp_path):
    folder = a_folder_with_a_bad_file(tmp_path)
    stopped = cli("translate", "--checkpoint", trained, "--input", folder, "--output", "grids", "--grid")
    line = stopped.output.splitlines()[-1]
    assert stopped.exit_code == 2 and "Traceback" not in stopped.output
    assert line.startswith("error: ") and "b.png" in line and "1 output written before it" in line
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["a.png"]
    result = cli("translate", "--checkpoint", trained, "--input", folder, "--output", "all.png", "--grid", "--skip-bad-files")
    assert result.exit_code == 0 and "skipped: cannot read image" in result.output and "b.png" in result.output
    rows = Image.open(tmp_path / "all.png").height
    one = cli("translate", "--checkpoint", trained, "--input", folder / "a.png", "--output", "one.png", "--grid")
    assert one.exit_code == 0
    assert rows > Image.open(tmp_path / "one.png").height  # the two readable inputs, not one
    # Exactly: a header of two-line titles ("Black" over "Hair"), then two rows of 32 px
    # cells 2 px apart; a margin names each row's file ("a", "c").
    assert rows == 24 + 2 * 34 + 2 and Image.open(tmp_path / "one.png").height == 24 + 34 + 2
    margin = max(text_pixels("a"), text_pixels("c")) + 4
    # Each row is the grid of its file alone (the margin aside; 8-bit rounding of another batch).
    assert cli("translate", "--checkpoint", trained, "--input", folder / "c.png", "--output", "other.png", "--grid").exit_code == 0
    pixels = {name: np.asarray(Image.open(tmp_path / name).convert("RGB"), dtype=np.int16) for name in ("all.png", "one.png", "other.png")}
    first, last = pixels["all.png"][: 24 + 34 + 2, margin:], pixels["all.png"][24 + 34 :, margin:]  # header and a's row; c's row
    assert first.shape == pixels["one.png"].shape and np.abs(first - pixels["one.png"]).max() <= 1
    assert last.shape == pixels["other.png"][24:].shape and np.abs(last - pixels["other.png"][24:]).max() <= 1


def test_align_stops_at_a_bad_file_or_skips_it_when_asked(cli, trained, tmp_path):
    folder = a_folder_with_a_bad_file(tmp_path)
    line = one_line_error(cli("align", folder, "aligned", "--checkpoint", trained))
    assert "b.png" in line and "1 output written before it" in line
    result = cli("align", folder, "aligned", "--checkpoint", trained, "--skip-bad-files", "--overwrite")
    assert result.exit_code == 0 and "skipped 1 unreadable" in result.output
    assert sorted(p.name for p in (tmp_path / "aligned").iterdir()) == ["a.png", "c.png"]


@pytest.mark.parametrize(
    "changes,expected",
    [
        ({"format": "mdt-checkpoint-9"}, "in format 'mdt-checkpoint-9', newer than this mdt reads"),
        ({"content": "gallery"}, "holds 'gallery', which this mdt cannot read"),
    ],
)
def test_a_checkpoint_from_a_newer_mdt_says_so(cli, trained, tmp_path, changes, expected):
    newer = with_metadata(newest_checkpoint(trained), tmp_path / "newer.safetensors", **changes)
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    assert expected in one_line_error(cli("translate", "--checkpoint", newer, "--input", photo, "--output", "o.png", "--to", "Blond_Hair"))


@pytest.mark.parametrize("command", ["translate", "eval"])
def test_a_recipe_edited_to_absurd_sizes_is_refused_before_its_networks_are_built(cli, trained, tmp_path, command):
    """A shared checkpoint whose embedded recipe asks for a far wider generator than its
    weights: one line naming a tensor's two shapes, found on torch's meta device, before
    the terabytes that generator would take are asked for."""
    source = newest_checkpoint(trained)
    with safe_open(str(source), framework="pt") as f:
        recipe = f.metadata()["recipe"]
    generator = re.search(r"(?ms)^\[networks\.generator\]\n.*?(?=^\[|\Z)", recipe)
    wider = generator.group(0).replace("conv_dim = 8", "conv_dim = 100000")
    assert wider != generator.group(0)
    edited = with_metadata(source, tmp_path / "edited.safetensors", recipe=recipe.replace(generator.group(0), wider))
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    args = ["--input", photo, "--output", "o.png", "--to", "Blond_Hair"] if command == "translate" else ["--out", "report"]
    line = one_line_error(cli(command, "--checkpoint", edited, *args))
    assert "edited.safetensors: generator tensor" in line and re.search(
        r"in the checkpoint but \([\d, ]*100000[\d, ]*\) in the recipe", line
    )


def test_a_folder_named_like_a_checkpoint_is_not_one(cli, trained, tmp_path):
    import shutil

    run = shutil.copytree(trained, tmp_path / "run")
    (run / "checkpoints" / "step_99999999.safetensors").mkdir()
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    result = cli("translate", "--checkpoint", run, "--input", photo, "--output", "o.png", "--to", "Blond_Hair")
    assert result.exit_code == 0, result.output
    # Translated by the newest real checkpoint file, named as such.
    from mdt.inference import load_translator

    expected = load_translator(run / "checkpoints" / "step_00000002.safetensors", device="cpu")(Image.open(photo), to={"Blond_Hair": 1})
    assert Image.open(tmp_path / "o.png").convert("RGB").tobytes() == expected.tobytes()


def test_a_pickled_object_is_refused_without_advice_to_unpickle_it(tmp_path):
    from fractions import Fraction

    import torch

    from mdt.foreign import load_foreign

    torch.save({"weights": torch.zeros(2), "note": Fraction(1, 2)}, tmp_path / "wing.ckpt")
    with pytest.raises(MdtError) as caught:
        load_foreign(tmp_path / "wing.ckpt", "landmark weights")
    assert "pickled objects besides tensors, which mdt never unpickles" in str(caught.value)
    assert "weights_only=False" not in str(caught.value)


def test_an_unknown_name_lists_the_kinds_components_in_plural(registry):
    with pytest.raises(MdtError, match="unknown landmarks 'wing'; registered landmarks, closest first"):
        registry.get("landmarks", "wing")
    with pytest.raises(MdtError, match="registered losses, closest first"):
        registry.get("loss", "wgam")


def test_torchscript_export_says_nothing_of_torch_jit_deprecation(cli, trained):
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cli("export", "--checkpoint", trained, "--format", "torchscript", "--out", "models").exit_code == 0
    assert not [w for w in seen if issubclass(w.category, FutureWarning)]


def test_a_broken_link_is_a_bad_file_and_all_bad_is_an_error(cli, trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    line = one_line_error(cli("translate", "--checkpoint", trained, "--input", folder, "--output", "out", "--to", "Blond_Hair"))
    assert "gone.png" in line and "0 outputs written before it" in line
    for command in (
        ["translate", "--checkpoint", trained, "--input", folder, "--output", "out", "--to", "Blond_Hair"],
        ["translate", "--checkpoint", trained, "--input", folder, "--output", "out", "--grid"],
        ["align", folder, "out", "--checkpoint", trained],
    ):
        result = cli(*command, "--skip-bad-files")
        assert result.exit_code == 2 and result.output.splitlines()[-1].startswith("error: nothing ")
        assert "all 2 inputs" in result.output.splitlines()[-1] and not (tmp_path / "out").exists()


def test_a_device_that_is_not_one_is_named_as_the_command_spells_it(cli, trained, tmp_path):
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    line = one_line_error(
        cli("translate", "--checkpoint", trained, "--input", photo, "--output", "o.png", "--to", "Blond_Hair", "--device", "banana")
    )
    assert line == "error: device = 'banana' is not a device; use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu' or 'xpu:N'"


def test_one_grid_of_a_folder_goes_through_in_batches(cli, trained, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        random_image(folder / f"p{i}.png", 64, 64, seed=i)
    for size in (16, 2):
        assert (
            cli(
                "translate", "--checkpoint", trained, "--input", folder, "--output", f"all{size}.png", "--grid", "--batch-size", size
            ).exit_code
            == 0
        )
    chunked, whole = (np.asarray(Image.open(tmp_path / f"all{size}.png"), dtype=np.int16) for size in (2, 16))
    assert chunked.shape == whole.shape and np.abs(chunked - whole).max() <= 1  # 8-bit rounding of another batch size
