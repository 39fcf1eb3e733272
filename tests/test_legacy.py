"""What a user made with an earlier mdt keeps working: its recipes, checkpoints and judge.

tests/fixtures/methods/ holds 4-step runs of the four built-in methods made before their
updates were written with one core helper (see make.py there), and their translations:
where the machine and the PyTorch build are the fixtures' own (made_on.json), resuming
and translating must give them bit for bit; elsewhere within the tolerances below.

tests/fixtures/legacy/ holds files written by mdt before the generic core (see make.py
there): 2-step runs of the StarGAN and StarGAN v2 quickstarts with the checkpoint their
4th step wrote, imports of official weights, a judge classifier, and the PNG files that
`mdt translate` wrote from them. Resuming must give the old code's step-4 training state
and translating the old code's pictures.

The fixtures were written with another PyTorch build on another CPU, and float arithmetic
is not bit-identical across those: the code of the fixtures' commit, run on the machine of
2026-12-02 (torch 2.14.1), gives pixels one level apart and, two GAN steps on, weights
within 1e-3 of their scale and Adam moments within 2.2e-2 (StarGAN v2's biases before
instance norm get gradients that are rounding noise, and beta1 = 0 keeps them as they are);
today's code gives exactly the old code's values on one machine. So the comparisons allow
for that and little more: step counters exactly, weights within 2e-3 and moments within
5e-2 of the largest value of their kind, pixels at most one level apart in at most 1% of
them. Bit-exact resume on one machine is tested in test_checkpoints.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

LEGACY = REPO / "tests" / "fixtures" / "legacy"
METHODS = REPO / "tests" / "fixtures" / "methods"


def same_machine_as(folder) -> bool:
    """Whether this machine computes as the one that wrote ``folder``'s fixtures did."""
    from fixtures.methods.make import machine

    return json.loads((folder / "made_on.json").read_text()) == machine()


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


OLD_RUNS = [(LEGACY, "v1"), (LEGACY, "v2"), *((METHODS, name) for name in ("stargan", "stargan_v2", "cyclegan", "ganimation"))]


@pytest.mark.parametrize("root,run", OLD_RUNS, ids=[f"{root.name}-{run}" for root, run in OLD_RUNS])
def test_an_old_run_resumes_to_the_old_codes_weights(cli, tmp_path, root, run):
    folder = shutil.copytree(root / run, tmp_path / run)
    result = cli("run", folder / "recipe.toml", "--resume", folder)
    assert result.exit_code == 0, result.output
    expected = load_file(root / "expected" / f"{run}_step_00000004.safetensors")
    resumed = load_file(folder / "checkpoints" / "step_00000004.safetensors")
    if root == METHODS and same_machine_as(root):
        assert resumed.keys() == expected.keys()
        for name, tensor in expected.items():
            assert resumed[name].equal(tensor), name
        return
    weights = [k for k in expected if not k.startswith(("optim/", "rng/"))]
    moments = [k for k in expected if k.startswith("optim/") and k.endswith(("exp_avg", "exp_avg_sq"))]
    steps = [k for k in expected if k.startswith("optim/") and k.endswith("/step")]
    assert len(weights) > 20 and len(moments) > 20 and steps
    for name in steps:
        assert resumed[name].equal(expected[name]), name
    for names, scale in (
        (weights, 2e-3),
        ([k for k in moments if k.endswith("exp_avg")], 5e-2),
        ([k for k in moments if k.endswith("sq")], 5e-2),
    ):
        atol = scale * max(float(expected[name].abs().max()) for name in names)
        for name in names:
            assert name in resumed, name
            worst = float((resumed[name] - expected[name]).abs().max())
            assert worst <= atol, f"{name}: {worst} > {atol}"


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


def method_translations():
    from fixtures.methods.make import TRANSLATIONS as MADE

    return [(model, name, [str(METHODS / a) if a == "reference.png" else a for a in args]) for name, (model, args) in MADE.items()]


def grid_cells(ours: np.ndarray, theirs: np.ndarray, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The image cells of two grids of the same translations, side by side in the same
    order: ``theirs`` in the layout its fixture was drawn in (a 34-pixel column pitch),
    ``ours`` in today's (a column widens to its title's longest word, titles wrap to more
    lines). Each of their columns is found in ours by its pixels, left to right, so a
    changed layout cannot pass off other translations as the same."""
    # as many rows in both, each under a header of whole 12-pixel lines of titles
    rows = max(
        r
        for r in range(1, theirs.shape[0] // (size + 2) + 1)
        if all((height - 2 - r * (size + 2)) % 12 == 0 and height - 2 - r * (size + 2) >= 0 for height in (ours.shape[0], theirs.shape[0]))
    )
    band = rows * (size + 2) + 2  # the rows of cells under the header
    ours, theirs = ours[-band:], theirs[-band:]
    found_ours, found_theirs, start = [], [], 0
    for column in range((theirs.shape[1] - 2) // (size + 2)):
        cell = theirs[:, 2 + column * (size + 2) : 2 + column * (size + 2) + size]
        offsets = range(start, ours.shape[1] - size + 1)
        x = min(offsets, key=lambda o: np.abs(ours[:, o : o + size] - cell).max())
        found_ours.append(ours[:, x : x + size])
        found_theirs.append(cell)
        start = x + size
    return np.concatenate(found_ours, axis=1), np.concatenate(found_theirs, axis=1)


@pytest.mark.parametrize("model,expected,args", TRANSLATIONS, ids=[t[1] for t in TRANSLATIONS])
def test_an_old_checkpoint_translates_to_the_same_pixels(cli, tmp_path, model, expected, args):
    result = cli("translate", "--checkpoint", LEGACY / model, "--input", LEGACY / "input.png", "--output", "out.png", *args)
    assert result.exit_code == 0, result.output
    ours, theirs = pixels(tmp_path / "out.png").astype(int), pixels(LEGACY / "expected" / expected).astype(int)
    if "grid" in expected:  # the images, not the titles: the layout of titles has changed since
        ours, theirs = grid_cells(ours, theirs)
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs)
    assert difference.max() <= 1 and (difference > 0).mean() <= 0.01


@pytest.mark.parametrize("model,expected,args", method_translations(), ids=[t[1] for t in method_translations()])
def test_each_methods_earlier_model_translates_to_the_same_pixels(cli, tmp_path, model, expected, args):
    result = cli("translate", "--checkpoint", METHODS / model, "--input", METHODS / "input.png", "--output", "out.png", *args)
    assert result.exit_code == 0, result.output
    ours, theirs = pixels(tmp_path / "out.png").astype(int), pixels(METHODS / "expected" / expected).astype(int)
    if "grid" in expected:  # the images, not the titles: the layout of titles has changed since
        ours, theirs = grid_cells(ours, theirs)
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs)
    if same_machine_as(METHODS):
        assert difference.max() == 0
    else:
        assert difference.max() <= 1 and (difference > 0).mean() <= 0.01


def test_an_old_judge_still_judges(cli, tmp_path):
    # The old code scored it on the first 8 held-out images; so does mdt eval now.
    result = cli(
        "eval",
        "--checkpoint",
        LEGACY / "v1",
        "--classifier",
        LEGACY / "classifier",
        "--out",
        "report",
        "--metric",
        "translation_accuracy",
        "--max-images",
        "8",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())["metrics"]
    with safe_open(str(LEGACY / "classifier" / "classifier.safetensors"), framework="pt") as f:
        saved = json.loads(f.metadata()["accuracy"])
    assert saved["real/Black_Hair"] != saved["real/Blond_Hair"]  # a judge whose labels differ: a real check
    for key, value in saved.items():
        assert metrics[f"translation_accuracy/{key}"] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize(
    "path,expected",
    [
        ("v1", ["model  step 2", "[networks.generator] stargan", "labels of 'faces': Black_Hair"]),
        (
            "v2_import",
            ["model  step 100000", "imported from official StarGAN v2", "[networks.mapping_network] stargan_v2", "generator_ema"],
        ),
        (
            "classifier/classifier.safetensors",
            ["classifier  mdt ", "backbone: test_resnet", "accuracy on real held-out images, Blond_Hair: 0.3750", "labels of 'faces'"],
        ),
    ],
)
def test_checkpoint_info_reads_every_file_mdt_wrote(cli, path, expected):
    result = cli("checkpoint", "info", LEGACY / path)
    assert result.exit_code == 0, result.output
    for text in expected:
        assert text in result.output, (text, result.output)
