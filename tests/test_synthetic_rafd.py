"""Synthetic people in RaFD's expressions (``synthetic_rafd``), on synthetic_celeba's face
model: read by the ``rafd`` loader, and able to draw the truth of a joint translation (a
RaFD expression on a CelebA face, a CelebA hair colour on a RaFD person)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mdt_datasets.folders import RAFD_EXPRESSIONS, RaFD
from mdt_datasets.synthetic_celeba import ATTRIBUTES, SyntheticCelebA, face_attributes
from mdt_datasets.synthetic_rafd import FIRST_PERSON, SyntheticRaFD
from mdt_metrics.counterfactual import CounterfactualError

from mdt.errors import MdtError
from mdt.evaluation import Evaluation
from mdt.method import Translator

SIZE = 64


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("joint")
    SyntheticRaFD("test", SIZE, root=str(base / "rafd"), people=3, test_people=2, seed=4)
    SyntheticCelebA("test", SIZE, root=str(base / "celeba"), size=8, test_size=6, seed=4)
    return base / "rafd", base / "celeba"


def rafd(folder: Path, split: str = "test", size: int = SIZE) -> SyntheticRaFD:
    return SyntheticRaFD(split, size, root=str(folder), people=3, test_people=2, seed=4)


def celeba(folder: Path, size: int = SIZE) -> SyntheticCelebA:
    return SyntheticCelebA("test", size, root=str(folder), size=8, test_size=6, seed=4)


def person(items: SyntheticRaFD, index: int) -> tuple[int, str]:
    number, expression = items.files[index].stem.split("_", 1)
    return int(number), expression


def one_hot(names, name) -> torch.Tensor:
    return torch.tensor([float(n == name) for n in names])


def test_every_person_in_every_expression_in_rafd_s_layout(folders):
    root, _ = folders
    for split, people in (("train", {1, 2, 3}), ("test", {4, 5})):
        drawn, read = rafd(root, split), RaFD(str(root), split, SIZE, crop_size=178)
        assert read.schema.names == RAFD_EXPRESSIONS and len(drawn) == len(read) == 8 * len(people)
        assert {person(drawn, i)[0] for i in range(len(drawn))} == people  # held-out people are not trained on
        for i in range(len(drawn)):
            assert torch.equal(drawn[i]["image"], read[i]["image"]) and torch.equal(drawn[i]["label"], read[i]["label"])
            assert RAFD_EXPRESSIONS[int(drawn[i]["label"].argmax())] == person(drawn, i)[1]


def test_an_expression_moves_the_features_and_keeps_the_rest(folders):
    """Facing the camera, centred: the neutral face and another expression differ only
    between the eyebrows and the chin, and within the face's width."""
    items = rafd(folders[0], size=178)  # the 178 crop of the 178x218 picture: rows 20..198
    by_name = {person(items, i): items[i]["image"].int() for i in range(len(items))}
    for expression in RAFD_EXPRESSIONS:
        if expression == "neutral":
            continue
        moved = (by_name[(4, expression)] - by_name[(4, "neutral")]).abs().amax(dim=0) > 0
        rows, columns = moved.nonzero(as_tuple=True)
        assert moved.sum() > 40, expression
        assert rows.min() >= 50 and rows.max() <= 145 and (columns - 89).abs().max() <= 45, expression  # brows to chin


def test_a_counterfactual_is_the_same_person_drawn_in_the_other_expression(folders):
    """Checked against the person's own file of that expression, read by the rafd loader."""
    items = rafd(folders[0])
    index = {person(items, i): i for i in range(len(items))}
    for (number, expression), i in index.items():
        assert torch.equal(items.counterfactual(i, items[i]["label"]), items[i]["image"])
        other = "surprised" if expression != "surprised" else "sad"
        assert torch.equal(items.counterfactual(i, one_hot(RAFD_EXPRESSIONS, other)), items[index[(number, other)]]["image"])


def test_a_rafd_expression_on_a_celeba_face_moves_only_the_face_s_features(folders):
    """The CelebA face keeps its pose, hair and background; what changes lies near its mouth
    and eyes, which its landmark file (CelebA's format) locates."""
    faces = celeba(folders[1], size=178)
    landmarks = {}
    for line in (folders[1] / "list_landmarks_align_celeba.txt").read_text().splitlines()[2:]:
        name, *values = line.split()
        landmarks[name] = [int(v) for v in values]
    assert faces.draws(RAFD_EXPRESSIONS) and faces.draws(ATTRIBUTES) and not faces.draws(["Eyeglasses"])
    for i in range(len(faces)):
        neutral = faces.counterfactual(i, one_hot(RAFD_EXPRESSIONS, "neutral"), RAFD_EXPRESSIONS)
        assert torch.equal(neutral, faces[i]["image"])  # these faces are neutral
        happy = faces.counterfactual(i, one_hot(RAFD_EXPRESSIONS, "happy"), RAFD_EXPRESSIONS)
        moved = (happy.int() - neutral.int()).abs().amax(dim=0) > 0
        rows, columns = moved.nonzero(as_tuple=True)
        points = landmarks[faces.files[i].name]
        centres = [(points[0], points[1]), (points[2], points[3]), ((points[6] + points[8]) / 2, (points[7] + points[9]) / 2)]
        nearest = torch.stack([((rows - (y - 20)) ** 2 + (columns - x) ** 2).sqrt() for x, y in centres]).amin(
            dim=0
        )  # the crop drops 20 rows
        assert moved.sum() > 20 and nearest.max() < 32  # a wide smile, and eyes narrowed by it (the face is ~110 px wide)


def test_a_celeba_hair_colour_on_a_rafd_person(folders):
    items = rafd(folders[0])
    for i in range(len(items)):
        number, _ = person(items, i)
        hair, male, young = face_attributes(4, FIRST_PERSON + number - 1)
        own = torch.tensor([float(h == hair) for h in range(3)] + [float(male), float(young)])
        assert torch.equal(items.counterfactual(i, own, ATTRIBUTES), items[i]["image"])
        other = own.clone()
        other[:3] = one_hot(range(3), (hair + 1) % 3)
        changed = (items.counterfactual(i, other, ATTRIBUTES).int() - items[i]["image"].int()).abs().amax(dim=0) > 0
        assert changed[: SIZE // 4].sum() > 20  # the top of the head: hair


def test_expressions_not_rafd_s_are_refused_in_one_line(folders, tmp_path):
    with pytest.raises(MdtError, match="expression 'smirk' is not one of RaFD's: angry, contemptuous"):
        SyntheticRaFD("test", SIZE, root=str(tmp_path / "r"), expressions=["happy", "smirk"])
    with pytest.raises(MdtError, match=r"holds faces of drawing 2, seed 4, people 3, test_people 2; this recipe asks for .* people 5"):
        SyntheticRaFD("test", SIZE, root=str(folders[0]), people=5, test_people=2, seed=4)


def as_key(image: torch.Tensor) -> bytes:
    return image.contiguous().numpy().tobytes()


class _Joint(Translator):
    """Translates a face of either set by drawing its truth (``exact``), or only within its
    own dataset, returning the input for the other dataset's labels (``own_only``)."""

    def __init__(self, sets, own_only: bool) -> None:
        self.sets, self.own_only = sets, own_only
        self.found = {as_key(items[i]["image"].float() / 127.5 - 1): (s, i) for s, items in enumerate(sets) for i in range(len(items))}

    def find(self, image):
        return self.found[as_key(image)]

    def to_labels(self, images, labels, dataset, base=None):
        out = []
        for image, label in zip(images, labels, strict=True):
            source, index = self.find(image)
            if source == dataset:
                out.append(self.sets[source].counterfactual(index, label).float() / 127.5 - 1)
            elif self.own_only:
                out.append(image)
            else:
                out.append(self.sets[source].counterfactual(index, label, self.sets[dataset].schema.names).float() / 127.5 - 1)
        return torch.stack(out)


class _Judge:
    """Reads a face's labels in either set as drawn: a CelebA face's expression is neutral;
    a RaFD person's hair, sex and age are the person's."""

    def __init__(self, sets) -> None:
        self.sets, self.faces = sets, _Joint(sets, True)

    def predict(self, images, dataset):
        rows = []
        for image in images:
            source, index = self.faces.find(image)
            if source == dataset:
                rows.append(self.sets[source][index]["label"])
            elif dataset == 1:  # RaFD's labels of a CelebA face
                rows.append(one_hot(RAFD_EXPRESSIONS, "neutral"))
            else:
                number, _ = person(self.sets[source], index)
                hair, male, young = face_attributes(4, FIRST_PERSON + number - 1)
                rows.append(torch.tensor([float(h == hair) for h in range(3)] + [float(male), float(young)]))
        return torch.stack(rows)


def joint_measure(folders, own_only: bool) -> dict:
    sets = [celeba(folders[1]), rafd(folders[0])]
    targets = [(n, 0, {n: 1.0}) for n in ATTRIBUTES] + [(n, 1, {n: 1.0}) for n in ("happy", "surprised")]
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[s.schema for s in sets],
        test_sets=sets,
        train_sets=sets,
        label_encoder=SimpleNamespace(targets=lambda: targets),
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=lambda: _Joint(sets, own_only)),
    )
    return CounterfactualError()(Evaluation(components, make_classifier=None, classifier=_Judge(sets), batch_size=8))


def test_joint_translations_are_measured_against_the_other_set_s_labels_drawn(folders):
    """Exact translations score 0 for targets of both sets, from both sets' faces; a model
    that cannot cross between sets scores the untouched input's distance there only."""
    exact = joint_measure(folders, own_only=False)
    titles = {key.split("/")[1] for key in exact if key.startswith("counterfactual_l1/")}
    crossed = {"celeba->happy", "celeba->surprised", *(f"rafd->{n}" for n in ATTRIBUTES)}
    assert titles == {*ATTRIBUTES, "happy", "surprised", *crossed}
    assert exact["counterfactual_l1"] == 0.0 and exact["preservation_l1"] == 0.0
    stuck = joint_measure(folders, own_only=True)
    for title in titles:  # within a set, exact; across sets, the input itself
        if title in crossed:
            assert (
                stuck[f"counterfactual_l1/{title}"] == pytest.approx(stuck[f"identity_l1/{title}"])
                and stuck[f"identity_l1/{title}"] > 0.001
            )
        else:
            assert stuck[f"counterfactual_l1/{title}"] == 0.0
