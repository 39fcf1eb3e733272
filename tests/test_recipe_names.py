"""Recipes installed with mdt run by name from any folder; a recipe may extend one other."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import REPO
from test_recipe_errors import one_line_error

RECIPES = REPO / "recipes"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_every_recipe_of_the_repository_is_listed_by_name_with_what_it_trains(cli):
    result = cli("recipe", "list")
    assert result.exit_code == 0, result.output
    names = sorted(path.stem for path in RECIPES.glob("*.toml"))
    listed = [line.split("│")[1].strip() for line in result.output.splitlines() if line.count("│") == 3]
    assert [name for name in listed if name] == names
    # the opening comment's first sentence; "et al." does not end it
    from mdt.recipe import recipe_summary

    assert (
        recipe_summary((RECIPES / "stargan_celeba.toml").read_text())
        == "StarGAN on CelebA at the paper's settings (Choi et al. 2018, section 4)."
    )
    assert (
        recipe_summary((RECIPES / "quickstart.toml").read_text())
        == "StarGAN on built-in synthetic faces: no download, a few minutes on a laptop CPU."
    )


def test_a_recipe_by_name_is_the_installed_file_from_any_folder(cli, tmp_path):
    by_name = cli("recipe", "show", "quickstart")
    by_file = cli("recipe", "show", RECIPES / "quickstart.toml")
    assert by_name.exit_code == 0, by_name.output
    assert by_name.output == by_file.output
    assert (
        tomllib.loads(by_name.output)["run"]["iterations"] == tomllib.loads((RECIPES / "quickstart.toml").read_text())["run"]["iterations"]
    )


def test_a_file_of_that_name_in_the_folder_comes_before_the_built_in_one(cli, tmp_path):
    text = (RECIPES / "quickstart.toml").read_text().replace("iterations = ", "iterations = 7 # was ", 1)
    write(tmp_path, "quickstart.toml", text)
    shown = tomllib.loads(cli("recipe", "show", "quickstart.toml").output)
    assert shown["run"]["iterations"] == 7


def test_a_misspelt_recipe_name_is_one_line_that_suggests_the_name(cli):
    line = one_line_error(cli("run", "quickstrat"))
    assert "no built-in recipe is named 'quickstrat' (did you mean 'quickstart'?)" in line
    assert "stargan_v2_quickstart" in line  # and lists them


def test_extends_replaces_the_base_key_by_key_and_named_tables_by_name(cli, tmp_path):
    base = tomllib.loads((RECIPES / "quickstart.toml").read_text())
    write(tmp_path, "base.toml", (RECIPES / "quickstart.toml").read_text())
    write(tmp_path, "child.toml", 'extends = "base.toml"\n[run]\niterations = 3\n[losses.reconstruction]\nweight = 4.5\n')
    child = tomllib.loads(cli("recipe", "show", "child.toml").output)
    plain = tomllib.loads(cli("recipe", "show", "base.toml").output)
    assert child["run"]["iterations"] == 3
    assert child["run"]["batch_size"] == base["run"]["batch_size"]  # the rest of [run] is the base's
    assert child["losses"]["reconstruction"]["weight"] == 4.5
    assert child["losses"]["reconstruction"]["type"] == base["losses"]["reconstruction"]["type"]
    # everything the child does not name is exactly the base
    for data in (child, plain):
        data["run"].pop("iterations")
        data["losses"]["reconstruction"].pop("weight")
    assert child == plain


def test_extends_a_built_in_recipe_by_name(cli, tmp_path):
    write(tmp_path, "mine.toml", 'extends = "quickstart"\n[run]\nbatch_size = 5\n')
    mine = tomllib.loads(cli("recipe", "show", "mine.toml").output)
    quickstart = tomllib.loads(cli("recipe", "show", "quickstart").output)
    assert mine["run"].pop("batch_size") == 5
    quickstart["run"].pop("batch_size")
    assert mine == quickstart


def test_the_built_in_recipes_that_extend_resolve_as_wholes(cli):
    """stargan_plus_celeba and stargan_celeba_rafd extend stargan_celeba: the paper's
    sizes and data are the base's, their own tables are theirs."""
    base = tomllib.loads((RECIPES / "stargan_celeba.toml").read_text())
    plus = tomllib.loads(cli("recipe", "show", "stargan_plus_celeba").output)
    both = tomllib.loads(cli("recipe", "show", "stargan_celeba_rafd").output)
    for resolved in (plus, both):
        assert resolved["run"]["image_size"] == base["run"]["image_size"] == 128
        assert resolved["datasets"]["celeba"]["attributes"] == base["datasets"]["celeba"]["attributes"]
    assert set(both["datasets"]) == {"celeba", "rafd"}
    assert both["labels"]["type"] == "mask_vector"


def test_without_removes_a_named_table_of_the_base(cli, tmp_path):
    """A recipe for other data: the base's dataset goes, the recipe's own comes in; the
    rest is the base's."""
    child = 'extends = "quickstart"\nwithout = ["datasets.faces", "losses.reconstruction"]\n[datasets.more]\ntype = "synthetic_faces"\nsize = 40\n'
    write(tmp_path, "child.toml", child)
    mine = tomllib.loads(cli("recipe", "show", "child.toml").output)
    quickstart = tomllib.loads(cli("recipe", "show", "quickstart").output)
    assert set(mine["datasets"]) == {"more"} and mine["datasets"]["more"]["size"] == 40
    assert "reconstruction" in quickstart["losses"] and "reconstruction" not in mine["losses"]
    for data in (mine, quickstart):
        data.pop("datasets")
        data["losses"].pop("reconstruction", None)
    assert mine == quickstart


def test_the_paper_recipes_for_other_data_extend_and_resolve_to_their_whole_recipes(cli):
    """stargan_rafd extends stargan_celeba, stargan_v2_celeba_hq extends stargan_v2_afhq:
    the paper's settings are the base's, the data and what the paper changes are theirs."""
    rafd = tomllib.loads(cli("recipe", "show", "stargan_rafd").output)
    celeba = tomllib.loads(cli("recipe", "show", "stargan_celeba").output)
    assert set(rafd["datasets"]) == {"rafd"} and rafd["datasets"]["rafd"]["crop_size"] == 256
    assert rafd["labels"]["type"] == "one_hot" and celeba["labels"]["type"] == "multi_hot"
    assert {k: v for k, v in rafd.items() if k not in ("datasets", "labels")} == {
        k: v for k, v in celeba.items() if k not in ("datasets", "labels")
    }
    hq = tomllib.loads(cli("recipe", "show", "stargan_v2_celeba_hq").output)
    afhq = tomllib.loads(cli("recipe", "show", "stargan_v2_afhq").output)
    assert set(hq["datasets"]) == {"celeba_hq"} and hq["datasets"]["celeba_hq"]["domains"] == ["female", "male"]
    assert hq["networks"]["generator"]["high_pass"] == 1.0 and afhq["networks"]["generator"]["high_pass"] == 0.0
    assert hq["losses"]["diversity"]["weight"] == 1.0 and afhq["losses"]["diversity"]["weight"] == 2.0
    assert hq["method"]["landmark_weights"] == "data/wing.ckpt"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("extends = 3\n", "extends = 3: give a built-in recipe's name or a recipe file's path"),
        ('without = ["datasets.faces"]\n', 'without = ["datasets.faces"] removes tables of the recipe it extends: give extends too'),
        (
            'extends = "quickstart"\nwithout = "datasets.faces"\n',
            'without = "datasets.faces": give a list of tables, such as ["datasets.faces"]',
        ),
        ('extends = "quickstart"\nwithout = ["datasets.celeba"]\n', "without: 'quickstart' has no [datasets.celeba]; its datasets: faces"),
        (
            'extends = "quickstart"\nwithout = ["run"]\n',
            "without: 'run' is not a named table; give SECTION.NAME of a section that holds several (datasets, networks, losses, metrics, loggers)",
        ),
        ('extends = "middle.toml"\n', "extends 'middle.toml', which extends 'quickstart' itself"),
        ('extends = "quickstrat"\n', "no built-in recipe is named 'quickstrat' (did you mean 'quickstart'?)"),
        ('extends = "nowhere.toml"\n', "nowhere.toml' does not exist"),
    ],
)
def test_extends_mistakes_are_one_line(cli, tmp_path, text, expected):
    write(tmp_path, "middle.toml", 'extends = "quickstart"\n')
    path = write(tmp_path, "child.toml", text)
    line = one_line_error(cli("recipe", "check", path))
    assert expected in line, line


def test_set_type_adds_a_logger_the_recipe_lacks(cli):
    shown = tomllib.loads(cli("recipe", "show", "quickstart", "--set", "loggers.csv.type=csv").output)
    assert shown["loggers"]["csv"]["type"] == "csv"
    line = one_line_error(cli("recipe", "check", "quickstart", "--set", "loggers.csv.type=cvs"))
    assert "unknown logger 'cvs'; registered loggers, closest first: 'csv'" in line
