"""The remaining user-facing errors: one line, exit code 2, the thing that was wrong named."""

from __future__ import annotations

import pytest
import torch
from conftest import REPO, small, write_rafd
from safetensors.torch import save_file
from test_recipe_errors import one_line_error

QUICKSTART = REPO / "recipes" / "quickstart.toml"
TINY = ("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2")


@pytest.mark.parametrize(
    "override,expected",
    [
        ("run.iterations", "expected table.key=value"),
        ("run.iterations={", "is not a TOML value"),
        ("generator=3", "expected table.key=value"),
    ],
)
def test_malformed_set(cli, override, expected):
    assert expected in one_line_error(cli("recipe", "check", QUICKSTART, "--set", override))


def test_cuda_asked_for_without_a_gpu(cli):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    line = one_line_error(cli("run", QUICKSTART, "--out", "run", *small(*TINY, "run.device=cuda")))
    assert "no CUDA device is available" in line


@pytest.mark.parametrize("device", ["mps", "xpu", "xpu:1"])
def test_a_device_this_machine_lacks_is_one_line_before_anything_is_built(cli, tmp_path, device):
    if getattr(torch, device.split(":")[0]).is_available():
        pytest.skip(f"this machine has {device}")
    line = one_line_error(cli("run", QUICKSTART, "--out", "run", *small(*TINY, f"run.device={device}")))
    assert line.endswith(f"[run] device = '{device}', but this machine has no such device; use 'auto' or 'cpu'"), line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "device,expected",
    [
        ("meta", "key 'device' = 'meta': mdt trains on 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu' or 'xpu:N', not on 'meta'"),
        ("gpu", "key 'device' = 'gpu': mdt trains on 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu' or 'xpu:N', not on 'gpu'"),
        ("cuda:x", "key 'device' = 'cuda:x': mdt trains on 'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu' or 'xpu:N', not on 'cuda:x'"),
    ],
)
def test_a_device_mdt_cannot_train_on_is_refused_by_the_check(cli, device, expected):
    """The check cannot know which machine will run the recipe, but it knows the names."""
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", f"run.device={device}"))
    assert line.endswith(expected), line


def test_resume_without_a_checkpoint(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "holds no checkpoint to resume from" in one_line_error(cli("run", QUICKSTART, "--resume", "empty"))
    assert "no run of 'quickstart' with a checkpoint" in one_line_error(cli("run", QUICKSTART, "--resume"))


def test_dataset_smaller_than_the_batch(cli):
    line = one_line_error(cli("run", QUICKSTART, "--out", "run", *small(*TINY, "run.batch_size=32")))
    assert "has 16 images, fewer than the batch size 32" in line


def test_unknown_synthetic_attribute(cli):
    line = one_line_error(cli("run", QUICKSTART, "--out", "run", *small(*TINY, 'datasets.faces.attributes=["Smilng"]')))
    assert "synthetic attribute 'Smilng' does not exist (did you mean 'Smiling'?)" in line


def test_rafd_with_train_but_no_test_folder(cli, tmp_path):
    import shutil

    root = write_rafd(tmp_path / "RaFD", per_class=1)
    shutil.rmtree(root / "test")
    line = one_line_error(cli("run", REPO / "recipes" / "stargan_rafd.toml", "--out", "run", *small(f"datasets.rafd.root={root}")))
    assert "has a train/ folder but no test/ or val/ folder" in line


def test_celeba_count_line_that_does_not_match(cli, celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["13", *lines[1:]]) + "\n")
    line = one_line_error(
        cli("run", REPO / "recipes" / "stargan_celeba.toml", "--out", "run", *small(f"datasets.celeba.root={celeba_root}"))
    )
    assert "line 1 says 13 images, but 12 rows follow" in line


def test_csv_value_that_is_not_binary(cli, tmp_path):
    from conftest import random_image

    for i in range(3):
        random_image(tmp_path / "imgs" / f"{i}.png", 32, 32, i)
    (tmp_path / "imgs" / "a.csv").write_text("file,Smiling\n0.png,1\n1.png,yes\n2.png,0\n")
    recipe = QUICKSTART.read_text().replace(
        'type = "synthetic_faces"', f'type = "csv_attributes"\nroot = "{tmp_path / "imgs"}"\ncsv_file = "a.csv"'
    )
    (tmp_path / "csv.toml").write_text(recipe)
    line = one_line_error(cli("run", tmp_path / "csv.toml", "--out", "run", *small("classifier.steps=1")))
    assert "a.csv: line 3, column 'Smiling' is 'yes', expected 1, 0 or -1" in line


def test_a_csv_dataset_root_that_is_a_file_says_so(cli, tmp_path):
    (tmp_path / "imgs").write_text("not a folder")
    recipe = QUICKSTART.read_text().replace(
        'type = "synthetic_faces"', f'type = "csv_attributes"\nroot = "{tmp_path / "imgs"}"\ncsv_file = "a.csv"'
    )
    (tmp_path / "csv.toml").write_text(recipe)
    line = one_line_error(cli("run", tmp_path / "csv.toml", "--out", "run", *small("classifier.steps=1")))
    assert line.endswith(f"image folder '{tmp_path / 'imgs'}' is a file; give the folder of images"), line


def test_a_safetensors_file_that_is_not_an_mdt_checkpoint(cli, tmp_path):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    line = one_line_error(cli("checkpoint", "info", tmp_path / "other.safetensors"))
    assert "is a safetensors file but not an mdt checkpoint" in line


def test_single_input_needs_a_png_output(cli, tmp_path, quickstart_run):
    """The output's suffix is the model's modality's (a picture model writes PNG files)."""
    from conftest import random_image

    photo = random_image(tmp_path / "p.jpg", 40, 40, 1)
    line = one_line_error(cli("translate", "--checkpoint", quickstart_run, "--input", photo, "--output", "out.jpg", "--to", "Smiling"))
    assert "must be a .png file for a single input image" in line
    assert not (tmp_path / "out.jpg").exists()


def test_a_table_written_as_a_value(cli, tmp_path):
    text = QUICKSTART.read_text().replace('[labels]\ntype = "multi_hot"\n', "")
    (tmp_path / "r.toml").write_text('labels = "multi_hot"\n' + text)  # top-level keys come before any table
    assert "'labels' must be a table ([labels]), not a value" in one_line_error(cli("recipe", "check", tmp_path / "r.toml"))


def test_resume_takes_a_run_folder(cli, tmp_path):
    (tmp_path / "step_00000006.safetensors").write_bytes(b"x")
    line = one_line_error(cli("run", REPO / "recipes" / "quickstart.toml", "--resume", "step_00000006.safetensors"))
    assert line == "error: --resume 'step_00000006.safetensors' is a file; give the run folder (a run resumes from its newest checkpoint)"
    line = one_line_error(cli("run", REPO / "recipes" / "quickstart.toml", "--resume", "nowhere/run"))
    assert line == "error: --resume: run folder 'nowhere/run' does not exist"


def test_lpips_needs_its_backbone(cli, tmp_path):
    (tmp_path / "lpips.pth").write_bytes(b"x")
    line = one_line_error(cli("eval", "--checkpoint", tmp_path, "--lpips", "lpips.pth"))
    assert line == "error: --lpips needs its backbone: give --alexnet too"


def test_resuming_a_finished_run_keeps_its_judge_and_metrics(cli, quickstart_run, tmp_path):
    import shutil

    from mdt.logbook import read_log

    run = tmp_path / "run"
    shutil.copytree(quickstart_run, run)
    judge = (run / "classifier" / "classifier.safetensors").read_bytes()
    args = small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2")
    result = cli("run", REPO / "recipes" / "quickstart.toml", "--resume", run, *args)
    assert result.exit_code == 0, result.output
    assert f"the run ended at step 2; its metrics are in {run / 'metrics.json'}" in result.output
    assert (run / "classifier" / "classifier.safetensors").read_bytes() == judge  # not trained again
    assert sum(r["event"] == "metrics" for r in read_log(run / "log.jsonl")) == 1


def test_resuming_with_fewer_iterations_than_done_is_refused_and_touches_nothing(cli, quickstart_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(quickstart_run, run)
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    args = small(
        "datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2", "run.iterations=1"
    )
    line = one_line_error(cli("run", REPO / "recipes" / "quickstart.toml", "--resume", run, *args))
    assert line == f"error: '{run}' is at step 2, past [run] iterations = 1; give iterations of at least 2 to go on"
    after = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert after == before  # no resumed recipe, no log line, no checkpoint


@pytest.mark.parametrize(
    "override,expected",
    [
        ('datasets.rafd.expressions=["angry","angry","happy"]', "[datasets.rafd] rafd: label 'angry' is listed twice"),
        ("run.batch_size=40", "[datasets.rafd] training split: the dataset has 16 images, fewer than the batch size 40"),
    ],
)
def test_a_data_mistake_names_its_dataset_table(cli, tmp_path, override, expected):
    """A label listed twice would train two contradicting columns; a batch larger than a
    dataset must say which of the recipe's datasets is too small."""
    root = write_rafd(tmp_path / "RaFD", per_class=2)
    line = one_line_error(
        cli("run", REPO / "recipes" / "stargan_rafd.toml", "--out", "run", *small(f"datasets.rafd.root={root}", override))
    )
    assert expected in line, line
    assert not (tmp_path / "run" / "checkpoints").exists()
