"""A third-party plugin package, installed for real, trains with no change to mdt."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO, install_package

TEMPLATE = REPO / "plugins" / "template"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    return install_package(TEMPLATE, tmp_path_factory.mktemp("site"))


def mdt(env, *args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "mdt.cli", *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def template_run(installed, tmp_path_factory):
    """The template's recipe trained by the installed plugin: (its folder, mdt's output)."""
    where = tmp_path_factory.mktemp("template-run")
    return where / "run", mdt(installed, "run", TEMPLATE / "recipe.toml", "--out", "run", cwd=where)


def test_template_plugin_is_found_and_trains(installed, template_run, tmp_path):
    listed = mdt(installed, "plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "tiny_unet" in listed.stdout and "mdt-tiny-unet" in listed.stdout

    run_dir, run = template_run
    assert run.returncode == 0, run.stderr
    from mdt import checkpoint

    saved = checkpoint.read(run_dir / "checkpoints" / "step_00000020.safetensors")
    assert any(name.startswith("generator/down1.") for name in saved.tensors)
    assert 'type = "tiny_unet"' in saved.recipe_text


def test_a_model_says_which_plugin_package_it_needs(installed, template_run, tmp_path):
    """Its checkpoint records the third-party components; where the package is missing,
    translating names it, and the model card says to install it."""
    from mdt import checkpoint

    run_dir, _ = template_run
    saved = checkpoint.read(run_dir / "checkpoints" / "step_00000020.safetensors", training=False)
    assert saved.plugins == [
        {"kind": "generator", "name": "tiny_unet", "plugin": "tiny_unet", "distribution": "mdt-tiny-unet", "version": "0.1.0"}
    ]
    without = dict(installed, MDT_DISABLE_PLUGIN_AUTOLOAD="1")
    picture = tmp_path / "in.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (120, 80, 60)).save(picture)
    result = mdt(without, "translate", "--checkpoint", run_dir, "--input", picture, "--output", "out.png", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.strip().endswith(
        "it was made with generator 'tiny_unet' of plugin 'tiny_unet' (mdt-tiny-unet 0.1.0), "
        "which is not installed here: pip install mdt-tiny-unet"
    )
    assert not (tmp_path / "out.png").exists()
    shared = mdt(installed, "save-pretrained", run_dir, "model", cwd=tmp_path)
    assert shared.returncode == 0, shared.stderr
    card = (tmp_path / "model" / "README.md").read_text()
    assert "generator `tiny_unet` (mdt-tiny-unet 0.1.0)" in card and "pip install mdt-translate mdt-tiny-unet" in card
    assert checkpoint.read(tmp_path / "model" / "model.safetensors", training=False).plugins == saved.plugins
    # Without the package the model folder is still written; its card's example command
    # cannot name the model's own options, and save-pretrained says so and why.
    shared = mdt(without, "save-pretrained", run_dir, "elsewhere", cwd=tmp_path)
    assert shared.returncode == 0, shared.stderr
    note = next(line for line in (shared.stdout + shared.stderr).splitlines() if "example names no model options" in line)
    assert note.startswith("note: the card's example names no model options: the model cannot be loaded here (") and note.endswith(
        "which is not installed here: pip install mdt-tiny-unet)"
    ), note
    assert "pip install mdt-translate mdt-tiny-unet" in (tmp_path / "elsewhere" / "README.md").read_text()


def test_the_template_gives_its_width_a_range(installed, tmp_path):
    """As the guide says: a width of 0 is refused by the check, naming the key and the range."""
    result = mdt(installed, "recipe", "check", TEMPLATE / "recipe.toml", "--set", "networks.generator.width=0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "width" in result.stderr and "0" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.strip() == "error: --set networks.generator.width: key 'width' = 0: expected an integer of at least 1"


def test_autoload_switch_leaves_third_party_plugins_out(installed, tmp_path):
    env = dict(installed, MDT_DISABLE_PLUGIN_AUTOLOAD="1")
    result = mdt(env, "recipe", "check", TEMPLATE / "recipe.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown generator 'tiny_unet'" in result.stderr and "'stargan'" in result.stderr
