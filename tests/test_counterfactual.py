"""The counterfactual metric on constructed cases with known answers: a model that changes
nothing, one that draws the true counterfactual, and one that draws it recoloured."""

from __future__ import annotations

import typing

import pytest
import torch
from conftest import measure_on
from mdt_datasets.synthetic import SyntheticFaces
from mdt_ganimation.datasets import SyntheticExpressions
from mdt_metrics.counterfactual import CounterfactualError

from mdt.method import Translator
from mdt.options import Option
from mdt.signatures import type_problem

FACES = SyntheticFaces("test", 32, size=4, test_size=6, seed=3)
TARGETS = [("Blond_Hair", 0, {"Blond_Hair": 1.0}), ("Smiling", 0, {"Smiling": 1.0})]


def to_float(images):
    return images.float() / 127.5 - 1


class _Translator(Translator):
    """'identity', 'truth' (the dataset's own counterfactual, found by matching the input
    to its item), 'recoloured' (the truth moved 0.1 towards the middle grey) or 'mixed'
    (the truth for hair, recoloured for a smile)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def to_labels(self, images, labels, dataset, base=None):
        if self.kind == "identity":
            return images.clone()
        out = []
        for image, label in zip(images, labels, strict=True):
            index = next(i for i in range(len(FACES)) if torch.equal(to_float(FACES[i]["image"]), image))
            out.append(to_float(FACES.counterfactual(index, label)))
        truth = torch.stack(out)
        smiling = FACES.attributes.index("Smiling")
        if self.kind == "mixed" and not (labels[:, smiling] != base[:, smiling]).any():
            return truth  # a hair colour
        return truth if self.kind == "truth" else truth - 0.1 * torch.sign(truth)


def measure(kind: str) -> dict:
    return measure_on(CounterfactualError(), FACES, _Translator(kind), TARGETS)


def test_a_model_that_changes_nothing_scores_the_identity_distance_and_keeps_everything():
    values = measure("identity")
    assert values["preservation_l1"] == 0.0
    assert values["counterfactual_l1"] == pytest.approx(values["identity_l1"]) and values["identity_l1"] > 0.005
    # Independently: the mean [0, 1] distance between each changed input and its truth.
    expected = []
    for i in range(len(FACES)):
        item = FACES[i]
        if item["label"][FACES.attributes.index("Blond_Hair")] == 0:
            wanted = item["label"].clone()
            wanted[[FACES.attributes.index(h) for h in ("Black_Hair", "Blond_Hair", "Brown_Hair")]] = torch.tensor([0.0, 1.0, 0.0])
            expected.append(float((FACES.counterfactual(i, wanted).float() - item["image"].float()).abs().mean() / 255))
    assert values["identity_l1/Blond_Hair"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_the_true_counterfactual_scores_zero():
    values = measure("truth")
    assert values["counterfactual_l1"] == 0.0 and values["preservation_l1"] == 0.0
    assert set(values) == {
        f"{n}/{t}" for n in ("counterfactual_l1", "preservation_l1", "identity_l1") for t in ("Blond_Hair", "Smiling")
    } | {"counterfactual_l1", "preservation_l1", "identity_l1"}


def test_a_recolouring_is_seen_in_both_distances():
    values = measure("recoloured")  # every pixel 0.1 off in [-1, 1]: 0.05 in [0, 1]
    assert values["counterfactual_l1"] == pytest.approx(0.05, abs=1e-6)
    assert values["preservation_l1"] == pytest.approx(0.05, abs=1e-6)


def test_the_means_are_over_targets_whose_values_differ():
    """Exact for Blond_Hair, 0.05 off for Smiling: each target's own value, and their mean."""
    values = measure("mixed")
    assert values["counterfactual_l1/Blond_Hair"] == 0.0 and values["preservation_l1/Blond_Hair"] == 0.0
    assert values["counterfactual_l1/Smiling"] == pytest.approx(0.05, abs=1e-6)
    assert values["preservation_l1/Smiling"] == pytest.approx(0.05, abs=1e-6)
    assert values["counterfactual_l1"] == pytest.approx(0.025, abs=1e-6)
    assert values["preservation_l1"] == pytest.approx(0.025, abs=1e-6)
    assert values["identity_l1"] == pytest.approx((values["identity_l1/Blond_Hair"] + values["identity_l1/Smiling"]) / 2)
    assert values["identity_l1/Blond_Hair"] != pytest.approx(values["identity_l1/Smiling"])


class _Styled(_Translator):
    """A translator whose outputs vary by a ``seed`` and a reference image ``ref`` (StarGAN
    v2's ways): the truth when asked by seed, the truth moved 0.1 when asked by reference."""

    varies = "seed"
    options = (Option("seed", "int", help="a style drawn from noise"), Option("ref", "image", help="a reference image"))

    def __init__(self) -> None:
        super().__init__("truth")
        self.asked: list[str] = []

    def to_labels(self, images, labels, dataset, base=None, seed=None, ref=None):
        self.asked.append("latent" if seed is not None else "reference" if ref is not None else "neither")
        truth = super().to_labels(images, labels, dataset, base)
        return truth if ref is None else truth - 0.1 * torch.sign(truth)


def test_a_translator_with_styles_is_measured_in_each_way():
    translator = _Styled()
    values = measure_on(CounterfactualError(), FACES, translator, TARGETS)
    assert set(translator.asked) == {"latent", "reference"}
    assert values["latent/counterfactual_l1"] == 0.0 and values["latent/preservation_l1"] == 0.0
    assert values["reference/counterfactual_l1"] == pytest.approx(0.05, abs=1e-6)
    assert values["latent/identity_l1"] == values["reference/identity_l1"] > 0.005
    assert "counterfactual_l1" not in values  # every value names its way


def test_counterfactuals_change_only_what_the_label_says():
    item = FACES[0]
    same = FACES.counterfactual(0, item["label"])
    assert torch.equal(same, item["image"])  # its own label: the very image
    flipped = item["label"].clone()
    smiling = FACES.attributes.index("Smiling")
    flipped[smiling] = 1 - flipped[smiling]
    moved = (FACES.counterfactual(0, flipped).int() - item["image"].int()).abs().amax(dim=0) > 0
    rows = moved.nonzero()[:, 0].float() / 32
    assert 0 < moved.float().mean() < 0.1 and rows.min() > 0.55  # a few pixels, all in the lower face (the mouth)


def test_eval_reports_it_for_drawn_faces(cli, tmp_path, quickstart_run):
    import json

    result = cli("eval", "--checkpoint", quickstart_run, "--out", tmp_path / "r", "--metric", "counterfactual")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())["metrics"]
    for name in ("counterfactual_l1", "preservation_l1", "identity_l1"):
        assert 0.0 <= metrics[f"counterfactual/{name}"] <= 1.0
    assert "preservation_l1" in (tmp_path / "r" / "report.html").read_text()
    # By hand, over the run's four held-out faces: for each target, the images it changes
    # (a hair colour: those of another colour; a flip: all), their true counterfactuals
    # drawn by the dataset, and the model's translations; distances in [0, 1] pixel units.
    from mdt_datasets.synthetic import ATTRIBUTES, HAIR

    from mdt.inference import load_translator

    faces = SyntheticFaces("test", 32, size=16, test_size=4)
    translator = load_translator(quickstart_run, device="cpu").translator
    images = torch.stack([to_float(faces[i]["image"]) for i in range(len(faces))])
    labels = faces.labels
    means = {"counterfactual_l1": [], "preservation_l1": [], "identity_l1": []}
    for column, title in enumerate(ATTRIBUTES):
        wanted = labels.clone()
        if title in HAIR:
            wanted[:, :3] = 0.0
            wanted[:, column] = 1.0
        else:
            wanted[:, column] = 1.0 - wanted[:, column]
        rows = [i for i in range(len(faces)) if not torch.equal(wanted[i], labels[i])]
        truth = torch.stack([to_float(faces.counterfactual(i, wanted[i])) for i in rows])
        with torch.no_grad():
            fake = translator.to_labels(images, wanted, 0, base=labels)[rows]
        inputs = images[rows]
        kept = ((truth - inputs).abs().amax(dim=1, keepdim=True) <= 1 / 255).expand_as(inputs)
        expected = {
            "counterfactual_l1": ((fake - truth).abs() / 2).mean().item(),
            "preservation_l1": torch.stack([((f - x).abs() / 2)[k].mean() for f, x, k in zip(fake, inputs, kept, strict=True)])
            .mean()
            .item(),
            "identity_l1": float(
                sum((faces.counterfactual(i, wanted[i]).float() - faces[i]["image"].float()).abs().mean() / 255 for i in rows) / len(rows)
            ),
        }
        for name, value in expected.items():
            assert metrics[f"counterfactual/{name}/{title}"] == pytest.approx(value, rel=1e-4, abs=1e-7), (name, title)
            means[name].append(value)
    for name, values in means.items():
        assert metrics[f"counterfactual/{name}"] == pytest.approx(sum(values) / len(values), rel=1e-4), name


EXPRESSIONS = SyntheticExpressions("test", 32, expressions=("smile",), size=4, test_size=6, seed=1)


class _AllOrNothing(Translator):
    """Draws the truth at full strength whatever strength it is asked for (a translator
    that learned the end points only), or, ``exact``, the truth at the strength asked."""

    def __init__(self, exact: bool) -> None:
        self.exact = exact

    def to_labels(self, images, labels, dataset, base=None):
        out = []
        for image, label, before in zip(images, labels, base, strict=True):
            index = next(i for i in range(len(EXPRESSIONS)) if torch.equal(to_float(EXPRESSIONS[i]["image"]), image))
            asked = label if self.exact else torch.where(label > before, torch.ones_like(label), torch.zeros_like(label))
            out.append(to_float(EXPRESSIONS.counterfactual(index, asked)))
        return torch.stack(out)


def test_continuous_labels_are_measured_part_of_the_way():
    """At strength s the truth is the face drawn at base + s * (target - base): exact for a
    translator that goes part of the way, and for one that always goes all the way the mean
    distance between the faces drawn all and part of the way, computed here from the drawings."""
    metric = CounterfactualError(strengths=[0.5, 1.0])
    targets = [("smile", 0, {"smile": 1.0})]
    exact = measure_on(metric, EXPRESSIONS, _AllOrNothing(exact=True), targets)
    assert exact["counterfactual_l1"] == 0.0 and exact["strength_0.5/counterfactual_l1"] == 0.0
    assert exact["strength_0.5/identity_l1"] < exact["identity_l1"]  # half way is nearer the input
    jumping = measure_on(metric, EXPRESSIONS, _AllOrNothing(exact=False), targets)
    assert jumping["counterfactual_l1"] == 0.0
    expected = []
    for i in range(len(EXPRESSIONS)):
        base = EXPRESSIONS[i]["label"]
        if base[0] < 1:
            full, half = EXPRESSIONS.counterfactual(i, torch.ones(1)), EXPRESSIONS.counterfactual(i, base + 0.5 * (1 - base))
            expected.append(float((full.float() - half.float()).abs().mean() / 255))
    assert jumping["strength_0.5/counterfactual_l1/smile"] == pytest.approx(sum(expected) / len(expected), rel=1e-5)
    assert jumping["strength_0.5/counterfactual_l1"] > 0.001


def test_strengths_leave_labels_that_are_not_continuous_as_they_are():
    """A hair colour cannot be half asked for: binary and categorical labels are measured at
    strength 1 only, whatever strengths are asked."""
    assert measure_on(CounterfactualError(strengths=[0.25, 1.0]), FACES, _Translator("truth"), TARGETS) == measure("truth")


@pytest.mark.parametrize("strengths", [[], [0.0], [0.5, 0.5]])
def test_strengths_that_measure_nothing_are_refused(strengths):
    with pytest.raises(ValueError, match="strengths"):
        CounterfactualError(strengths=strengths)


def test_a_strength_out_of_range_is_named_by_the_recipe_check():
    hint = typing.get_type_hints(CounterfactualError.__init__, include_extras=True)["strengths"]
    assert type_problem([0.5, 1.0], hint) is None
    assert type_problem([0.5, 1.5], hint) == "a list whose items are a number from 0 to 1"
