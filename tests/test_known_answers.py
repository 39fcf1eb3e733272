"""Known answers for the numbers a user reads and for the joins between the pieces.

Each metric runs on a constructed case whose right value is worked out here by hand (or
by an independent computation: numpy for FID and KID), with per-target values that
differ, so that an aggregate taken over the wrong things, or a value reported under
another target's key, is wrong. Translation is checked with networks that write the
condition they receive into their output: what ``--to``, ``--from`` and the mask vector
make of a request can then be read back exactly."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mdt_labels.encoders import MaskVector, MultiHot, OneHot
from mdt_stargan.method import StarGANTranslator
from PIL import Image
from test_fid_protocols import _frechet

from mdt.evaluation import Evaluation
from mdt.labels import LabelSchema
from mdt.method import Translator

TOY = LabelSchema("toy", ("Black_Hair", "Blond_Hair", "Smiling"), (("Black_Hair", "Blond_Hair"),))
CELEBA = LabelSchema("celeba", ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"), (("Black_Hair", "Blond_Hair", "Brown_Hair"),))
FACES = LabelSchema("faces", ("Smiling", "Eyeglasses"))
RAFD = LabelSchema("rafd", ("angry", "happy", "sad"), categorical=True)


def to_float(x, train=False):
    return x.float() / 127.5 - 1


# ---------------------------------------------------------------- a world whose images show their labels
#
# Images are (3, 4, 4); label k of the schema is pixel (0, 0, k): 255 for 1, 0 for 0. A
# pixel (1, 0, 0) of 255 marks an image the judge reads the hair of wrongly.


def coded_item(labels, hard=False):
    image = torch.full((3, 4, 4), 128, dtype=torch.uint8)
    for k, value in enumerate(labels):
        image[0, 0, k] = 255 if value else 0
    image[1, 0, 0] = 255 if hard else 0
    return {"image": image, "label": torch.tensor(labels, dtype=torch.float32)}


class WritesLabels(Translator):
    """A perfect translator: the wanted labels written into the label pixels (the rest,
    the hard mark included, kept). ``reconstruct`` does not go back: it returns the
    translation, so the cycle error is the distance the trip moved the image."""

    def to_labels(self, images, labels, dataset, base=None):
        out = images.clone()
        out[:, 0, 0, : labels.shape[1]] = labels * 2 - 1
        return out

    def reconstruct(self, translated, originals, labels, dataset, translated_labels=None):
        return translated


class ReadsLabels:
    """Reads the label pixels, except: the hair of a marked image is read as Black_Hair,
    and Smiling is never read (always 0)."""

    feature_space = "test"

    def predict(self, images, dataset):
        read = (images[:, 0, 0, :3] > 0).float()
        hard = images[:, 1, 0, 0] > 0
        read[hard, 0], read[hard, 1] = 1.0, 0.0
        read[:, 2] = 0.0
        return read


def coded_evaluation(items, schema=TOY, translator=WritesLabels, judge=None, targets=None):
    targets = targets or [(name, 0, {name: 1.0}) for name in schema.names]
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[schema],
        test_sets=[items],
        train_sets=[items],
        label_encoder=SimpleNamespace(targets=lambda: targets),
        augmentation=to_float,
        method=SimpleNamespace(translator=translator),
    )
    return Evaluation(components, make_classifier=None, classifier=judge or ReadsLabels(), batch_size=3)


FOUR = [coded_item([1, 0, 0]), coded_item([1, 0, 1]), coded_item([0, 1, 0], hard=True), coded_item([0, 1, 1])]


def test_translation_accuracy_counts_what_each_target_asks_of_the_translations_it_made():
    """Worked out by hand, per image and target (B = Black_Hair, L = Blond_Hair, S = Smiling;
    the judge reads image 2's hair as B, and S never):

    - real images, every label: 3 + 2 + 1 + 2 of 12 right; per label B 3/4, L 3/4, S 2/4;
    - to B: images 0, 1 are B already (copies, not counted); 2 and 3 are read B and not L:
      right, though 3's smile is misread (the target does not ask for it): 2/2;
    - to L: 0 and 1 read L: 2/2; 2 and 3 are copies, left out (2 would be read wrong);
    - to S (a flip): the judge reads no smile, so only the two that lose theirs: 2/4;
    - target_accuracy pools them: 6/8; every label of every translation: 26/36.
    """
    from mdt_metrics.accuracy import TranslationAccuracy

    values = TranslationAccuracy()(coded_evaluation(FOUR))
    assert values["real_accuracy"] == pytest.approx(8 / 12) and values["real_error"] == pytest.approx(4 / 12)
    assert values["real/Black_Hair"] == 0.75 and values["real/Blond_Hair"] == 0.75 and values["real/Smiling"] == 0.5
    assert values["target/Black_Hair"] == 1.0 and values["target/Blond_Hair"] == 1.0 and values["target/Smiling"] == 0.5
    assert values["target_accuracy"] == 0.75 and values["target_error"] == 0.25
    assert values["translated_accuracy"] == pytest.approx(26 / 36)
    # Pairs name each image's member of the target's group, else the dataset.
    assert values["pair/Blond_Hair->Black_Hair"] == 1.0 and values["pair/Black_Hair->Blond_Hair"] == 1.0
    assert values["pair/toy->Smiling"] == 0.5
    assert "domain_accuracy" not in values  # attributes, not one domain per image


def test_cycle_error_is_the_mean_over_translations_that_moved():
    """The translator does not come back, so an image's cycle error is how far its label
    pixels moved: each changed label pixel by 2 (from -1 to 1), over 48 values. Copies
    (images already in the target) are not trips and are not counted."""
    from mdt_metrics.cycle import CycleError

    values = CycleError()(coded_evaluation(FOUR))
    # To B: images 2 and 3 change two pixels each (B, L). To L: 0 and 1, two each. To S: all four, one each.
    assert values["l1/Black_Hair"] == pytest.approx(4 / 48) and values["l1/Blond_Hair"] == pytest.approx(4 / 48)
    assert values["l1/Smiling"] == pytest.approx(2 / 48)
    assert values["l1"] == pytest.approx((4 * 4 / 48 + 4 * 2 / 48) / 8)


# ---------------------------------------------------------------- FID and KID, wired from features to keys

DOMAINS = ("a", "b", "c")
SHIFT = torch.tensor([[0.3, -0.2, 0.1], [-0.25, 0.15, 0.05], [0.1, 0.2, -0.3]])


class Shifts(Translator):
    """Each target moves the image by its own amount, after a curve that depends on the pixel
    alone (so the result does not depend on how images are batched)."""

    def to_labels(self, images, labels, dataset, base=None):
        return images * 0.85 + 0.1 * images.pow(2) + (labels @ SHIFT)[:, :, None, None]


class PixelFeatures:
    """A judge whose features are six of the image's numbers."""

    feature_space = "pixels"

    def features(self, images, dataset):
        return images.flatten(1)[:, [0, 5, 17, 40, 66, 95]]


def domain_items(per_domain: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "image": (torch.rand(3, 8, 8, generator=g) * 150 + 40 * d).to(torch.uint8),
            "label": torch.nn.functional.one_hot(torch.tensor(d), 3).float(),
        }
        for d in range(3)
        for _ in range(per_domain)
    ]


def domain_evaluation(train_per_domain: int) -> Evaluation:
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[LabelSchema("toy", DOMAINS, categorical=True)],
        test_sets=[domain_items(2, 1)],
        train_sets=[domain_items(train_per_domain, 2)],
        label_encoder=SimpleNamespace(targets=lambda: [(d, 0, {d: 1.0}) for d in DOMAINS]),
        augmentation=to_float,
        method=SimpleNamespace(translator=Shifts),
    )
    return Evaluation(components, make_classifier=None, classifier=PixelFeatures(), batch_size=4)


def reference_kid(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD² with the kernel (x·y / d + 1)³ between two whole sets of one size."""
    d, m = real.shape[1], real.shape[0]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    within = lambda kk: (kk.sum() - np.trace(kk)) / (m * (m - 1))  # noqa: E731
    return float(within(k(real, real)) + within(k(fake, fake)) - 2 * k(real, fake).mean())


def features_of(items, indices, transform=None) -> np.ndarray:
    images = to_float(torch.stack([items[i]["image"] for i in indices]))
    if transform is not None:
        images = transform(images)
    return PixelFeatures().features(images, 0).double().numpy()


def translated_features(test, sources, target: int) -> np.ndarray:
    """Features of the two held-out images of each source, translated into ``target``."""
    wanted = torch.nn.functional.one_hot(torch.tensor([target] * 2), 3).float()
    return np.concatenate([features_of(test, [2 * s, 2 * s + 1], lambda x: Shifts().to_labels(x, wanted, 0)) for s in sources])


def test_fid_and_kid_per_target_under_the_default_protocol_come_from_that_targets_images():
    """pytorch-fid's protocol: one FID (and KID) per target, between the target's real
    training images and every held-out image translated into it; the means over targets."""
    from mdt_metrics.frechet import FrechetDistance

    values = FrechetDistance(kid_subsets=1)(domain_evaluation(train_per_domain=4))
    test, train = domain_items(2, 1), domain_items(4, 2)
    fids, kids = [], []
    for t, name in enumerate(DOMAINS):
        real = features_of(train, range(4 * t, 4 * t + 4))
        fake = translated_features(test, [s for s in range(3) if s != t], t)
        fids.append(_frechet(real, fake))
        kids.append(reference_kid(real, fake))
        assert values[f"fid/{name}"] == pytest.approx(fids[-1], rel=1e-6), name
        assert values[f"kid/{name}"] == pytest.approx(kids[-1], rel=1e-6, abs=1e-9), name
        assert values[f"real_images/{name}"] == 4 and values[f"translated_images/{name}"] == 4
    assert len({round(f, 6) for f in fids}) == 3  # three different values: a key mix-up shows
    assert values["fid_mean"] == pytest.approx(sum(fids) / 3, rel=1e-6)
    assert values["kid_mean"] == pytest.approx(sum(kids) / 3, rel=1e-6)
    assert values["protocol"] == "pytorch-fid" and values["feature_space"] == "classifier (pixels)"
    # Each source's translations into a target, beside the target's own value.
    real_a = features_of(train, range(4))
    assert values["fid/pair/b->a"] == pytest.approx(_frechet(real_a, translated_features(test, [1], 0)), rel=1e-6)


def test_fid_and_kid_under_stargan_v2s_protocol_are_per_task_then_averaged():
    """StarGAN v2's protocol: one value per source -> target task; a target's value is the
    mean of its tasks', and fid_mean the mean over all six tasks."""
    from mdt_metrics.frechet import FrechetDistance

    values = FrechetDistance(protocol="stargan-v2", kid_subsets=1)(domain_evaluation(train_per_domain=2))
    test, train = domain_items(2, 1), domain_items(2, 2)
    tasks = {}
    for t, target in enumerate(DOMAINS):
        real = features_of(train, range(2 * t, 2 * t + 2))
        per_target = []
        for s, source in enumerate(DOMAINS):
            if s != t:
                fake = translated_features(test, [s], t)
                tasks[f"{source}->{target}"] = (_frechet(real, fake), reference_kid(real, fake))
                per_target.append(tasks[f"{source}->{target}"])
                assert values[f"fid/pair/{source}->{target}"] == pytest.approx(tasks[f"{source}->{target}"][0], rel=1e-6)
                assert values[f"kid/pair/{source}->{target}"] == pytest.approx(tasks[f"{source}->{target}"][1], rel=1e-6, abs=1e-9)
        assert values[f"fid/{target}"] == pytest.approx(sum(f for f, _ in per_target) / 2, rel=1e-6)
        assert values[f"kid/{target}"] == pytest.approx(sum(k for _, k in per_target) / 2, rel=1e-6, abs=1e-9)
    assert values["fid_mean"] == pytest.approx(sum(f for f, _ in tasks.values()) / 6, rel=1e-6)
    assert values["kid_mean"] == pytest.approx(sum(k for _, k in tasks.values()) / 6, rel=1e-6, abs=1e-9)


def test_real_features_are_those_of_the_targets_own_training_images():
    from mdt_metrics.features import real_features

    from mdt.evaluation import Target

    evaluation = domain_evaluation(train_per_domain=3)
    got = real_features(evaluation, Target("b", 0, {"b": 1.0}), 1000).numpy()
    np.testing.assert_allclose(got, features_of(domain_items(3, 2), [3, 4, 5]), rtol=1e-6)
    assert real_features(evaluation, Target("b", 0, {"b": 1.0}), 2).shape == (2, 6)  # at most max_images


# ---------------------------------------------------------------- diversity


class StyleOfSeed(Translator):
    """Latent mode: a flat image whose value says which of the K draws made it (the metric
    draws sample k with seed k * 100003 + batch) times the target's number (1 or 2)."""

    varies = "seed"  # its outputs vary with the seed: the diversity metric measures them

    def to_labels(self, images, labels, dataset, base=None, seed=0):
        draw = seed // 100_003
        scale = labels.argmax(dim=1).float() + 1
        return torch.zeros_like(images) + (0.1 * draw * scale)[:, None, None, None]


class MeanFeatures:
    feature_space = "channel means"

    def features(self, images, dataset):
        return images.mean(dim=(2, 3))


def flat_items() -> list[dict]:
    """Four flat 4x4 images of values 100, 110, 120, 130, alternately of domains a and b."""
    return [
        {
            "image": torch.full((3, 4, 4), 100 + 10 * i, dtype=torch.uint8),
            "label": torch.nn.functional.one_hot(torch.tensor(i % 2), 2).float(),
        }
        for i in range(4)
    ]


def two_domain_evaluation(items, translator) -> Evaluation:
    """An evaluation of ``items`` (domains a and b, both targets) by ``translator``, judged by channel means."""
    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[LabelSchema("toy", ("a", "b"), categorical=True)],
        test_sets=[items],
        train_sets=[items],
        label_encoder=SimpleNamespace(targets=lambda: [("a", 0, {"a": 1.0}), ("b", 0, {"b": 1.0})]),
        augmentation=to_float,
        method=SimpleNamespace(translator=translator),
    )
    return Evaluation(components, make_classifier=None, classifier=MeanFeatures(), batch_size=4)


def test_diversity_is_the_mean_distance_over_every_pair_of_an_inputs_outputs():
    """Three draws make flat images 0, 0.1 s and 0.2 s (s = 1 into 'a', 2 into 'b'): pixel
    distances s·0.1·(1, 2, 1) over the three pairs, a mean of s·0.4/3; in the judge's
    features (three equal channel means) √3 times that. Both targets get two inputs each
    (the other domain's), so the overall value is the mean of the two."""
    from mdt_metrics.diversity import Diversity

    evaluation = two_domain_evaluation(flat_items(), StyleOfSeed)
    values = Diversity(samples=3)(evaluation)
    assert values["latent/pixel_l1/a"] == pytest.approx(0.4 / 3, rel=1e-5)
    assert values["latent/pixel_l1/b"] == pytest.approx(0.8 / 3, rel=1e-5)
    assert values["latent/pixel_l1"] == pytest.approx(0.2, rel=1e-5)
    assert values["latent/feature_distance/a"] == pytest.approx(3**0.5 * 0.4 / 3, rel=1e-5)
    assert values["latent/feature_distance"] == pytest.approx(3**0.5 * 0.2, rel=1e-5)
    assert values["distance"] == "L2 in classifier (channel means)"
    assert "diversity, latent-guided: 3 outputs per input" in evaluation.figures


def changed_half(index: int) -> slice:
    """Where held-out image ``index``'s true translation changes it: the left half of an
    even image, the right half of an odd one."""
    return slice(0, 2) if index % 2 == 0 else slice(2, 4)


class HalfTruths(list):
    """Flat held-out images (value 100 + 10 i) whose true translation changes one half
    (what a drawn dataset's ``counterfactual`` says)."""

    def counterfactual(self, index, label):
        truth = self[index]["image"].clone()
        truth[:, :, changed_half(index)] = 255 - truth[:, :, changed_half(index)]
        return truth


class StylesPaintHalves(Translator):
    """Draw k paints the half an image's truth changes 0.1 k·s and the other 0.02 k·s (s:
    the target's number, 1 or 2); which image it is, it reads off the flat value."""

    varies = "seed"

    def to_labels(self, images, labels, dataset, base=None, seed=0):
        draw = seed // 100_003
        scale = labels.argmax(dim=1).float() + 1
        out = torch.zeros_like(images)
        for row, image in enumerate(images):
            index = round(((image[0, 0, 0].item() + 1) * 127.5 - 100) / 10)
            out[row] = 0.02 * draw * scale[row]
            out[row, :, :, changed_half(index)] = 0.1 * draw * scale[row]
        return out


def test_diversity_is_split_by_where_the_true_translation_changes_the_input():
    """Three draws: pairs differ by (1, 2, 1) steps, a mean of 4/3 steps; a step is 0.1·s on
    the half where an image's truth changes it (left or right, by image) and 0.02·s on the
    other. The overall pixel L1 is the mean of the two halves."""
    from mdt_metrics.diversity import Diversity

    values = Diversity(samples=3)(two_domain_evaluation(HalfTruths(flat_items()), StylesPaintHalves))
    for target, s in (("a", 1), ("b", 2)):
        assert values[f"latent/pixel_l1_changed/{target}"] == pytest.approx(0.1 * s * 4 / 3, rel=1e-5)
        assert values[f"latent/pixel_l1_kept/{target}"] == pytest.approx(0.02 * s * 4 / 3, rel=1e-5)
        assert values[f"latent/pixel_l1/{target}"] == pytest.approx(0.06 * s * 4 / 3, rel=1e-5)
    assert values["latent/pixel_l1_kept"] == pytest.approx(0.02 * 1.5 * 4 / 3, rel=1e-5)


def test_diversity_has_no_regions_where_no_truth_is_drawn():
    from mdt_metrics.diversity import Diversity

    values = Diversity(samples=2)(two_domain_evaluation(flat_items(), StylesPaintHalves))
    assert "latent/pixel_l1/a" in values and not any("_changed" in k or "_kept" in k for k in values)


# ---------------------------------------------------------------- the mask vector, for every dataset


def test_the_mask_vector_encodes_reads_and_scores_each_dataset_in_its_own_part():
    """Logits whose CelebA, faces and RaFD parts say different things: each dataset's
    reading and loss come from its own part alone."""
    encoder = MaskVector([CELEBA, FACES, RAFD])
    assert encoder.condition_dim == 5 + 2 + 3 + 3 and encoder.num_classes == 10
    logits = torch.tensor([[2.0, -1, -3, 1, -1, -2, 3, 0.5, -1, 4], [-1.0, 1, 2, -1, 1, 1, -1, 3, 0.2, 0.1]])
    assert encoder.predict(logits, 0).tolist() == [[1, 0, 0, 1, 0], [0, 0, 1, 0, 1]]
    assert encoder.predict(logits, 1).tolist() == [[0, 1], [1, 0]]
    assert encoder.predict(logits, 2).tolist() == [[0, 0, 1], [1, 0, 0]]
    faces = torch.tensor([[1.0, 1], [0, 1]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 5:7], faces, reduction="sum") / 2
    assert encoder.classification_loss(logits, faces, 1).item() == pytest.approx(expected.item())
    expressions = torch.tensor([[0.0, 1, 0], [0, 0, 1]])
    expected = torch.nn.functional.cross_entropy(logits[:, 7:], torch.tensor([1, 2]))
    assert encoder.classification_loss(logits, expressions, 2).item() == pytest.approx(expected.item())
    assert encoder.encode(faces, 1).tolist() == [[0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]]
    assert encoder.encode(expressions, 2)[:, -3:].tolist() == [[0, 0, 1], [0, 0, 1]]


class WritesCondition(torch.nn.Module):
    """A generator that writes the condition it is given into row 0 of channel 0."""

    inputs, outputs = ("images", "labels"), ("image",)

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, images, condition):
        out = images.clone()
        out[:, 0, 0, : condition.shape[1]] = condition * self.scale
        return out


class LogitsInPixels(torch.nn.Module):
    """A discriminator whose domain logits are row 0 of channel 1 of each image."""

    inputs, outputs = ("images",), ("scores", "logits")

    def __init__(self, classes: int):
        super().__init__()
        self.classes = classes

    def forward(self, images):
        return images[:, :1, :2, :2], images[:, 1, 0, : self.classes]


def images_with_logits(rows) -> torch.Tensor:
    images = torch.zeros(len(rows), 3, 16, 16)
    for i, row in enumerate(rows):
        images[i, 1, 0, : len(row)] = torch.tensor(row)
    return images


def condition_of(output: torch.Tensor, encoder) -> list[list[float]]:
    return output[:, 0, 0, : encoder.condition_dim].tolist()


def test_translating_the_second_datasets_images_reads_their_labels_from_its_own_part():
    """Joint training's translator, no --from: an image of 'faces' asked to smile keeps the
    Eyeglasses D reads in the faces part of its logits (not in CelebA's part)."""
    encoder = MaskVector([CELEBA, FACES])
    translator = StarGANTranslator(WritesCondition(), LogitsInPixels(7), encoder, 16)
    #                     celeba part: B  L  Br  M  Y   faces part: Smiling Eyeglasses
    images = images_with_logits([[2, -1, -1, 3, 3, -2, 2], [-1, 2, -1, -3, 2, -2, -2]])
    out = translator.translate(images, to={"Smiling": 1})
    assert condition_of(out, encoder) == [[0, 0, 0, 0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1, 0, 0, 1]]
    out = translator.translate(images, to={"Blond_Hair": 1})  # a CelebA target: CelebA's part is read
    assert condition_of(out, encoder) == [[0, 1, 0, 1, 1, 0, 0, 1, 0], [0, 1, 0, 0, 1, 0, 0, 1, 0]]
    # The grid reads each column's dataset in its own part too.
    rows, titles = translator.grid(images)
    eyeglasses = titles.index("Eyeglasses")
    assert condition_of(torch.stack([row[1 + eyeglasses] for row in rows]), encoder) == [
        [0, 0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1, 0, 1],
    ]


def test_to_sets_exactly_the_named_labels_and_from_overrides_what_d_reads():
    """One dataset: --to Blond_Hair,Male=0 sets those two, clears the other hair colours,
    and keeps Young as D reads it; --from replaces D's reading of what it names."""
    encoder = MultiHot([CELEBA])
    translator = StarGANTranslator(WritesCondition(), LogitsInPixels(5), encoder, 16)
    images = images_with_logits([[2, -1, -1, 3, 3], [-1, -2, 1, 2, -2], [-1, 1, -1, -1, 1]])
    out = translator.translate(images, to={"Blond_Hair": 1, "Male": 0})
    assert condition_of(out, encoder) == [[0, 1, 0, 0, 1], [0, 1, 0, 0, 0], [0, 1, 0, 0, 1]]
    out = translator.translate(images, to={"Male": 1})  # a binary label: the hair D reads stays
    assert condition_of(out, encoder) == [[1, 0, 0, 1, 1], [0, 0, 1, 1, 0], [0, 1, 0, 1, 1]]
    out = translator.translate(images, to={"Male": 1}, known={"Young": 0, "Brown_Hair": 1})
    assert condition_of(out, encoder) == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 1, 1, 0]]
    one_hot = OneHot([RAFD])
    translator = StarGANTranslator(WritesCondition(), LogitsInPixels(3), one_hot, 16)
    out = translator.translate(images_with_logits([[3, 0, 0], [0, 0, 3]]), to={"happy": 1})
    assert condition_of(out, one_hot) == [[0, 1, 0], [0, 1, 0]]


def test_mdt_translate_applies_to_and_from_as_the_generator_given_those_labels(cli, quickstart_run, tmp_path):
    """The command end to end: its output is G(x, c) for the labels worked out here from
    --from and --to (pixels within PNG rounding), and not G(x, c) for a neighbouring c."""
    from mdt.inference import load_translator

    rng = np.random.default_rng(5)
    pixels = rng.integers(30, 220, size=(32, 32, 3), dtype=np.uint8)  # the model's own size: no crop, no resize
    Image.fromarray(pixels).save(tmp_path / "face.png")
    result = cli(
        "translate",
        "--checkpoint",
        quickstart_run,
        "--input",
        tmp_path / "face.png",
        "--output",
        tmp_path / "out.png",
        "--to",
        "Blond_Hair,Smiling=0",
        "--from",
        "Brown_Hair,Glasses,Smiling",
    )
    assert result.exit_code == 0, result.output
    written = torch.from_numpy(np.asarray(Image.open(tmp_path / "out.png").convert("RGB"))).permute(2, 0, 1).float()
    generator = load_translator(quickstart_run, device="cpu").components.method.generator.eval()
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1

    def g(labels):  # Black_Hair, Blond_Hair, Brown_Hair, Glasses, Smiling
        with torch.no_grad():
            out = generator(x, torch.tensor([labels], dtype=torch.float32))
        return (out[0] if isinstance(out, tuple) else out)[0].clamp(-1, 1).add(1).mul(127.5)

    assert (written - g([0, 1, 0, 1, 0])).abs().max() <= 1.0
    for neighbour in ([0, 1, 1, 1, 0], [0, 1, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 1, 1, 0]):
        assert (written - g(neighbour)).abs().max() > 1.0, neighbour
