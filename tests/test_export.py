"""`mdt export`: the networks a model translates with, run outside mdt (onnxruntime,
torch.jit.load) at another batch size, give mdt's own outputs within 1e-4."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import REPO, install_package
from test_recipe_errors import one_line_error

from mdt import checkpoint as ckpt
from mdt.export import recorded_calls
from mdt.inference import load_translator


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def one_more(example: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The recorded inputs with one more row (a batch size the export never saw)."""
    torch.manual_seed(3)
    grown = []
    for tensor in example:
        extra = tensor[-1:] + 0.1 * torch.randn_like(tensor[-1:]) if tensor.is_floating_point() else tensor[:1]
        grown.append(torch.cat([tensor, extra]))
    return tuple(grown)


def as_list(result) -> list[np.ndarray]:
    return [t.numpy() for t in (result if isinstance(result, (tuple, list)) else (result,))]


def exported_agree(run, folder, fmt: str) -> set[str]:
    translator = load_translator(run, device="cpu")
    networks = translator.components.method.networks()
    checked = set()
    for name, example in recorded_calls(translator).items():
        inputs = one_more(example)
        with torch.no_grad():
            expected = as_list(networks[name].eval()(*inputs))
        if fmt == "onnx":
            session = onnxruntime.InferenceSession(str(folder / f"{name}.onnx"))
            got = session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)})
            about = {p.key: p.value for p in onnx.load(str(folder / f"{name}.onnx")).metadata_props}
        else:
            files = {"mdt.json": ""}
            loaded = torch.jit.load(str(folder / f"{name}.pt"), _extra_files=files)
            with torch.no_grad():
                got = as_list(loaded(*inputs))
            about = json.loads(files["mdt.json"])
        # what a server needs to feed the file: the model's labels and its image size (32 px, as trained or imported)
        assert json.loads(about["mdt.labels"]) == [s.to_json() for s in ckpt.read(ckpt.resolve(run), training=False).schemas]
        assert about["mdt.image_size"] == "32"
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert a.shape == b.shape and a.shape[0] == example[0].shape[0] + 1
            np.testing.assert_allclose(a, b, atol=1e-4, rtol=0, err_msg=name)
        checked.add(name)
    return checked


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_stargan_exports_agree(cli, trained, tmp_path, fmt):
    result = cli("export", "--checkpoint", trained, "--format", fmt, "--out", "exported")
    assert result.exit_code == 0, result.output
    # G translates; D reads an input's labels when they are not given
    assert exported_agree(trained, tmp_path / "exported", fmt) == {"generator", "discriminator"}
    # named as the networks declare them (the quickstart's generator returns its attention mask and colour too)
    if fmt == "onnx":
        names = [o.name for o in onnx.load(str(tmp_path / "exported" / "generator.onnx")).graph.output]
    else:
        files = {"mdt.json": ""}
        torch.jit.load(str(tmp_path / "exported" / "generator.pt"), _extra_files=files)
        names = json.loads(files["mdt.json"])["outputs"]
    assert names == ["image", "mask", "color"]


def test_stargan_v2_exports_its_three_networks(cli, tmp_path):
    from test_import_stargan_v2 import official_file

    path, _ = official_file(tmp_path)
    assert cli("import", "stargan-v2", path, "--out", "imported", "--image-size", "32").exit_code == 0
    result = cli("export", "--checkpoint", "imported", "--format", "onnx", "--out", "exported")
    assert result.exit_code == 0, result.output
    # the moving averages are what StarGAN v2 translates with; the style encoder serves references
    assert exported_agree(tmp_path / "imported", tmp_path / "exported", "onnx") == {
        "generator_ema",
        "mapping_network_ema",
        "style_encoder_ema",
    }
    # inputs named as the generator declares them, without the landmark masks it is given as None
    names = [i.name for i in onnx.load(str(tmp_path / "exported" / "generator_ema.onnx")).graph.input]
    assert names == ["images", "style"]


def test_a_third_party_generator_exports(tmp_path_factory, tmp_path):
    template = REPO / "plugins" / "template"
    env = install_package(template, tmp_path_factory.mktemp("site"))

    def mdt(*args):
        return subprocess.run(
            [sys.executable, "-m", "mdt.cli", *map(str, args)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    assert mdt("run", template / "recipe.toml", "--out", "run", "--set", "run.iterations=2").returncode == 0
    done = mdt("export", "--checkpoint", "run", "--format", "onnx", "--out", "exported")
    assert done.returncode == 0, done.stderr
    script = (
        f"import os, sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from test_export import exported_agree; "
        "os.environ.pop('MDT_DISABLE_PLUGIN_AUTOLOAD'); "  # the test helpers turn autoload off; the plugin needs it
        f"print(sorted(exported_agree({str(tmp_path / 'run')!r}, __import__('pathlib').Path({str(tmp_path / 'exported')!r}), 'onnx')))"
    )
    checked = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "'generator'" in checked.stdout


def test_export_errors_are_one_line(cli, trained):
    assert (
        one_line_error(cli("export", "--checkpoint", trained, "--format", "tflite", "--out", "x"))
        == "error: --format 'tflite': expected one of onnx, torchscript"
    )
    line = one_line_error(cli("export", "--checkpoint", trained, "--format", "onnx", "--out", "g.onnx"))
    assert (
        "is one file, but this model uses 2 networks (discriminator, generator)" in line
        or "is one file, but this model uses 2 networks (generator, discriminator)" in line
    )
    line = one_line_error(cli("export", "--checkpoint", trained, "--format", "torchscript", "--out", "exported/g.onnx"))
    assert "a TorchScript file ends in .pt" in line


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_into_a_folder_it_cannot_write_is_one_line(trained, tmp_path, fmt):
    import re

    from conftest import without_write_permission

    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    done = without_write_permission(["export", "--checkpoint", trained, "--format", fmt, "--out", "ro"], tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-3000:]
    assert re.fullmatch(r"error: cannot use 'ro/(generator|discriminator)\.(pt|onnx)': Permission denied", lines[0]), lines[0]
    assert list((tmp_path / "ro").iterdir()) == []


def test_a_failed_export_changes_no_file(cli, trained, tmp_path):
    (tmp_path / "out" / "generator.pt").mkdir(parents=True)
    (tmp_path / "out" / "discriminator.pt").write_text("old")
    line = one_line_error(cli("export", "--checkpoint", trained, "--format", "torchscript", "--out", "out", "--overwrite"))
    assert line == "error: 'out/generator.pt' is a folder; move it away to export there"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["discriminator.pt", "generator.pt"]
    assert (tmp_path / "out" / "discriminator.pt").read_text() == "old"


def test_the_deploy_guides_onnxruntime_example_gives_mdt_translates_pixels(cli, trained, tmp_path):
    """docs/deploy.md's example, run as written beside an export, against mdt translate
    asked for the same whole label vector; and the contract it reads is in the file."""
    import re

    from conftest import random_image
    from PIL import Image

    assert cli("export", "--checkpoint", trained, "--format", "onnx", "--out", "exported").exit_code == 0
    about = {p.key: p.value for p in onnx.load(str(tmp_path / "exported" / "generator.onnx")).metadata_props}
    schema = ckpt.read(ckpt.resolve(trained), training=False).schemas[0]
    assert json.loads(about["mdt.condition"]) == [f"faces.{name}" for name in schema.names]
    assert "BILINEAR" in about["mdt.resize"] and "[-1, 1]" in about["mdt.input"]
    assert set(json.loads(about["mdt.meanings"])) == {"images", "labels", "image", "mask", "color"}
    (example,) = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "deploy.md").read_text(), re.S)
    random_image(tmp_path / "photo.jpg", 70, 52, 7)  # not square: the crop matters
    done = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    to = "Blond_Hair,Smiling," + ",".join(f"{name}=0" for name in schema.names if name not in ("Blond_Hair", "Smiling"))
    result = cli("translate", "--checkpoint", trained, "--input", "photo.jpg", "--output", "mdt.png", "--to", to)
    assert result.exit_code == 0, result.output
    ours, theirs = (np.asarray(Image.open(tmp_path / name)).astype(int) for name in ("blond.png", "mdt.png"))
    assert ours.shape == theirs.shape == (32, 32, 3)
    assert np.abs(ours - theirs).max() <= 1
