"""Model folders to share (Hub layout): the same translations as the run, a model card
that says what the model is, what it scored and under which licence."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import REPO, random_image
from safetensors import safe_open
from test_recipe_errors import one_line_error

from mdt import checkpoint as ckpt


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def test_a_model_folder_translates_as_the_run_does(cli, trained, tmp_path):
    result = cli("save-pretrained", trained, "shared", "--license", "mit")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "shared"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "labels.json",
        "metrics.json",
        "model.safetensors",
        "recipe.toml",
        "sample.png",
    ]
    with safe_open(folder / "model.safetensors", "pt") as f:
        keys = list(f.keys())
    assert keys and not any(k.startswith(ckpt.TRAINING_PREFIXES) for k in keys)  # weights only: no optimizer, no random state
    photo = random_image(tmp_path / "face.png", 60, 50, 4)
    for checkpoint, output in ((trained, "from_run.png"), (folder, "from_folder.png")):
        result = cli("translate", "--checkpoint", checkpoint, "--input", photo, "--output", output, "--to", "Blond_Hair")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "from_run.png").read_bytes() == (tmp_path / "from_folder.png").read_bytes()


def test_the_model_card_names_the_licence_labels_and_metrics(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "shared", "--license", "cc-by-nc-4.0").exit_code == 0
    text = (tmp_path / "shared" / "README.md").read_text()
    _, front, body = text.split("---\n", 2)
    card = yaml.safe_load(front)
    measured = json.loads((trained / "metrics.json").read_text())
    assert card["library_name"] == "mdt" and card["license"] == "cc-by-nc-4.0"
    assert card["labels"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Glasses", "Smiling"]
    assert card["datasets"] == ["synthetic_faces"]
    values = {m["name"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert values["accuracy/target_accuracy"] == pytest.approx(measured["accuracy/target_accuracy"], abs=1e-6)
    types = {m["name"]: m["type"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert types["accuracy/target_accuracy"] == "accuracy" and types["accuracy/real_error"] == "error"  # not an accuracy of 1.0
    assert "Licence: cc-by-nc-4.0." in body and "| accuracy/target_accuracy |" in body and "![samples" in body
    assert "mdt translate --checkpoint shared" in body


def test_a_model_folder_is_not_written_over(cli, trained, tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    line = one_line_error(cli("save-pretrained", trained, "taken"))
    assert line == "error: 'taken' already holds files; pass --overwrite to replace them, or choose another folder"
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]


def test_an_hf_location_reads_the_model_folder_from_the_hub_cache(cli, trained, tmp_path, monkeypatch):
    """The cache is written here in huggingface_hub's own layout; nothing is downloaded."""
    assert cli("save-pretrained", trained, "shared", "--license", "mit").exit_code == 0
    cache, commit = tmp_path / "hub-cache", "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--someone--quickstart" / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in (tmp_path / "shared").iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (cache / "models--someone--quickstart" / "refs").mkdir()
    (cache / "models--someone--quickstart" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    photo = random_image(tmp_path / "face.png", 60, 50, 4)
    for checkpoint, output in (("shared", "local.png"), ("hf://someone/quickstart", "hub.png")):
        result = cli("translate", "--checkpoint", checkpoint, "--input", photo, "--output", output, "--to", "Blond_Hair")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "local.png").read_bytes() == (tmp_path / "hub.png").read_bytes()
    line = one_line_error(
        cli("translate", "--checkpoint", "hf://someone/elsewhere", "--input", photo, "--output", "x.png", "--to", "Blond_Hair")
    )
    assert line == (
        "error: 'hf://someone/elsewhere' is not in the Hugging Face cache and cannot be downloaded now "
        "(HF_HUB_OFFLINE is set, or there is no network)"
    )


def test_imported_official_weights_carry_their_upstream_licence(cli, tmp_path):
    """StarGAN v2's published weights are CC BY-NC 4.0: a model folder of them must say so."""
    from test_import_stargan_v2 import official_file

    path, _ = official_file(tmp_path)
    assert cli("import", "stargan-v2", path, "--out", "imported", "--image-size", "32").exit_code == 0
    assert cli("save-pretrained", "imported", "shared").exit_code == 0
    text = (tmp_path / "shared" / "README.md").read_text()
    assert yaml.safe_load(text.split("---\n")[1])["license"] == "cc-by-nc-4.0"
    assert "imported from official StarGAN v2: 100000_nets_ema.ckpt" in text
    assert ckpt.read(tmp_path / "shared" / "model.safetensors").licence == "cc-by-nc-4.0"


def test_a_run_of_ones_own_says_its_licence_is_not_stated_unless_given(cli, trained, tmp_path):
    """The Hub's form for a licence not in its list is "other" with a license_name; a card
    saved without --license says the licence was not stated, and the command says so."""
    result = cli("save-pretrained", trained, "shared")
    assert result.exit_code == 0 and "note: no --license given" in result.output
    text = (tmp_path / "shared" / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert (front["license"], front["license_name"]) == ("other", "not-stated")
    assert "Licence: not stated by whoever saved the model" in text
    assert ckpt.read(tmp_path / "shared" / "model.safetensors").licence == ""  # nothing recorded as if chosen
    result = cli("save-pretrained", "shared", "mit", "--license", "MIT")  # stated later: no "imported under" note
    assert result.exit_code == 0 and "note" not in result.output, result.output
    assert yaml.safe_load((tmp_path / "mit" / "README.md").read_text().split("---\n")[1])["license"] == "mit"
    assert "license_name" not in (tmp_path / "mit" / "README.md").read_text()


def test_licence_other_asks_for_its_name_and_link(cli, trained, tmp_path):
    result = cli("save-pretrained", trained, "shared", "--license", "other")
    assert result.exit_code == 0 and "add license_name" in result.output and "license_link" in result.output
    front = yaml.safe_load((tmp_path / "shared" / "README.md").read_text().split("---\n")[1])
    assert front["license"] == "other"


def test_eval_of_a_hub_model_asks_for_a_report_folder(cli):
    line = one_line_error(cli("eval", "--checkpoint", "hf://someone/quickstart"))
    assert line == "error: give --out for 'hf://someone/quickstart': its folder is huggingface_hub's cache, not a place for a report"


@pytest.mark.parametrize("location", ["hf://just-a-name", "hf://"])
def test_a_malformed_hub_location_is_one_line(cli, location):
    line = one_line_error(cli("checkpoint", "info", location))
    assert line == f"error: '{location}': expected hf://OWNER/NAME[@REVISION]"


def test_importers_write_a_model_folder_in_one_command(cli, tmp_path):
    """--model-folder alone: no run folder is left behind, and the folder translates exactly
    as the run an import with --out gives."""
    from test_import_stargan_v2 import official_file

    path, _ = official_file(tmp_path)
    result = cli("import", "stargan-v2", path, "--model-folder", "shared", "--image-size", "32")
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == ["shared"]  # no run folder left behind
    card = (tmp_path / "shared" / "README.md").read_text()
    assert yaml.safe_load(card.split("---\n")[1])["license"] == "cc-by-nc-4.0"
    assert cli("import", "stargan-v2", path, "--out", "imported", "--image-size", "32").exit_code == 0
    photo = random_image(tmp_path / "photo.png", 40, 40, seed=2)
    for model, out in (("shared", "a.png"), ("imported", "b.png")):
        assert cli("translate", "--checkpoint", model, "--input", photo, "--output", out, "--domain", "dog", "--seed", "1").exit_code == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    line = one_line_error(cli("import", "stargan-v2", path, "--image-size", "32"))
    assert "give --out (a run folder) or --model-folder" in line
    line = one_line_error(cli("import", "stargan-v2", path, "--model-folder", "shared", "--image-size", "32"))
    assert "--model-folder 'shared' already holds files" in line


def card_of(folder):
    _, front, body = (folder / "README.md").read_text().split("---\n", 2)
    return yaml.safe_load(front), body


def test_an_earlier_checkpoints_card_has_its_own_sample_and_not_the_final_metrics(cli, trained, tmp_path):
    """metrics.json was measured on the last step: a card for step 1 must not claim it."""
    result = cli("save-pretrained", trained / "checkpoints" / "step_00000001.safetensors", "early")
    assert result.exit_code == 0, result.output
    card, body = card_of(tmp_path / "early")
    assert "model-index" not in card and "metrics" not in card and "| metric |" not in body
    assert "metrics.json is of step 2" in result.output
    assert (tmp_path / "early" / "sample.png").read_bytes() == (trained / "samples" / "step_00000001.png").read_bytes()
    assert cli("save-pretrained", trained, "final").exit_code == 0
    assert (tmp_path / "final" / "sample.png").read_bytes() == (trained / "samples" / "step_00000002.png").read_bytes()


def test_a_model_folder_saved_again_keeps_its_metrics_and_sample(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "first").exit_code == 0
    assert cli("save-pretrained", "first", "second", "--license", "mit").exit_code == 0
    first, second = card_of(tmp_path / "first")[0], card_of(tmp_path / "second")[0]
    assert second["license"] == "mit" and second["model-index"][0]["results"] == first["model-index"][0]["results"]
    assert (tmp_path / "second" / "sample.png").read_bytes() == (tmp_path / "first" / "sample.png").read_bytes()


def test_a_model_folder_of_an_older_mdt_keeps_its_card_metrics(cli, trained, tmp_path):
    """Model folders written before metrics.json was part of them carried the metrics only
    in the card's front matter, as a mapping; saving one again keeps them."""
    assert cli("save-pretrained", trained, "old").exit_code == 0
    (tmp_path / "old" / "metrics.json").unlink()
    card = (tmp_path / "old" / "README.md").read_text()
    start, end = card.index("model-index:"), card.index("---\n", 4)
    (tmp_path / "old" / "README.md").write_text(card[:start] + 'metrics:\n  "accuracy/target_accuracy": 0.625\n' + card[end:])
    assert cli("save-pretrained", "old", "new").exit_code == 0
    metrics = card_of(tmp_path / "new")[0]["model-index"][0]["results"][0]["metrics"]
    assert metrics == [{"name": "accuracy/target_accuracy", "type": "accuracy", "value": 0.625}]


@pytest.mark.parametrize("licence", ["not a licence!", "", "apache 2.0"])
def test_a_licence_that_is_no_hub_identifier_is_refused(cli, trained, tmp_path, licence):
    line = one_line_error(cli("save-pretrained", trained, "shared", "--license", licence))
    assert line.startswith(f"error: --license {licence!r}: expected a licence identifier of the Hugging Face Hub")
    assert not (tmp_path / "shared").exists()


@pytest.mark.parametrize("licence, closest", [("apache2", "apache-2.0"), ("cc-by-nc4.0", "cc-by-nc-4.0"), ("gpl3", "gpl-3.0")])
def test_a_licence_the_hub_does_not_list_is_refused_with_the_closest(cli, trained, tmp_path, licence, closest):
    """The Hub shows an identifier outside its list as no licence at all, so a typo would
    publish weights as unlicensed; the error names the nearest listed identifier."""
    line = one_line_error(cli("save-pretrained", trained, "shared", "--license", licence))
    assert line.startswith(f"error: --license {licence!r}: not a licence identifier of the Hugging Face Hub")
    assert "did you mean " in line and f"'{closest}'" in line and "--license other" in line
    assert not (tmp_path / "shared").exists()


def test_a_licence_is_written_as_the_hubs_lowercase_identifier(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "shared", "--license", "Apache-2.0").exit_code == 0
    assert card_of(tmp_path / "shared")[0]["license"] == "apache-2.0"


def test_the_cards_commands_run_as_written_from_the_folder_beside_it(cli, trained, tmp_path, monkeypatch):
    import shlex

    assert cli("save-pretrained", trained, "nest/shared/").exit_code == 0
    _, body = card_of(tmp_path / "nest" / "shared")
    commands = [line for line in body.splitlines() if line.startswith("mdt ")]
    assert len(commands) == 2, body
    random_image(tmp_path / "nest" / "photo.jpg", 60, 50, 4)
    translate = shlex.split(commands[0])
    assert translate[:3] == ["mdt", "translate", "--checkpoint"]
    monkeypatch.chdir(tmp_path / "nest")
    assert cli(*translate[1:]).exit_code == 0
    run = shlex.split(commands[1])
    assert run[:2] == ["mdt", "run"] and run[2] == "shared/recipe.toml"
    assert cli("recipe", "check", *run[2:]).exit_code == 0


def test_the_card_gives_metrics_in_the_hubs_model_index(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "shared").exit_code == 0
    card, _ = card_of(tmp_path / "shared")
    measured = json.loads((trained / "metrics.json").read_text())
    results = card["model-index"][0]["results"][0]
    assert results["task"]["type"] == "image-to-image"
    values = {m["name"]: m["value"] for m in results["metrics"]}
    assert values == pytest.approx({k: v for k, v in measured.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}, abs=1e-6)
    assert card["metrics"] == sorted({name.split("/")[0] for name in values})  # the Hub's list of metric ids


def test_a_folder_it_cannot_write_is_named_as_given(trained, tmp_path):
    from conftest import without_write_permission

    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    for out in ("ro", "ro/model"):
        done = without_write_permission(["save-pretrained", trained, out], tmp_path)
        assert done.returncode == 2, done.stderr[-3000:]
        assert done.stderr.strip() == "error: cannot write into 'ro': permission denied"
    assert list((tmp_path / "ro").iterdir()) == []


def test_a_folder_where_a_model_file_goes_is_named_and_nothing_changes(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "shared").exit_code == 0
    (tmp_path / "shared" / "README.md").unlink()
    (tmp_path / "shared" / "README.md").mkdir()
    before = sorted(p.name for p in (tmp_path / "shared").iterdir())
    line = one_line_error(cli("save-pretrained", trained, "shared", "--overwrite"))
    assert line == "error: 'shared/README.md' is a folder, where the model folder's file README.md goes; move it away first"
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == before


def _evaluated_copy(cli, trained, tmp_path):
    """A copy of the shared run (which must stay as it is), measured by mdt eval into its
    default report folder, eval-step_N."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained, run)
    result = cli("eval", "--checkpoint", run, "--metric", "accuracy", "--max-images", "4")
    assert result.exit_code == 0, result.output
    (report,) = run.glob("eval-*/metrics.json")
    return run, json.loads(report.read_text())


def test_the_card_loads_with_huggingface_hub_and_its_model_index_holds_the_eval_metrics(cli, trained, tmp_path):
    from huggingface_hub import ModelCard

    run, report = _evaluated_copy(cli, trained, tmp_path)
    training = json.loads((run / "metrics.json").read_text())
    assert cli("save-pretrained", run, "shared", "--license", "mit").exit_code == 0
    card = ModelCard.load(tmp_path / "shared" / "README.md")
    assert card.data.license == "mit" and card.data.library_name == "mdt"
    values = {r.metric_name: r.metric_value for r in card.data.eval_results}
    evaluated = {k: v for k, v in report["metrics"].items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert evaluated and evaluated.keys() <= values.keys()
    assert {k: values[k] for k in evaluated} == pytest.approx(evaluated, abs=1e-9)  # the report's numbers win
    assert {k: values[k] for k in training.keys() - evaluated.keys()} == pytest.approx(
        {k: v for k, v in training.items() if k not in evaluated}, abs=1e-9
    )
    body = card.text
    assert f"mdt eval ({next(run.glob('eval-*')).name}/metrics.json)" in body
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[-1].strip(" |") for line in body.splitlines() if line.startswith("| accuracy/")
    }
    assert rows["accuracy/target_accuracy"] == "higher" and rows["accuracy/real_error"] == "lower"
    # the card of an earlier checkpoint takes neither: both measured the last step
    assert cli("save-pretrained", run / "checkpoints" / "step_00000001.safetensors", "early").exit_code == 0
    assert ModelCard.load(tmp_path / "early" / "README.md").data.eval_results is None


def test_the_cards_python_snippet_gives_the_grid_mdt_translate_gives(cli, trained, tmp_path):
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    assert cli("save-pretrained", trained, "shared").exit_code == 0
    _, body = card_of(tmp_path / "shared")
    (snippet,) = re.findall(r"```python\n(.*?)```", body, re.S)
    random_image(tmp_path / "photo.jpg", 60, 50, 4)
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert cli("translate", "--checkpoint", "shared", "--input", "photo.jpg", "--output", "cli.png", "--grid").exit_code == 0
    python, shell = (np.asarray(Image.open(tmp_path / name)).astype(int) for name in ("grid.png", "cli.png"))
    assert python.shape == shell.shape and np.abs(python - shell).max() <= 1


def test_the_card_says_what_the_data_allows_and_cites_the_methods_paper(cli, trained, tmp_path):
    import tomllib

    from mdt.model_card import CardFacts, model_card
    from mdt.toml_text import dump_toml

    assert cli("save-pretrained", trained, "shared").exit_code == 0
    _, body = card_of(tmp_path / "shared")
    assert "Training data `faces` (synthetic_faces): drawn by mdt at run time" in body
    assert "photographs of people" not in body  # drawn faces are nobody's
    bibtex = body.split("```bibtex\n")[1].split("```")[0]
    cited = yaml.safe_load((REPO / "CITATION.cff").read_text())["references"]
    stargan = next(r for r in cited if r["title"].startswith("StarGAN:"))
    assert re.search(r"title = \{(.*)\}", bibtex).group(1) == stargan["title"]
    # the same model, as if trained on CelebA: its terms and the note on misuse
    saved = ckpt.read(ckpt.resolve(trained), training=False)

    def card_for(datasets: dict) -> str:
        recipe = {**tomllib.loads(saved.recipe_text), "datasets": datasets}
        networks = {name: saved.network(name) for name in saved.network_names()}
        path = tmp_path / "other.safetensors"
        ckpt.save_model(path, networks=networks, step=saved.step, recipe=dump_toml(recipe), schemas=saved.schemas)
        return model_card(CardFacts("shared", ckpt.read(path, training=False), "mit"))

    text = card_for({"celeba": {"type": "celeba", "root": "data/celeba"}})
    assert "Training data `celeba` (celeba): CelebA's terms: non-commercial research only" in text
    assert "It edits photographs of people" in text
    text = card_for({"mine": {"type": "domain_folders", "root": "data/mine"}})
    assert "check the terms of the data under `data/mine`" in text and "photographs of people" not in text
