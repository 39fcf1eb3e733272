"""The adversarial catalogue: inputs a hurried or hostile user gives, each answered with
one line naming the file, key or value, exit code 2, no traceback and nothing lost.
Numbers refer to the cases of the catalogue (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, random_image, small, write_celeba, write_domain_folders
from PIL import Image
from safetensors.torch import save_file
from test_data_errors import last_line_error
from test_recipe_errors import one_line_error

from mdt import checkpoint as ckpt
from mdt.logbook import read_log
from mdt.toml_text import dump_toml

QUICKSTART = REPO / "recipes" / "quickstart.toml"
CELEBA = REPO / "recipes" / "stargan_celeba.toml"
TINY = (
    "run.batch_size=4",
    "run.image_size=32",
    "run.sample_every=100",
    "run.sample_count=2",
    "run.log_every=1",
    "run.threads=1",
    "run.deterministic=true",
    "generator.conv_dim=8",
    "generator.residual_blocks=1",
    "discriminator.conv_dim=8",
    "discriminator.layers=3",
    "datasets.faces.size=32",
    "datasets.faces.test_size=4",
    "method.decay_iterations=4",
    "method.d_steps_per_g=2",
)


def tiny_recipe(folder: Path) -> Path:
    """The quickstart without its metrics (no judge to train): seconds per run."""
    data = tomllib.loads(QUICKSTART.read_text())
    data.pop("metrics"), data.pop("classifier")
    path = folder / "tiny.toml"
    path.write_text(dump_toml(data))
    return path


def sets(*items: str) -> list[str]:
    return [arg for item in (*TINY, *items) for arg in ("--set", item)]


def train_records(run: Path) -> list[int]:
    log = run / "log.jsonl"
    return [r["step"] for r in read_log(log) if r["event"] == "train"] if log.exists() else []


# ------------------------------------------------------------------ 1-3: [run] values


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("iterations", -5, "of at least 1"),
        ("iterations", 0, "of at least 1"),
        ("batch_size", 0, "of at least 1"),
        ("batch_size", -4, "of at least 1"),
        ("image_size", 0, "of at least 8"),
        ("checkpoint_every", 0, "of at least 1"),
        ("log_every", 0, "of at least 1"),
        ("sample_every", 0, "of at least 1"),
        ("sample_count", 0, "of at least 1"),
        ("num_workers", -1, "of at least 0"),
        ("threads", -2, "of at least 0"),
        ("keep_checkpoints", -1, "of at least 0"),
        ("seed", -1, "of at least 0"),
    ],
)
@pytest.mark.parametrize("command", [["recipe", "check"], ["run"]])
def test_run_values_are_range_checked(cli, tmp_path, command, key, value, expected):
    recipe = tiny_recipe(tmp_path)
    out = ["--out", "run"] if command == ["run"] else []
    line = one_line_error(cli(*command, recipe, *out, *sets("run.iterations=2", f"run.{key}={value}")))
    assert line == f"error: --set run.{key}: key '{key}' = {value}: expected an integer {expected}"
    assert not (tmp_path / "run").exists()


def test_a_range_in_a_recipe_file_names_the_file_and_key(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    recipe.write_text(recipe.read_text().replace("batch_size = 16", "batch_size = -4"))
    line = one_line_error(cli("recipe", "check", recipe))
    assert line == f"error: {recipe}: [run] key 'batch_size' = -4: expected an integer of at least 1"


def test_a_plugin_declares_the_range_of_its_own_keys(registry):
    """Any component may annotate a key with a range; recipe check enforces it."""
    from typing import Annotated

    from mdt.ranges import AtLeast, Between
    from mdt.signatures import type_problem

    assert type_problem(0, Annotated[int, AtLeast(1)]) == "an integer of at least 1"
    assert type_problem(1.5, Annotated[float, Between(0, 1)]) == "a number from 0 to 1"
    assert type_problem(0.5, Annotated[float, Between(0, 1)]) is None
    assert type_problem("x", Annotated[int, AtLeast(1)]) == "an integer"


# ------------------------------------------------------------------ 4-6: data


def celeba_recipe_args(root: Path, *extra: str) -> list[str]:
    return small(f"datasets.celeba.root={root}", "datasets.celeba.test_size=2", "run.num_workers=0", *extra)


def test_4_no_readable_training_image_stops_instead_of_looping(tmp_path):
    from mdt_datasets.files import held_out

    root = write_celeba(tmp_path / "celeba")
    for i in held_out(12, 2, "train"):  # the training split only: sample grids can still be drawn
        (root / "img_align_celeba" / f"{i + 1:06d}.jpg").write_bytes(b"not a jpeg")
    args = [
        sys.executable,
        "-m",
        "mdt.cli",
        "run",
        str(CELEBA),
        "--out",
        str(tmp_path / "run"),
        *celeba_recipe_args(root, "run.skip_bad_files=true", "run.iterations=3", "run.sample_every=100"),
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "celeba" in last and "could be read" in last, last
    assert "Traceback" not in done.stderr
    assert done.stderr.count("skipped:") < 50  # a bounded number of lines, not an endless stream


def test_5_an_unreadable_test_image_is_named_and_counted(cli, tmp_path):
    from mdt_datasets.files import held_out

    root = write_celeba(tmp_path / "celeba")
    bad = f"{held_out(12, 2, 'test')[0] + 1:06d}.jpg"  # a test-split image (rows are 000001.jpg, ...)
    (root / "img_align_celeba" / bad).write_bytes(b"truncated")
    result = cli("run", CELEBA, "--out", "run", *celeba_recipe_args(root, "run.skip_bad_files=true", "run.iterations=2"))
    assert result.exit_code == 0, result.output
    assert f"skipped: cannot read image '{root / 'img_align_celeba' / bad}'" in result.output
    assert read_log(tmp_path / "run" / "log.jsonl")[-1]["skipped_files"] == 1


def test_6_a_single_domain_folder_is_refused(cli, tmp_path):
    root = write_domain_folders(tmp_path / "afhq", domains=("cat",))
    recipe = REPO / "recipes" / "stargan_v2_afhq.toml"
    result = cli("run", recipe, "--out", "run", *small(f"datasets.afhq.root={root}", 'datasets.afhq.domains=["cat"]', v2=True))
    line = one_line_error(result)
    assert "'cat'" in line and "at least two domains" in line and str(root) in line
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 7-13: runs and checkpoints


def mdt_process(recipe: Path, folder: Path, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "mdt.cli", "run", str(recipe), *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_7_two_runs_started_together_into_one_folder_one_is_refused(tmp_path):
    recipe = tiny_recipe(tmp_path)
    runs = {size: mdt_process(recipe, tmp_path, "--out", "run", *sets("run.iterations=400", f"run.batch_size={size}")) for size in (2, 4)}
    try:
        deadline = time.time() + 120
        while all(p.poll() is None for p in runs.values()) and time.time() < deadline:
            time.sleep(0.1)
        refused = [size for size, p in runs.items() if p.poll() is not None]
        assert len(refused) == 1, "neither run was refused"
        loser = runs[refused[0]]
        _, err = loser.communicate(timeout=60)
        assert loser.returncode == 2 and "'run' is in use by another mdt run (process " in err.strip().splitlines()[-1], err[-2000:]
        winner = 4 if refused[0] == 2 else 2
        assert runs[winner].poll() is None  # the other goes on, untouched
        while len(train_records(tmp_path / "run")) < 3 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        for process in runs.values():
            process.kill()
            process.communicate(timeout=60)
    steps = train_records(tmp_path / "run")
    assert steps == list(range(1, len(steps) + 1))  # one run's steps, none twice
    assert f"batch_size = {winner}" in (tmp_path / "run" / "recipe.toml").read_text()
    assert not list((tmp_path / "run").glob("recipe.resumed-*"))


def test_7_a_stale_lock_of_a_dead_process_is_named_and_taken_over(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    assert cli("run", recipe, "--out", "run", *sets("run.iterations=2")).exit_code == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    (tmp_path / "run" / ".mdt-run.lock").write_text(f"{dead.pid}\n")
    result = cli("run", recipe, "--resume", "run", *sets("run.iterations=3"))
    assert result.exit_code == 0, result.output
    assert f"process {dead.pid}, which is no longer running" in result.output
    # the recipe changed (iterations 2 -> 3): the message says what changed, on one line
    assert (
        "the recipe differs from the checkpoint's (step 2) (run.iterations: 2 -> 3); this one is saved as "
        "recipe.resumed-00000002.toml" in result.output
    )


def test_8_a_run_killed_before_its_first_checkpoint_can_be_resumed(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    assert cli("run", recipe, "--out", "run", *sets("run.iterations=3", "run.checkpoint_every=100")).exit_code == 0
    for file in (tmp_path / "run" / "checkpoints").iterdir():
        file.unlink()  # as if killed before the first checkpoint
    result = cli("run", recipe, "--resume", "run", *sets("run.iterations=3", "run.checkpoint_every=100"))
    assert result.exit_code == 0, result.output
    assert "holds no checkpoint yet; starting it from step 0" in result.output
    assert train_records(tmp_path / "run") == [1, 2, 3]
    assert ckpt.read(tmp_path / "run" / "checkpoints" / "step_00000003.safetensors").step == 3


def test_9_resuming_with_other_label_names_is_refused(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    assert cli("run", recipe, "--out", "run", *sets("run.iterations=2", "run.checkpoint_every=1", "run.keep_checkpoints=1")).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "run" / "checkpoints").iterdir()}
    swapped = 'datasets.faces.attributes=["Blond_Hair", "Black_Hair", "Brown_Hair", "Glasses", "Smiling"]'
    result = cli("run", recipe, "--resume", "run", *sets("run.iterations=4", "run.checkpoint_every=1", "run.keep_checkpoints=1", swapped))
    line = last_line_error(result)
    assert "labels" in line and "Black_Hair" in line and "Blond_Hair" in line, line
    assert {p.name: p.read_bytes() for p in (tmp_path / "run" / "checkpoints").iterdir()} == before


def test_10_a_torn_newest_checkpoint_falls_back_to_the_newest_intact_one(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    assert cli("run", recipe, "--out", "run", *sets("run.iterations=4", "run.checkpoint_every=2")).exit_code == 0
    newest = tmp_path / "run" / "checkpoints" / "step_00000004.safetensors"
    torn = newest.read_bytes()[: newest.stat().st_size // 2]
    newest.write_bytes(torn)
    result = cli("run", recipe, "--resume", "run", *sets("run.iterations=4", "run.checkpoint_every=2"))
    assert result.exit_code == 0, result.output
    assert "skipped step_00000004.safetensors" in result.output and "resuming" in result.output and "from step 2" in result.output
    kept = tmp_path / "run" / "checkpoints" / "step_00000004.safetensors.unreadable"
    assert kept.read_bytes() == torn  # nothing lost: the torn file is set aside, not deleted
    assert ckpt.read(newest).step == 4


def test_11_the_log_does_not_repeat_steps_after_a_resume(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    assert cli("run", recipe, "--out", "run", *sets("run.iterations=5", "run.checkpoint_every=2", "run.keep_checkpoints=5")).exit_code == 0
    (tmp_path / "run" / "checkpoints" / "step_00000005.safetensors").unlink()
    (tmp_path / "run" / "checkpoints" / "step_00000004.safetensors").unlink()  # killed after logging step 5
    result = cli("run", recipe, "--resume", "run", *sets("run.iterations=5", "run.checkpoint_every=2", "run.keep_checkpoints=5"))
    assert result.exit_code == 0, result.output
    assert train_records(tmp_path / "run") == [1, 2, 3, 4, 5]
    records = read_log(tmp_path / "run" / "log.jsonl")
    resumed = [r for r in records if r["event"] == "resumed"]
    assert len(resumed) == 1 and resumed[0]["step"] == 2 and resumed[0]["discarded"] == [3, 5]


def test_12_checkpoint_info_on_a_file_with_only_the_format_metadata(cli, tmp_path):
    save_file({"x": torch.zeros(2)}, str(tmp_path / "bare.safetensors"), metadata={"format": ckpt.FORMAT})
    line = one_line_error(cli("checkpoint", "info", tmp_path / "bare.safetensors"))
    assert line == f"error: '{tmp_path / 'bare.safetensors'}' is an mdt file without a recipe: not a model checkpoint"


def test_13_import_without_a_discriminator_checks_the_image_size(cli, tmp_path):
    from test_import_stargan_v1 import official_generator

    official = official_generator(3)
    generator = tmp_path / "200000-G.ckpt"
    torch.save(official.state_dict(), generator)
    result = cli(
        "import",
        "stargan-v1",
        "--generator",
        generator,
        "--attrs",
        "Black_Hair,Blond_Hair,Brown_Hair",
        "--image-size",
        "30",
        "--out",
        "imported",
    )
    line = one_line_error(result)
    assert "--image-size 30" in line and "divisible" in line
    assert not (tmp_path / "imported").exists()
    result = cli(
        "import",
        "stargan-v1",
        "--generator",
        generator,
        "--attrs",
        "Black_Hair,Blond_Hair,Brown_Hair",
        "--image-size",
        "32",
        "--out",
        "imported",
    )
    assert result.exit_code == 0, result.output
    photo = random_image(tmp_path / "face.png", 40, 40, 1)
    result = cli(
        "translate", "--checkpoint", "imported", "--input", photo, "--output", "out.png", "--to", "Blond_Hair", "--from", "Black_Hair"
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").size == (32, 32)
    # The official generator on the official pipeline: the whole 40 px square resized to
    # 32 (bilinear), [-1, 1], to Blond_Hair from Black_Hair; then 8 bits.
    picture = Image.open(photo).convert("RGB").resize((32, 32), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float()[None] / 127.5 - 1
    with torch.no_grad():
        expected = official(x, torch.tensor([[0.0, 1.0, 0.0]]))[0]
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    ours = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(np.float64)
    assert np.abs(ours - expected).max() <= 1  # 8-bit rounding only


# ------------------------------------------------------------------ 14-17: translate and the CLI


LEGACY_RUN = REPO / "tests" / "fixtures" / "legacy" / "v1"
PHOTO = REPO / "tests" / "fixtures" / "legacy" / "input.png"


def test_14_two_labels_of_one_exclusive_group_are_refused(cli):
    line = one_line_error(
        cli("translate", "--checkpoint", LEGACY_RUN, "--input", PHOTO, "--output", "o.png", "--to", "Black_Hair,Blond_Hair")
    )
    assert "Black_Hair" in line and "Blond_Hair" in line and "only one" in line
    assert not Path("o.png").exists()


def test_15_overwrite_onto_a_folder_named_like_the_output(cli, tmp_path):
    (tmp_path / "o.png").mkdir()
    line = one_line_error(
        cli("translate", "--checkpoint", LEGACY_RUN, "--input", PHOTO, "--output", "o.png", "--to", "Blond_Hair", "--overwrite")
    )
    assert "'o.png' is a folder" in line
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"] and not list((tmp_path / "o.png").iterdir())


@pytest.mark.parametrize(
    "crop, expected",
    [
        ("-5", "--crop -5: give 0 (the largest centred square) or a size in pixels"),
        ("100", "is 64x64, smaller than the 100x100 centre crop"),
    ],
)
def test_16_crop_values(cli, tmp_path, crop, expected):
    photo = random_image(tmp_path / "small.png", 64, 64, 3)
    line = one_line_error(
        cli("translate", "--checkpoint", LEGACY_RUN, "--input", photo, "--output", "o.png", "--to", "Blond_Hair", "--crop", crop)
    )
    assert expected in line
    if crop == "100":
        assert f"'{photo}'" in line


def test_17_a_folder_for_a_recipe_and_a_file_for_a_run_folder(cli, tmp_path):
    (tmp_path / "folder").mkdir()
    line = one_line_error(cli("run", "folder"))
    assert line == "error: recipe 'folder' is a folder; give a recipe file (.toml) or a built-in recipe's name (mdt recipe list)"
    (tmp_path / "file").write_text("x")
    line = one_line_error(cli("run", QUICKSTART, "--out", "file"))
    assert line == "error: --out 'file' is a file; give a folder for the run"
    assert (tmp_path / "file").read_text() == "x"


# ------------------------------------------------------------------ 18: speed shown


def test_18_the_rate_shown_is_recent_and_gives_an_eta():
    from mdt.progress import RecentRate

    rate = RecentRate(window=10.0)
    clock = 0.0
    for step in range(1, 11):  # a slow phase: 1 step per second
        clock += 1.0
        rate.update(step, clock)
    for step in range(11, 111):  # then 10 steps per second
        clock += 0.1
        rate.update(step, clock)
    assert rate.per_second() == pytest.approx(10.0, rel=0.05)  # the average since the start would be 5.5
    assert rate.eta(110, 1110) == pytest.approx(100.0, rel=0.05)


def test_18_the_log_line_shows_the_rate_and_eta(cli, tmp_path):
    recipe = tiny_recipe(tmp_path)
    result = cli("run", recipe, "--out", "run", *sets("run.iterations=3"))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("step 3/3")]
    assert lines and " it/s " in lines[0] and "eta 0:00:00" in lines[0]


def test_every_number_a_built_in_component_takes_has_a_range():
    """Range-checked everywhere, not only in [run]: a width of 0 or a negative loss weight
    is refused by recipe check, and `mdt list KIND NAME` shows each range."""
    import typing

    from mdt.plugins import load_plugins
    from mdt.recipe_layout import INJECTED
    from mdt.signatures import parameters, range_text, type_hints

    host = load_plugins()
    built_in = {info.name for info in host.plugins if info.builtin}
    registry, unranged = host.registry, []
    for kind in registry.kinds:
        for component in registry.components(kind):
            if component.plugin not in built_in or kind == "sampler":  # samplers are built by the engine
                continue
            hints = type_hints(component.factory)
            for name in parameters(component.factory):
                hint = hints.get(name)
                base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
                if name not in INJECTED and base in (int, float) and not range_text(hint):
                    unranged.append(f"{kind} {component.name}: {name}")
    assert not unranged
