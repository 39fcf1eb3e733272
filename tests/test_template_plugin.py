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
    return subprocess.run([sys.executable, "-m", "mdt.cli", *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)


def test_template_plugin_is_found_and_trains(installed, tmp_path):
    listed = mdt(installed, "plugins", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "tiny_unet" in listed.stdout and "mdt-tiny-unet" in listed.stdout

    run = mdt(installed, "run", TEMPLATE / "recipe.toml", "--out", "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    from mdt import checkpoint

    saved = checkpoint.read(tmp_path / "run" / "checkpoints" / "step_00000020.safetensors")
    assert any(name.startswith("generator/down1.") for name in saved.tensors)
    assert 'type = "tiny_unet"' in saved.recipe_text


def test_the_template_gives_its_width_a_range(installed, tmp_path):
    """As the guide says: a width of 0 is refused by the check, naming the key and the range."""
    result = mdt(installed, "recipe", "check", TEMPLATE / "recipe.toml", "--set", "networks.generator.width=0", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "width" in result.stderr and "0" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_autoload_switch_leaves_third_party_plugins_out(installed, tmp_path):
    env = dict(installed, MDT_DISABLE_PLUGIN_AUTOLOAD="1")
    result = mdt(env, "recipe", "check", TEMPLATE / "recipe.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown generator 'tiny_unet'" in result.stderr and "'stargan'" in result.stderr
