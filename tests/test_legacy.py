"""What a user made with an earlier mdt keeps working: its recipes, checkpoints and judge.

tests/fixtures/legacy/ holds files written by mdt before the generic core (see make.py
there): 2-step runs of the StarGAN and StarGAN v2 quickstarts with the checkpoint their
4th step wrote, imports of official weights, a judge classifier, and the PNG files that
`mdt translate` wrote from them. Resuming must give the old code's step-4 weights and
translating the old code's pictures, pixel for pixel.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from conftest import REPO

LEGACY = REPO / "tests" / "fixtures" / "legacy"


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("run", ["v1", "v2"])
def test_an_old_run_resumes_to_the_old_codes_weights(cli, tmp_path, run):
    folder = shutil.copytree(LEGACY / run, tmp_path / run)
    result = cli("run", folder / "recipe.toml", "--resume", folder)
    assert result.exit_code == 0, result.output
    expected = load_file(LEGACY / "expected" / f"{run}_step_00000004.safetensors")
    resumed = load_file(folder / "checkpoints" / "step_00000004.safetensors")
    weights = [k for k in expected if not k.startswith(("optim/", "rng/"))]
    assert len(weights) > 20
    for name in weights:
        assert name in resumed, name
        assert resumed[name].equal(expected[name]), name


TRANSLATIONS = [
    ("v1", "v1_to.png", ["--to", "Blond_Hair,Smiling=0"]),
    ("v1", "v1_grid.png", ["--grid"]),
    ("v1", "v1_known.png", ["--to", "Glasses", "--from", "Black_Hair,Glasses=0,Smiling"]),
    ("v1_import", "v1_import_to.png", ["--to", "Blond_Hair,Male=0"]),
    ("v1_import", "v1_import_grid.png", ["--grid"]),
    ("v2", "v2_seed.png", ["--domain", "Blond_Hair", "--seed", "3"]),
    ("v2", "v2_ref.png", ["--domain", "Blond_Hair", "--ref", LEGACY / "reference.png"]),
    ("v2", "v2_grid.png", ["--grid", "--domain", "Blond_Hair", "--num", "3"]),
    ("v2_import", "v2_import_seed.png", ["--domain", "dog", "--seed", "3"]),
    ("v2_import", "v2_import_ref.png", ["--domain", "dog", "--ref", LEGACY / "reference.png"]),
    ("v2_import", "v2_import_grid.png", ["--grid", "--domain", "dog", "--num", "3"]),
]


@pytest.mark.parametrize("model,expected,args", TRANSLATIONS, ids=[t[1] for t in TRANSLATIONS])
def test_an_old_checkpoint_translates_to_the_same_pixels(cli, tmp_path, model, expected, args):
    result = cli("translate", "--checkpoint", LEGACY / model, "--input", LEGACY / "input.png", "--output", "out.png", *args)
    assert result.exit_code == 0, result.output
    assert np.array_equal(pixels(tmp_path / "out.png"), pixels(LEGACY / "expected" / expected))


def test_an_old_judge_still_judges(cli, tmp_path):
    # The old code scored it on the first 8 held-out images; so does mdt eval now.
    result = cli("eval", "--checkpoint", LEGACY / "v1", "--classifier", LEGACY / "classifier", "--out", "report",
                 "--metric", "translation_accuracy", "--max-images", "8")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    with safe_open(str(LEGACY / "classifier" / "classifier.safetensors"), framework="pt") as f:
        saved = json.loads(f.metadata()["accuracy"])
    assert saved["real/Black_Hair"] != saved["real/Blond_Hair"]  # a judge whose labels differ: a real check
    for key, value in saved.items():
        assert metrics[f"translation_accuracy/{key}"] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("path,expected", [
    ("v1", ["model  step 2", "[networks.generator] stargan", "labels of 'faces': Black_Hair"]),
    ("v2_import", ["model  step 100000", "imported from official StarGAN v2", "[networks.mapping_network] stargan_v2",
                   "generator_ema"]),
    ("classifier/classifier.safetensors", ["classifier  step 0", "backbone: test_resnet",
                                           "accuracy on real held-out images, Blond_Hair: 0.3750", "labels of 'faces'"]),
])
def test_checkpoint_info_reads_every_file_mdt_wrote(cli, path, expected):
    result = cli("checkpoint", "info", LEGACY / path)
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.output, (text, result.output)
