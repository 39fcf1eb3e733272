"""Synthetic people in RaFD's expressions (``synthetic_rafd``), on synthetic_celeba's face
model: read by the ``rafd`` loader, and able to draw the truth of a joint translation (a
RaFD expression on a CelebA face, a CelebA hair colour on a RaFD person)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mdt_datasets.folders import RAFD_EXPRESSIONS, RaFD
from mdt_datasets.synthetic import SyntheticFaces
from mdt_datasets.synthetic_celeba import ATTRIBUTES, FaceLabels, SyntheticCelebA, as_uint8, draw_parameters, face_attributes, face_seed
from mdt_datasets.synthetic_rafd import FIRST_PERSON, SyntheticRaFD, studio_parameters
from mdt_metrics.counterfactual import CounterfactualError
from PIL import Image

from mdt.errors import MdtError
from mdt.evaluation import Evaluation
from mdt.images import crop_and_resize
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


def drawn_apart(
    source: int,
    number: int,
    expression: str,
    hair: int | None = None,
    male: bool | None = None,
    young: bool | None = None,
    size: int = SIZE,
) -> torch.Tensor:
    """Face ``number`` of set ``source`` (0: CelebA's, 1: RaFD's people, 0-based) drawn by the
    face model itself with these labels (None: its own), cropped as the loaders crop it:
    not through the datasets' ``counterfactual``."""
    face = number if source == 0 else FIRST_PERSON + number
    own_hair, own_male, own_young = face_attributes(4, face)
    parameters = draw_parameters(face_seed(4, face)) if source == 0 else studio_parameters(4, number)
    labels = FaceLabels(
        own_hair if hair is None else hair, own_male if male is None else male, own_young if young is None else young, expression
    )
    return crop_and_resize(Image.fromarray(as_uint8(labels.draw(parameters))), 178, (size, size))


def test_only_sets_drawn_on_the_face_model_draw_each_other_s_labels(folders):
    """The real rafd loader reading the very same pictures has RaFD's label names, but no
    promise that its expressions are this face model's: a truth drawn for it would be a guess."""
    faces, people = celeba(folders[1]), rafd(folders[0])
    assert faces.draws(people) and people.draws(faces)
    assert not faces.draws(RaFD(str(folders[0]), "test", SIZE, crop_size=178))
    assert not people.draws(SyntheticFaces("test", SIZE, size=8, test_size=4))


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
    for i in range(len(faces)):
        neutral = faces[i]["image"]  # these faces are neutral
        happy = faces.counterfactual(i, one_hot(RAFD_EXPRESSIONS, "happy"), RAFD_EXPRESSIONS)
        assert torch.equal(happy, drawn_apart(0, int(faces.files[i].stem) - 1, "happy", size=178))
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
    with pytest.raises(
        MdtError,
        match=r"holds faces of drawing 2, expressions 1, studio 1, seed 4, people 3, test_people 2; this recipe asks for .* people 5",
    ):
        SyntheticRaFD("test", SIZE, root=str(folders[0]), people=5, test_people=2, seed=4)


def as_key(image: torch.Tensor) -> bytes:
    return image.contiguous().numpy().tobytes()


class _Joint(Translator):
    """Translates a face of either set to its truth, drawn by the face model apart from the
    datasets (``exact``), or only within its own dataset, returning the input for the other
    dataset's labels (``own_only``). Across sets it draws what a mask-vector model is asked:
    the other set's expression, or hair colour; sex or age only where asked to change them
    from the judge's reading (``base``)."""

    def __init__(self, sets, own_only: bool) -> None:
        self.sets, self.own_only = sets, own_only
        self.found = {as_key(items[i]["image"].float() / 127.5 - 1): (s, i) for s, items in enumerate(sets) for i in range(len(items))}

    def find(self, image):
        return self.found[as_key(image)]

    def to_labels(self, images, labels, dataset, base=None):
        out = []
        for image, label, read in zip(images, labels, base, strict=True):
            source, index = self.find(image)
            if source == dataset:
                out.append(self.sets[source].counterfactual(index, label).float() / 127.5 - 1)
            elif self.own_only:
                out.append(image)
            elif source == 0:  # a RaFD expression on a CelebA face
                number = int(self.sets[0].files[index].stem) - 1
                out.append(drawn_apart(0, number, RAFD_EXPRESSIONS[int(label.argmax())]).float() / 127.5 - 1)
            else:  # CelebA's labels on a RaFD person
                number, expression = person(self.sets[1], index)
                hair = int(label[:3].argmax()) if label[:3].max() > 0.5 else None
                male, young = (bool(label[j] > 0.5) if label[j] != read[j] else None for j in (3, 4))
                out.append(drawn_apart(1, number - 1, expression, hair, male, young).float() / 127.5 - 1)
        return torch.stack(out)


class _Judge:
    """Reads a face's labels in either set as drawn: a CelebA face's expression is neutral;
    a RaFD person's hair, sex and age are the person's. ``misreads``: every RaFD person's
    sex the other way round, every CelebA face's expression as sad."""

    def __init__(self, sets, misreads: bool = False) -> None:
        self.sets, self.faces, self.misreads = sets, _Joint(sets, True), misreads

    def predict(self, images, dataset):
        rows = []
        for image in images:
            source, index = self.faces.find(image)
            if source == dataset:
                rows.append(self.sets[source][index]["label"])
            elif dataset == 1:  # RaFD's labels of a CelebA face
                rows.append(one_hot(RAFD_EXPRESSIONS, "sad" if self.misreads else "neutral"))
            else:
                number, _ = person(self.sets[source], index)
                hair, male, young = face_attributes(4, FIRST_PERSON + number - 1)
                rows.append(torch.tensor([float(h == hair) for h in range(3)] + [float(male != self.misreads), float(young)]))
        return torch.stack(rows)


EXPRESSIONS_ASKED = ("happy", "sad", "neutral")


def joint_measure(folders, own_only: bool, misreads: bool = False) -> dict:
    sets = [celeba(folders[1]), rafd(folders[0])]
    targets = [(n, 0, {n: 1.0}) for n in ATTRIBUTES] + [(n, 1, {n: 1.0}) for n in EXPRESSIONS_ASKED]
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[s.schema for s in sets],
        test_sets=sets,
        train_sets=sets,
        label_encoder=SimpleNamespace(targets=lambda: targets),
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=lambda: _Joint(sets, own_only)),
    )
    return CounterfactualError()(Evaluation(components, make_classifier=None, classifier=_Judge(sets, misreads), batch_size=8))


def test_joint_translations_are_measured_against_the_other_set_s_labels_drawn(folders):
    """Exact translations score 0 for targets of both sets, from both sets' faces; a model
    that cannot cross between sets scores the untouched input's distance there only.
    A CelebA face asked to stay neutral is not a translation (its truth is itself)."""
    exact = joint_measure(folders, own_only=False)
    titles = {key.split("/")[1] for key in exact if key.startswith("counterfactual_l1/")}
    crossed = {"celeba->happy", "celeba->sad", *(f"rafd->{n}" for n in ATTRIBUTES)}
    assert titles == {*ATTRIBUTES, *EXPRESSIONS_ASKED, *crossed}
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


def test_a_truth_across_sets_keeps_the_face_s_own_labels_whatever_the_judge_reads(folders):
    """The judge reads every RaFD person's sex wrong and every CelebA face as sad: a hair
    colour's truth on a RaFD person keeps the person's own sex (exact translations still
    score 0), and which CelebA faces a RaFD target changes follows the truth, not the
    reading (sad is a change for these neutral faces; neutral is none)."""
    misread = joint_measure(folders, own_only=False, misreads=True)
    assert {f"rafd->{n}" for n in ("Black_Hair", "Blond_Hair", "Brown_Hair")} <= {k.split("/")[1] for k in misread if "/" in k}
    assert all(value == 0.0 for key, value in misread.items() if key.startswith("counterfactual_l1"))
    assert "counterfactual_l1/celeba->sad" in misread and "counterfactual_l1/celeba->neutral" not in misread
