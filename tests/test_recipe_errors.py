"""Every recipe mistake is one line naming the file, table and key, with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

QUICKSTART = (REPO / "recipes" / "quickstart.toml").read_text()


def write(tmp_path: Path, text: str, name: str = "recipe.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("command", [["recipe", "check"], ["run"], ["recipe", "show"]])
def test_misspelt_type_lists_registered_names_closest_first(cli, tmp_path, command):
    path = write(tmp_path, QUICKSTART.replace('type = "multi_hot"', 'type = "multi_hat"'))
    line = one_line_error(cli(*command, path))
    assert str(path) in line and "[labels]" in line
    assert "unknown label_encoder 'multi_hat'" in line
    assert line.index("'multi_hot'") < line.index("'one_hot'")


def test_unknown_key_suggests_the_close_one(cli, tmp_path):
    path = write(tmp_path, QUICKSTART.replace("conv_dim = 32\nresidual_blocks", "conv_dimm = 32\nresidual_blocks"))
    line = one_line_error(cli("recipe", "check", path))
    assert f"{path}: [networks.generator] unknown key 'conv_dimm' (did you mean 'conv_dim'?)" in line


def test_missing_required_key(cli, tmp_path, celeba_root):
    text = (REPO / "recipes" / "stargan_celeba.toml").read_text().replace('root = "data/celeba"\n', "")
    path = write(tmp_path, text)
    line = one_line_error(cli("recipe", "check", path))
    assert f"{path}: [datasets.celeba] missing required key 'root'" in line


def test_value_of_the_wrong_type(cli, tmp_path):
    path = write(tmp_path, QUICKSTART.replace("residual_blocks = 3", 'residual_blocks = "three"'))
    line = one_line_error(cli("recipe", "check", path))
    assert "[networks.generator] key 'residual_blocks' = \"three\": expected an integer" in line


def test_wrong_type_inside_a_list(cli, tmp_path):
    text = (REPO / "recipes" / "stargan_celeba.toml").read_text().replace('"Young"]', "7]")
    line = one_line_error(cli("recipe", "check", write(tmp_path, text)))
    assert "[datasets.celeba] key 'attributes'" in line and "a list whose items are a string" in line


def test_malformed_toml_names_the_line(cli, tmp_path):
    path = write(tmp_path, QUICKSTART.replace("iterations = 2000", "iterations == 2000"))
    line = one_line_error(cli("recipe", "check", path))
    assert f"{path}: malformed TOML" in line and "line 5" in line


def test_recipe_file_that_does_not_exist(cli, tmp_path):
    line = one_line_error(cli("run", tmp_path / "nope.toml"))
    assert "recipe file" in line and "nope.toml' does not exist" in line


def test_set_for_a_key_that_does_not_exist(cli, tmp_path):
    path = write(tmp_path, QUICKSTART)
    line = one_line_error(cli("recipe", "check", path, "--set", "generator.conv_dimm=8"))
    assert "--set generator.conv_dimm:" in line and "(did you mean 'conv_dim'?)" in line


def test_set_for_a_table_that_does_not_exist(cli, tmp_path):
    path = write(tmp_path, QUICKSTART)
    line = one_line_error(cli("recipe", "check", path, "--set", "generatr.conv_dim=8"))
    assert "no table [generatr]" in line and "did you mean 'generator'" in line


def test_set_with_a_value_of_the_wrong_type(cli, tmp_path):
    path = write(tmp_path, QUICKSTART)
    line = one_line_error(cli("recipe", "check", path, "--set", "run.iterations=true"))
    assert "--set run.iterations: key 'iterations' = true: expected an integer" in line


def test_unknown_table(cli, tmp_path):
    path = write(tmp_path, QUICKSTART + "\n[generater]\ntype = 'stargan'\n")
    line = one_line_error(cli("recipe", "check", path))
    assert "unknown table [generater] (did you mean 'generator'?)" in line


def test_injected_value_may_not_be_written(cli, tmp_path):
    path = write(tmp_path, QUICKSTART.replace("conv_dim = 32\nresidual_blocks", "label_dim = 5\nconv_dim = 32\nresidual_blocks"))
    line = one_line_error(cli("recipe", "check", path))
    assert "[networks.generator] key 'label_dim' is set by mdt" in line


def test_debug_shows_the_traceback(tmp_path):
    from click.testing import CliRunner

    from mdt.cli import main
    from mdt.errors import MdtError

    with pytest.raises(MdtError) as caught:
        CliRunner().invoke(main, ["--debug", "run", str(tmp_path / "missing.toml")], catch_exceptions=False)
    assert str(caught.value) == f"recipe file '{tmp_path / 'missing.toml'}' does not exist"  # the error itself, not a wrapper


def test_set_overrides_and_show_resolves_defaults(cli, tmp_path):
    import tomllib

    path = write(tmp_path, QUICKSTART)
    result = cli("recipe", "show", path, "--set", "generator.conv_dim=8", "--set", "run.iterations=7")
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.output)
    assert shown["networks"]["generator"]["conv_dim"] == 8
    assert shown["networks"]["generator"]["downsamplings"] == 2  # a default written out
    assert shown["run"]["iterations"] == 7
    assert "label_dim" not in shown["networks"]["generator"]  # injected values are not recipe keys
    assert "generator" not in shown["method"]  # nor the method's networks


def test_set_reaches_the_judge_of_a_recipe_without_a_classifier_table(cli):
    """[classifier] is optional (the default judge); --set classifier.KEY sets that judge's
    key rather than failing for want of the table."""
    import tomllib

    recipe = REPO / "recipes" / "stargan_rafd.toml"
    assert "[classifier]" not in recipe.read_text()
    result = cli("recipe", "show", recipe, "--set", "classifier.steps=3")
    assert result.exit_code == 0, result.output
    judge = tomllib.loads(result.output)["classifier"]
    assert (judge["type"], judge["steps"]) == ("timm", 3)
    assert "has no table [metrics]" in one_line_error(cli("recipe", "show", recipe, "--set", "metrics.fid.max_images=3"))


def test_set_accepts_a_bare_path(cli, tmp_path, celeba_root):
    path = REPO / "recipes" / "stargan_celeba.toml"
    result = cli("recipe", "show", path, "--set", f"datasets.celeba.root={celeba_root}")
    assert result.exit_code == 0, result.output
    assert str(celeba_root) in result.output


def test_a_misspelt_type_key_is_suggested(cli):
    line = one_line_error(cli("recipe", "check", REPO / "recipes" / "stargan_celeba.toml", "--set", 'losses.adversarial.typ="wgan"'))
    assert line == "error: --set losses.adversarial.typ: unknown key 'typ' (did you mean 'type'?)"


@pytest.mark.parametrize(
    "override,expected",
    [
        ("method.lr_generator=inf", "key 'lr_generator' = inf: expected a finite number greater than 0"),
        ("losses.reconstruction.weight=inf", "key 'weight' = inf: expected a finite number of at least 0"),
        ("losses.reconstruction.weight=nan", "key 'weight' = nan: expected a finite number of at least 0"),
        ("method.beta1=-inf", "key 'beta1' = -inf: expected a finite number of at least 0 and below 1"),
    ],
)
def test_infinite_and_nan_numbers_are_refused_before_the_run(cli, override, expected):
    """TOML can spell inf and nan; an infinite learning rate or weight would only fail mid-run."""
    line = one_line_error(cli("recipe", "check", REPO / "recipes" / "quickstart.toml", "--set", override))
    assert line.endswith(expected), line


def test_paths_tables_and_64_bit_integers_are_checked():
    """Annotations a plugin writes beyond the basic ones: a Path takes a string, a
    dict[str, float] a table of numbers; TOML's integers are 64-bit."""
    from pathlib import Path

    from mdt.signatures import type_problem

    assert type_problem(42, Path | None) == "a path (a string)" and type_problem("w.ckpt", Path | None) is None
    assert type_problem({"a": "x"}, dict[str, float]) == "a table of string keys and number values"
    assert type_problem({"a": 1.5, "b": 2}, dict[str, float]) is None
    assert type_problem(2**63, int) == "an integer (64-bit)" and type_problem(2**63 - 1, int) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        ("99999999999999999999", "key 'conv_dim' = 99999999999999999999: expected an integer (64-bit)"),
        (
            "9223372036854775807",
            "[networks.discriminator] stargan could not be built with these values: "
            "Storage size calculation overflowed with sizes=[9223372036854775807, 3, 4, 4]",
        ),
    ],
)
def test_a_network_too_large_to_build_is_one_line(cli, value, expected):
    line = one_line_error(
        cli(
            "run",
            REPO / "recipes" / "quickstart.toml",
            "--out",
            "run",
            "--set",
            "run.iterations=1",
            "--set",
            f"networks.discriminator.conv_dim={value}",
        )
    )
    assert line.endswith(expected), line


@pytest.mark.parametrize("recipe", ["quickstart.toml", "ganimation_quickstart.toml"])
def test_a_synthetic_dataset_needs_held_out_images(cli, recipe):
    """No held-out image leaves nothing to draw sample grids from or to measure; the check says so."""
    line = one_line_error(cli("recipe", "check", REPO / "recipes" / recipe, "--set", "datasets.faces.test_size=0"))
    assert line.endswith("key 'test_size' = 0: expected an integer of at least 1"), line


def test_diversity_needs_two_samples_to_compare_and_the_check_says_so(cli):
    line = one_line_error(cli("recipe", "check", REPO / "recipes" / "stargan_v2_quickstart.toml", "--set", "metrics.diversity.samples=1"))
    assert line.endswith("key 'samples' = 1: expected an integer of at least 2"), line


def test_a_label_layout_mdt_does_not_know_is_named_as_written():
    """A third party's method and encoder may declare layouts of their own: a mismatch is
    one line naming both, never a KeyError."""
    from mdt.errors import MdtError
    from mdt.labels import LabelEncoder
    from mdt.method import Method as MethodBase
    from mdt.recipe_check import _check_label_layout
    from mdt.recipe_layout import Recipe
    from mdt.registry import Registry

    class Method(MethodBase):
        label_layout = "one_class"

    class Encoder(LabelEncoder):
        label_layout = "ordinal"

    registry = Registry()
    method = registry.add("method", "needs_classes", Method, plugin="theirs")
    registry.add("label_encoder", "ranks", Encoder, plugin="theirs")
    recipe = Recipe("r.toml", {"labels": {"type": "ranks"}})
    with pytest.raises(MdtError) as caught:
        _check_label_layout(recipe, method, registry)
    assert str(caught.value) == (
        "r.toml: [labels] type 'ranks' gives ordinal, but method 'needs_classes' needs one class per image (a one-hot condition)"
    )


def test_a_method_checks_what_its_networks_must_agree_on_with_their_defaults():
    """``Method.networks_problem`` sees every role's network arguments, written or by
    default, and the check names the recipe and the method with its answer."""
    from mdt.errors import MdtError
    from mdt.interfaces import Method, Network
    from mdt.method import Role
    from mdt.recipe_check import _check_networks_together
    from mdt.recipe_layout import Recipe
    from mdt.registry import Registry

    class styled(Network):
        def __init__(self, style_dim: int = 16) -> None:
            super().__init__()

    class plain(Network):
        def __init__(self, width: int = 8) -> None:
            super().__init__()

    seen = []

    class StyledGAN(Method):
        roles = {"generator": Role("generator"), "discriminator": Role("discriminator")}

        @staticmethod
        def networks_problem(arguments):
            seen.append({role: dict(values) for role, values in arguments.items()})
            return "needs a style_dim in its discriminator" if "style_dim" not in arguments["discriminator"] else None

    registry = Registry()
    registry.add("generator", "styled", styled, plugin="theirs")
    registry.add("discriminator", "plain", plain, plugin="theirs")
    method = registry.add("method", "styled_gan", StyledGAN, plugin="theirs")
    recipe = Recipe("r.toml", {"networks": {"generator": {"type": "styled"}, "discriminator": {"type": "plain", "width": 4}}})
    recipe.roles = StyledGAN.roles
    with pytest.raises(MdtError) as caught:
        _check_networks_together(recipe, method, registry)
    assert str(caught.value) == "r.toml: method 'styled_gan' needs a style_dim in its discriminator"
    assert seen == [{"generator": {"style_dim": 16}, "discriminator": {"width": 4}}]


@pytest.mark.parametrize(
    "recipe,overrides,expected",
    [
        # GANimation's generator halves 34 twice to 8 and doubles back to 32: it used to fail at the first step
        (
            "quickstart.toml",
            ["run.image_size=34", "discriminator.layers=1"],
            "[networks.generator] type 'ganimation': [run] image_size 34 must be divisible by 2**downsamplings = 4",
        ),
        (
            "quickstart.toml",
            ["run.image_size=8", "generator.downsamplings=3"],
            "[networks.generator] type 'ganimation': [run] image_size 8 halved 3 times (downsamplings) leaves a 1x1 map; "
            "instance normalisation in training needs at least 2x2",
        ),
        (
            "quickstart.toml",
            ["run.image_size=40"],
            "[networks.discriminator] type 'stargan': [run] image_size 40 must be divisible by 2**layers = 16",
        ),
        (
            "stargan_celeba.toml",
            ["run.image_size=130"],
            "[networks.generator] type 'stargan': [run] image_size 130 must be divisible by 2**downsamplings = 4",
        ),
        (
            "cyclegan_quickstart.toml",
            ["run.image_size=30"],
            "[networks.generator_ab] type 'cyclegan': [run] image_size 30 must be divisible by 2**downsamplings = 4",
        ),
        (
            "cyclegan_quickstart.toml",
            ["run.image_size=8"],
            "[networks.discriminator_a] type 'patchgan': [run] image_size 8 halved 2 times (layers) leaves a 2x2 map; "
            "the last two 4x4 convolutions need at least 3x3",
        ),
    ],
)
def test_an_image_size_a_network_cannot_take_is_refused_before_anything_is_built(cli, recipe, overrides, expected):
    flags = [f for o in overrides for f in ("--set", o)]
    for command in (["recipe", "check"], ["run", "--out", "run"]):
        line = one_line_error(cli(*command, REPO / "recipes" / recipe, *flags))
        assert line.endswith(expected), line
