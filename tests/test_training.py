"""Two-iteration runs of every recipe in recipes/, at reduced size, on tiny real-format data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO, shrunk, small, write_celeba, write_domain_folders, write_espeak_layout, write_intensities, write_rafd
from PIL import Image

from mdt.recipe import recipe_tables

RECIPES = sorted((REPO / "recipes").glob("*.toml"))


def data_overrides(recipe_path, tmp_path) -> list[str]:
    """Point each dataset of a recipe at a tiny dataset in its real layout."""
    data = recipe_tables(recipe_path)
    overrides = []
    for name, table in data["datasets"].items():
        if table["type"] == "celeba":
            overrides += [f"datasets.{name}.root={write_celeba(tmp_path / 'celeba')}", f"datasets.{name}.test_size=2"]
        elif table["type"] == "rafd":
            overrides.append(f"datasets.{name}.root={write_rafd(tmp_path / 'RaFD', per_class=2)}")  # a batch of 2 per domain
        elif table["type"] == "domain_folders":
            overrides.append(f"datasets.{name}.root={write_domain_folders(tmp_path / name, table.get('domains', ('a', 'b', 'c')))}")
        elif table["type"] == "csv_intensities":
            root = write_intensities(tmp_path / name, table.get("columns") or ("AU01_r", "AU12_r"), csv_file=table["csv_file"])
            overrides += [f"datasets.{name}.root={root}", f"datasets.{name}.test_size=2"]
        elif table["type"] in ("synthetic_faces", "synthetic_expressions"):
            overrides += [f"datasets.{name}.size=16", f"datasets.{name}.test_size=4"]
        elif table["type"] == "espeak_speech":  # the corpus's layout, two tone speakers
            overrides.append(f"datasets.{name}.root={write_espeak_layout(tmp_path / 'espeak')}")
    for name, table in data.get("metrics", {}).items():
        if table["type"] == "speech_distortion":  # whole held-out sentences: one here
            continue
        overrides.append(f"metrics.{name}.max_images=4")
        if table["type"] == "diversity":
            overrides.append(f"metrics.{name}.samples=2")
    if "classifier" in data:
        overrides.append("classifier.steps=2")
    if data["method"].get("landmark_weights"):  # the CelebA-HQ generator's face-landmark network
        from test_landmarks import random_landmark_file

        overrides.append(f"method.landmark_weights='{random_landmark_file(tmp_path / 'wing.ckpt')}'")
        # It runs at 256 px for every translation, slow on a CPU: tests/test_landmarks.py trains with it.
        overrides.append("networks.generator.high_pass=0")
    return overrides


@pytest.mark.parametrize("recipe_path", RECIPES, ids=[p.stem for p in RECIPES])
def test_two_iterations_of_every_recipe(recipe_path, cli, tmp_path):
    result = cli("run", recipe_path, "--out", "run", *shrunk(recipe_path, *data_overrides(recipe_path, tmp_path)))
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000001.safetensors", "step_00000002.safetensors"]
    grid = Image.open(run / "samples" / "step_00000002.png")
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "train"] == [1, 2]
    datasets = recipe_tables(recipe_path)["datasets"]
    if len(datasets) > 1:
        # Joint training: every dataset's discriminator step is in the log.
        for name in datasets:
            assert f"{name}/D/classification" in records[-1]
    # Redrawn from the step-2 checkpoint, built afresh: the first and the middle held-out
    # sample of each dataset (sample_count=2, spread over the split), each a row of cells
    # (the modality's pictures: 32 px images; 32 frames x 72 px of mel-cepstra) 2 px apart,
    # one column per target plus the input, under a header of column titles, after a
    # margin naming the dataset of each group of rows where there are several.
    redrawn, size = redraw(run / "checkpoints" / "step_00000002.safetensors")
    assert grid.size == size
    difference = np.abs(np.asarray(grid, dtype=np.int16) - np.asarray(redrawn, dtype=np.int16))
    assert difference.max() <= 1, difference.max()  # 8-bit rounding only


def redraw(file):
    """The sample grid of checkpoint ``file``, and the size it must have."""
    import torch
    from conftest import grid_width, text_pixels

    from mdt import checkpoint as ckpt
    from mdt.build import build
    from mdt.data import collate
    from mdt.grids import LINE_HEIGHT, grid_image, wrap_title
    from mdt.inference import load_networks
    from mdt.plugins import get_registry
    from mdt.recipe import parse_recipe

    registry = get_registry()
    saved = ckpt.read(file, training=False)
    components = build(parse_recipe(saved.recipe_text, str(file), registry=registry), registry, device=torch.device("cpu"))
    load_networks(components, saved)
    translator = components.method.translator()
    rows, row_titles, titles = [], [], []
    with torch.no_grad():
        for source, (name, items) in enumerate(zip(components.dataset_names, components.test_sets, strict=True)):
            raw = collate([items[i] for i in sorted({0, len(items) // 2})])
            images = components.augmentation(raw.images, train=False)
            more, titles = translator.grid(images, source=source, labels=raw.labels)
            assert len(more) == images.shape[0] == 2
            rows += more
            row_titles += [name] + [None] * (len(more) - 1)
    several = len(components.test_sets) > 1
    columns = ["input", *titles]
    cell = components.modality.preview(rows[0][0])
    margin = min(60, max(text_pixels(n) for n in components.dataset_names)) + 4 if several else 0  # a margin is at most 60 px
    header = LINE_HEIGHT * max(len(wrap_title(t, grid_width([t], cell.width) - 4)) for t in columns)  # each column as wide as drawn
    size = (margin + grid_width(columns, cell.width), header + len(rows) * (cell.height + 2) + 2)
    return grid_image(rows, columns, row_titles=row_titles if several else None, picture=components.modality.preview), size


def test_an_existing_run_folder_is_never_reused(cli, tmp_path):
    recipe = REPO / "recipes" / "quickstart.toml"
    args = [
        "run",
        recipe,
        *small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2"),
    ]
    assert cli(*args).exit_code == 0
    assert cli(*args).exit_code == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["quickstart", "quickstart-2"]
    result = cli(*args, "--out", "runs/quickstart")
    assert result.exit_code == 2 and "already holds files" in result.output
