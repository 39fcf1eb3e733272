"""Model folders to share (Hub layout): the same translations as the run, a model card
that says what the model is, what it scored and under which licence."""

from __future__ import annotations

import json

import pytest
import yaml
from safetensors import safe_open

from conftest import random_image
from mdt import checkpoint as ckpt
from test_recipe_errors import one_line_error


@pytest.fixture
def trained(quickstart_run):
    return quickstart_run


def test_a_model_folder_translates_as_the_run_does(cli, trained, tmp_path):
    result = cli("save-pretrained", trained, "shared", "--license", "mit")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "shared"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "labels.json", "model.safetensors", "recipe.toml", "sample.png"]
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
    assert card["metrics"]["accuracy/target_accuracy"] == pytest.approx(measured["accuracy/target_accuracy"], abs=1e-5)
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
    line = one_line_error(cli("translate", "--checkpoint", "hf://someone/elsewhere", "--input", photo, "--output", "x.png",
                              "--to", "Blond_Hair"))
    assert line == ("error: 'hf://someone/elsewhere' is not in the Hugging Face cache and cannot be downloaded now "
                    "(HF_HUB_OFFLINE is set, or there is no network)")


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


def test_a_run_of_ones_own_has_licence_other_unless_given(cli, trained, tmp_path):
    assert cli("save-pretrained", trained, "shared").exit_code == 0
    assert yaml.safe_load((tmp_path / "shared" / "README.md").read_text().split("---\n")[1])["license"] == "other"


def test_eval_of_a_hub_model_asks_for_a_report_folder(cli):
    line = one_line_error(cli("eval", "--checkpoint", "hf://someone/quickstart"))
    assert line == "error: give --out for 'hf://someone/quickstart': its folder is huggingface_hub's cache, not a place for a report"


def test_a_malformed_hub_location_is_one_line(cli):
    line = one_line_error(cli("checkpoint", "info", "hf://just-a-name"))
    assert line == "error: 'hf://just-a-name': expected hf://OWNER/NAME[@REVISION]"


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
