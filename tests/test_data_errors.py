"""Wrong data: one clear line, exit code 2, and nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, small
from test_recipe_errors import one_line_error


def last_line_error(result) -> str:
    """A problem met during training: progress lines may come first, the error is one line last."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and not any(line.startswith("error: ") for line in lines[:-1])
    return lines[-1]


CELEBA = REPO / "recipes" / "stargan_celeba.toml"
RAFD = REPO / "recipes" / "stargan_rafd.toml"


def celeba_run(cli, root: Path, *extra: str):
    return cli(
        "run", CELEBA, "--out", "run", *small(f"datasets.celeba.root={root}", "datasets.celeba.test_size=2", "run.num_workers=0", *extra)
    )


def test_attribute_not_in_the_file(cli, celeba_root):
    line = one_line_error(celeba_run(cli, celeba_root, 'datasets.celeba.attributes=["Blond_Hiar", "Male"]'))
    assert "attribute 'Blond_Hiar' is not in" in line and "list_attr_celeba.txt" in line
    assert "(did you mean 'Blond_Hair'?)" in line


def test_rows_naming_missing_images(cli, celeba_root):
    (celeba_root / "img_align_celeba" / "000003.jpg").unlink()
    line = one_line_error(celeba_run(cli, celeba_root))
    assert "list_attr_celeba.txt names '000003.jpg', which is not in" in line


def test_attribute_file_with_a_short_row(cli, celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 3)[0]
    path.write_text("\n".join(lines) + "\n")
    line = one_line_error(celeba_run(cli, celeba_root))
    assert "list_attr_celeba.txt: line 5 has" in line and "expected 40" in line


def test_attribute_file_with_a_value_other_than_1_or_minus_1(cli, celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    fields = lines[4].split()
    fields[3] = "0"  # the third attribute: Attractive
    lines[4] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    line = one_line_error(celeba_run(cli, celeba_root))
    assert line.endswith("list_attr_celeba.txt: line 5 gives Attractive the value '0'; expected 1 or -1"), line


def test_a_dataset_root_that_is_a_file_is_named_as_such(cli, tmp_path):
    (tmp_path / "root").write_text("not a folder")
    line = one_line_error(celeba_run(cli, tmp_path / "root"))
    assert "root '" in line and "is a file; give the CelebA folder that holds list_attr_celeba.txt and img_align_celeba/" in line
    line = one_line_error(cli("run", RAFD, "--out", "run", *small(f"datasets.rafd.root={tmp_path / 'root'}")))
    assert line.endswith(f"dataset folder '{tmp_path / 'root'}' is a file; give the folder of class folders"), line


def test_truncated_image_is_named_and_nothing_is_written(cli, celeba_root, tmp_path):
    bad = celeba_root / "img_align_celeba" / "000005.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    # 10 training images, batch 2: five iterations are one epoch, so the bad file is read.
    line = last_line_error(celeba_run(cli, celeba_root, "run.iterations=5", "run.checkpoint_every=100", "run.sample_every=100"))
    assert "000005.jpg" in line and "skip_bad_files" in line
    assert not list((tmp_path / "run").glob("checkpoints/*"))


def test_bad_files_can_be_skipped_and_are_counted(cli, celeba_root, tmp_path):
    (celeba_root / "img_align_celeba" / "000005.jpg").write_bytes(b"not a jpeg at all")
    result = celeba_run(cli, celeba_root, "run.iterations=5", "run.skip_bad_files=true")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "000005.jpg" in result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert records[-1]["skipped_files"] == 1


def test_empty_class_folder(cli, rafd_root):
    shutil.rmtree(rafd_root / "train" / "sad")
    (rafd_root / "train" / "sad").mkdir()
    line = one_line_error(cli("run", RAFD, "--out", "run", *small(f"datasets.rafd.root={rafd_root}", "run.num_workers=0")))
    assert "class folder" in line and "train/sad' holds no images" in line


def test_missing_expression_folder(cli, rafd_root):
    shutil.rmtree(rafd_root / "train" / "happy")
    line = one_line_error(cli("run", RAFD, "--out", "run", *small(f"datasets.rafd.root={rafd_root}", "run.num_workers=0")))
    assert "train/happy' does not exist" in line


def test_an_empty_test_folder_says_it_holds_no_class_folders(cli, rafd_root):
    shutil.rmtree(rafd_root / "test")
    (rafd_root / "test").mkdir()
    line = one_line_error(cli("run", RAFD, "--out", "run", *small(f"datasets.rafd.root={rafd_root}", "run.num_workers=0")))
    assert line.endswith(f"test/angry' does not exist; '{rafd_root / 'test'}' holds no class folders"), line


def test_image_too_small_for_the_crop(cli, celeba_root):
    line = one_line_error(celeba_run(cli, celeba_root, "datasets.celeba.crop_size=200"))
    assert "is 178x218, smaller than the 200x200 centre crop" in line


def test_celeba_root_that_does_not_exist(cli, tmp_path):
    line = one_line_error(celeba_run(cli, tmp_path / "nowhere"))
    assert "CelebA attribute file" in line and "nowhere" in line


def test_attribute_file_listing_an_image_twice(cli, celeba_root):
    path = celeba_root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[5] = lines[4]  # line 6 repeats line 5's image (in place of another)
    path.write_text("\n".join(lines) + "\n")
    line = one_line_error(celeba_run(cli, celeba_root))
    assert line.endswith(f"list_attr_celeba.txt: line 6 lists '{lines[4].split()[0]}' again (first on line 5)")


def test_a_bad_file_is_counted_once_over_epochs_and_resumes(cli, celeba_root, tmp_path):
    """Three epochs read the bad file three times: one file skipped, named once, listed once;
    a resumed run goes on counting from its list."""
    (celeba_root / "img_align_celeba" / "000005.jpg").write_bytes(b"not a jpeg at all")
    result = celeba_run(cli, celeba_root, "run.iterations=15", "run.skip_bad_files=true")  # 10 images, batch 2: 5 per epoch
    assert result.exit_code == 0, result.output
    assert sum("000005.jpg" in line for line in result.output.splitlines()) == 1
    listed = (tmp_path / "run" / "skipped_files.txt").read_text().splitlines()
    assert len(listed) == 1 and "000005.jpg" in listed[0]
    assert [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()][-1]["skipped_files"] == 1
    result = cli(
        "run",
        CELEBA,
        "--resume",
        "run",
        *small(
            f"datasets.celeba.root={celeba_root}",
            "datasets.celeba.test_size=2",
            "run.num_workers=0",
            "run.iterations=25",
            "run.skip_bad_files=true",
        ),
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "run" / "skipped_files.txt").read_text().splitlines()) == 1
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r for r in records if r["event"] == "train"][-1]["skipped_files"] == 1


def _faces_giving(change):
    """The built-in synthetic faces, with every item passed through ``change``: a plugin's
    dataset that breaks the item contract."""
    from mdt_datasets.synthetic import SyntheticFaces

    class Broken(SyntheticFaces):
        def __getitem__(self, index):
            return change(super().__getitem__(index))

    return Broken


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            lambda item: {**item, "image": item["image"].float() / 255},
            "[datasets.faces] training item 0: its 'image' is float32 (3, 32, 32); its dataset declares uint8 (3, 32, 32), 0 to 255",
        ),
        (
            lambda item: {**item, "label": item["label"][:2]},
            "[datasets.faces] training item 0: its 'label' is of shape (2,); the dataset's schema has 5 labels, "
            "so a label is a tensor of shape (5,)",
        ),
        (
            lambda item: {"picture": item["image"]},
            "[datasets.faces] training item 0: a dataset's item is {'image': ..., 'label': ...} or {'error': message}, "
            "not dict with keys ['picture']",
        ),
    ],
)
def test_a_plugin_dataset_breaking_the_item_contract_is_named_before_training(cli, monkeypatch, change, expected):
    """Float images in [0, 1] would train on near-black inputs, and a label of the wrong
    size would fail deep in a network with a traceback."""
    from conftest import plugin_module

    import mdt.plugins

    host = mdt.plugins.load_plugins(extra={"broken": plugin_module("broken", ("dataset", "broken_faces", _faces_giving(change)))})
    monkeypatch.setattr(mdt.plugins, "default_host", lambda: host)
    result = cli(
        "run", REPO / "recipes" / "quickstart.toml", "--out", "run", *small("datasets.faces={type='broken_faces', size=16, test_size=4}")
    )
    line = one_line_error(result)
    assert line.endswith(expected), line
    assert not (Path("run") / "checkpoints").exists()
