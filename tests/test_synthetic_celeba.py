"""The harder synthetic faces (``synthetic_celeba``): written in CelebA's layout, read back by
the CelebA loader, and able to draw each face's exact counterfactual."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import measure_on
from mdt_datasets.celeba import CelebA, read_attribute_file
from mdt_datasets.synthetic_celeba import (
    ATTRIBUTES,
    SyntheticCelebA,
    as_uint8,
    draw_celeba_face,
    draw_parameters,
    face_attributes,
    face_seed,
)
from mdt_metrics.counterfactual import CounterfactualError
from PIL import Image

from mdt.errors import MdtError
from mdt.images import crop_and_resize
from mdt.method import Translator

HAIR = ATTRIBUTES[:3]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic") / "faces"
    SyntheticCelebA("test", 64, root=str(root), size=16, test_size=8, seed=2)
    return root


def faces(folder: Path, split: str = "test", size: int = 64) -> SyntheticCelebA:
    return SyntheticCelebA(split, size, root=str(folder), size=16, test_size=8, seed=2)


def test_the_folder_is_celeba_s_layout_and_the_celeba_loader_reads_the_same_faces(folder):
    names, rows = read_attribute_file(folder / "list_attr_celeba.txt")
    assert names == list(ATTRIBUTES) and len(rows) == 24
    assert all(sum(v == 1 for v in values[:3]) == 1 for _, values in rows)  # one hair colour each
    for column in (3, 4):  # Male and Young both occur
        assert {values[column] for _, values in rows} == {-1, 1}
    for split in ("train", "test"):
        drawn, read = faces(folder, split), CelebA(str(folder), split, 64, test_size=8)
        assert len(drawn) == len(read) == (16 if split == "train" else 8)
        for i in range(len(drawn)):
            assert torch.equal(drawn[i]["image"], read[i]["image"]) and torch.equal(drawn[i]["label"], read[i]["label"])
            # What the file holds is the face drawn from its number's seed, with the attributes
            # its label row gives, cropped and resized (drawn here, apart from the files).
            number = int(read.files[i].stem) - 1
            hair, male, young = face_attributes(2, number)
            picture = Image.fromarray(as_uint8(draw_celeba_face(hair, male, young, draw_parameters(face_seed(2, number)))))
            assert torch.equal(read[i]["image"], crop_and_resize(picture, 178, (64, 64)))
            assert read[i]["label"].tolist() == [float(hair == 0), float(hair == 1), float(hair == 2), float(male), float(young)]
    with Image.open(folder / "img_align_celeba" / "000001.png") as image:
        assert image.size == (178, 218) and image.mode == "RGB"


@pytest.mark.parametrize("size", [64, 32])
def test_an_item_redrawn_with_its_own_label_is_the_item(folder, size):
    items = faces(folder, size=size)
    for i in range(len(items)):
        item = items[i]
        assert torch.equal(items.counterfactual(i, item["label"]), item["image"])


def _changed(items: SyntheticCelebA, index: int, attribute: str) -> torch.Tensor:
    """Where flipping ``attribute`` (or choosing that hair colour) changes item ``index``:
    a (H, W) bool mask of the 178-px picture."""
    label = items[index]["label"].clone()
    if attribute in HAIR:
        label[:3] = torch.tensor([float(h == attribute) for h in HAIR])
    else:
        label[ATTRIBUTES.index(attribute)] = 1 - label[ATTRIBUTES.index(attribute)]
    return (items.counterfactual(index, label).int() - items[index]["image"].int()).abs().amax(dim=0) > 0


def _landmarks(folder: Path) -> dict[str, np.ndarray]:
    lines = (folder / "list_landmarks_align_celeba.txt").read_text().splitlines()[2:]
    return {line.split()[0]: np.array([float(v) for v in line.split()[1:]]).reshape(5, 2) for line in lines}


def test_each_attribute_changes_the_face_and_nothing_far_from_it(folder):
    items = faces(folder, size=178)  # the 178 centre crop, not resized
    points = _landmarks(folder)
    for index in range(len(items)):
        centre = points[items.files[index].name][:2].mean(axis=0) - (0, 20)  # between the eyes; the crop starts 20 rows down
        rows, columns = torch.meshgrid(torch.arange(178.0), torch.arange(178.0), indexing="ij")
        # Beyond the hair and the jaw, and beside the neck (which a man's is wider).
        far = (((rows - centre[1]) ** 2 + (columns - centre[0]) ** 2).sqrt() > 110) & ((columns - centre[0]).abs() > 60)
        own_hair = HAIR[int(items[index]["label"][:3].argmax())]
        other_hair = next(h for h in HAIR if h != own_hair)
        for attribute, least in (("Male", 0.04), ("Young", 0.02), (other_hair, 0.04)):
            changed = _changed(items, index, attribute)
            assert changed.float().mean() > least, (index, attribute)
            assert not changed[far].any(), (index, attribute)
        # A hair colour leaves the eyes and the mouth as they were.
        eyes_and_mouth = points[items.files[index].name][[0, 1, 3, 4]] - (0, 20)
        changed = _changed(items, index, other_hair)
        assert not any(changed[round(y), round(x)] for x, y in eyes_and_mouth)


def test_the_landmark_file_names_where_the_eyes_and_mouth_are_drawn(folder):
    """At each listed eye the pixel is dark (an iris), at each mouth corner red-dominant (lips)."""
    for name, points in _landmarks(folder).items():
        pixels = np.asarray(Image.open(folder / "img_align_celeba" / name), dtype=float) / 255
        for x, y in points[:2]:
            assert pixels[round(y), round(x)].max() < 0.4, (name, x, y)
        for x, y in points[3:]:
            red, green, blue = pixels[round(y), round(x)]
            assert red > green + 0.15 and red > blue + 0.15, (name, x, y)


class _Oracle(Translator):
    def __init__(self, items: SyntheticCelebA, truth: bool) -> None:
        self.items, self.truth = items, truth

    def to_labels(self, images, labels, dataset, base=None):
        if not self.truth:
            return images.clone()
        readable = [i for i in range(len(self.items)) if "image" in self.items[i]]
        found = [next(i for i in readable if torch.equal(self.items[i]["image"].float() / 127.5 - 1, x)) for x in images]
        return torch.stack([self.items.counterfactual(i, label) for i, label in zip(found, labels, strict=True)]).float() / 127.5 - 1


def _measure(items: SyntheticCelebA, truth: bool) -> dict[str, float]:
    targets = [("Male", 0, {"Male": 1.0}), ("Young", 0, {"Young": 1.0})]
    return measure_on(CounterfactualError(), items, _Oracle(items, truth), targets)


def test_the_counterfactual_metric_reads_these_faces(folder):
    items = faces(folder)
    unchanged, truth = _measure(items, truth=False), _measure(items, truth=True)
    assert truth["counterfactual_l1"] == 0.0 and truth["preservation_l1"] == 0.0
    assert unchanged["preservation_l1"] == 0.0 and unchanged["counterfactual_l1"] == pytest.approx(unchanged["identity_l1"])
    # Independently: a lone binary attribute is flipped (StarGAN's targets), so every face
    # counts: the mean [0, 1] distance of each face to itself with Male flipped.
    expected = []
    for i in range(len(items)):
        flipped = items[i]["label"].clone()
        flipped[3] = 1 - flipped[3]
        expected.append(float((items.counterfactual(i, flipped).float() - items[i]["image"].float()).abs().mean() / 255))
    assert unchanged["identity_l1/Male"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    assert unchanged["identity_l1/Male"] > 0.01


def test_the_three_hair_colours_alone_are_one_domain_per_face(folder):
    hair = SyntheticCelebA("test", 32, root=str(folder), attributes=HAIR, size=16, test_size=8, seed=2)
    assert hair.schema.categorical and hair.schema.names == HAIR
    assert torch.equal(hair.labels.sum(dim=1), torch.ones(len(hair)))  # exactly one each, as one_hot needs
    assert not faces(folder).schema.categorical  # with Male and Young: attributes, several per face


def test_a_folder_of_other_faces_or_other_files_is_refused_naming_it(folder, tmp_path):
    with pytest.raises(
        MdtError,
        match=r"'.*faces' holds faces of drawing 2, seed 2, count 24; this recipe asks for drawing 2, seed 3, count 24: give another root",
    ):
        SyntheticCelebA("test", 64, root=str(folder), size=16, test_size=8, seed=3)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "photo.jpg").write_bytes(b"x")
    with pytest.raises(MdtError, match=r"root '.*mine' is not a folder of synthetic_celeba faces"):
        SyntheticCelebA("test", 64, root=str(other), size=4, test_size=2)
    assert [p.name for p in other.iterdir()] == ["photo.jpg"]  # nothing of the user's touched


def test_a_lone_hair_colour_and_a_manifest_that_is_no_object_or_no_json_are_refused(folder, tmp_path):
    with pytest.raises(MdtError, match=r"attributes name one hair colour \(Blond_Hair\); name two or all three"):
        SyntheticCelebA("test", 32, root=str(folder), attributes=["Blond_Hair", "Male"], size=16, test_size=8, seed=2)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "synthetic_celeba.json").write_text("[1, 2]")
    with pytest.raises(MdtError, match=r"synthetic_celeba.json' is not a synthetic_celeba manifest"):
        SyntheticCelebA("test", 32, root=str(tmp_path / "odd"), size=4, test_size=2)
    (tmp_path / "odd" / "synthetic_celeba.json").write_text("{")
    with pytest.raises(MdtError, match=r"cannot read '.*odd/synthetic_celeba.json': Expecting property name"):
        SyntheticCelebA("test", 32, root=str(tmp_path / "odd"), size=4, test_size=2)


class _Pairwise(_Oracle):
    """The truth, for a model of two domains: it takes blond faces only (as CycleGAN's
    pair of generators takes its two domains' images)."""

    def accepts(self, labels, dataset):
        return labels[:, 1] > 0.5


def test_the_truth_is_the_held_out_image_s_own_after_unreadable_and_refused_images(folder, tmp_path):
    """The metric asks the dataset for the truth of each translated image by its index: an
    unreadable file before it, or images a model does not take, must not shift that."""
    import shutil

    copy = tmp_path / "faces"
    shutil.copytree(folder, copy)
    items = faces(copy)
    (copy / "img_align_celeba" / items.files[1].name).write_bytes(b"not a png")  # the second held-out face
    items = faces(copy)
    assert "error" in items[1]
    values = _measure(items, truth=True)
    assert values["counterfactual_l1"] == 0.0
    unchanged = _measure(items, truth=False)  # the distance of the 7 readable faces, computed apart
    expected = []
    for i in (0, 2, 3, 4, 5, 6, 7):
        flipped = items[i]["label"].clone()
        flipped[3] = 1 - flipped[3]
        expected.append(float((items.counterfactual(i, flipped).float() - items[i]["image"].float()).abs().mean() / 255))
    assert unchanged["identity_l1/Male"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    blond = [i for i in range(len(items)) if i != 1 and items[i]["label"][1] == 1]
    assert blond, "the held-out faces include a blond one"
    pairwise = measure_on(CounterfactualError(), items, _Pairwise(items, truth=True), [("Male", 0, {"Male": 1.0})])
    assert pairwise["counterfactual_l1"] == 0.0


def test_a_recipe_naming_a_wrong_root_stops_in_one_line(cli, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("mine")
    recipe = tmp_path / "r.toml"
    quickstart = (Path(__file__).parent.parent / "recipes" / "quickstart.toml").read_text()
    recipe.write_text(quickstart.replace('type = "synthetic_faces"', 'type = "synthetic_celeba"\nroot = "mine"'))
    result = cli("run", str(recipe), "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {recipe}: [datasets.faces] root 'mine' is not a folder of synthetic_celeba faces (it has no synthetic_celeba.json); give a new or empty folder"
    ]


def test_an_empty_folder_is_filled_and_two_processes_drawing_at_once_agree(tmp_path):
    (tmp_path / "empty").mkdir()
    assert len(SyntheticCelebA("train", 32, root=str(tmp_path / "empty"), size=4, test_size=2)) == 4
    code = "import sys; from mdt_datasets.synthetic_celeba import SyntheticCelebA; SyntheticCelebA('test', 32, root=sys.argv[1], size=30, test_size=2)"
    both = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "shared")]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in both] == [0, 0]
    assert len(list((tmp_path / "shared" / "img_align_celeba").iterdir())) == 32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "shared"]  # no scratch folder left


def test_a_kill_while_drawing_leaves_no_folder_and_the_next_use_draws_it(tmp_path):
    code = "import sys; from mdt_datasets.synthetic_celeba import SyntheticCelebA; SyntheticCelebA('test', 32, root=sys.argv[1], size=5000, test_size=2)"
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "faces")])
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".faces.") for p in tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # some faces written
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "faces").exists()
    assert len(SyntheticCelebA("test", 32, root=str(tmp_path / "faces"), size=4, test_size=2)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]  # the killed one's scratch removed
