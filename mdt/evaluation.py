"""Measuring a trained model: what every metric receives, and the judge classifier's file.

The engine (after training) and ``mdt eval`` build one :class:`Evaluation` and pass it
to each metric. It hands out held-out batches, the translation targets (the sample
grid's columns), the *judge* — a classifier trained on
the real training images, once, when a metric first asks — and the files of pretrained
networks the user gave (``weights``: FID's Inception, LPIPS), which mdt never downloads.
Metrics may add pictures to ``figures`` and files to ``media`` (sound, with a player);
the report shows them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console

from mdt import checkpoint as ckpt
from mdt.build import Components, instantiate
from mdt.data import collate
from mdt.errors import MdtError
from mdt.labels import LabelSchema, column_labels, part_agrees, part_loss, set_labels
from mdt.recipe_layout import SECTIONS, Recipe, Table
from mdt.registry import Registry

CLASSIFIER_FILE = ckpt.CLASSIFIER_FILE
DEFAULT_CLASSIFIER = SECTIONS["classifier"].default


@dataclass(frozen=True)
class Target:
    """One translation target: a sample-grid column (a domain, or an attribute to set or flip)."""

    title: str
    dataset: int
    assignments: Mapping[str, float]

    def labels(self, schema: LabelSchema, base: torch.Tensor) -> torch.Tensor:
        """The wanted labels of images whose labels are ``base``."""
        return column_labels(schema, base, self.assignments)

    def flips(self, schema: LabelSchema) -> bool:
        """A single binary attribute outside any group is flipped, so every image changes."""
        if len(self.assignments) != 1 or schema.categorical or schema.continuous:
            return False
        return len(schema.group_of(next(iter(self.assignments)))) == 1

    def holds(self, schema: LabelSchema, labels: torch.Tensor) -> torch.Tensor:
        """(B,) which images already show this target: the real images of its domain.
        For a flip, every image: flipped translations mix both directions. A continuous
        label counts within the tolerance the judge's readings get (``part_agrees``):
        strengths drawn from [0, 1] are never exactly 1."""
        if self.flips(schema):
            return torch.ones(labels.shape[0], dtype=torch.bool, device=labels.device)
        return part_agrees(schema, labels, set_labels(schema, labels, self.assignments)).all(dim=1)


@dataclass(frozen=True)
class Medium:
    """A file a metric puts in the report: a title, its MIME type (``audio/wav``: shown with
    a player) and its bytes, embedded so that the report needs nothing beside it."""

    title: str
    mime: str
    data: bytes


class Evaluation:
    """What metrics work from; see the module's docstring."""

    def __init__(
        self,
        components: Components,
        make_classifier: Callable[[], Any],
        *,
        classifier: Any = None,
        weights: Mapping[str, Path] | None = None,
        console: Console | None = None,
        batch_size: int = 32,
    ) -> None:
        self.components = components
        self._make_classifier = make_classifier
        self._classifier = classifier
        self.classifier_trained = False
        self.weights = dict(weights or {})
        self.cache: dict[Any, Any] = {}  # what metrics share: networks built from weights, real features
        self.console = console or Console(stderr=True)
        self.batch_size = batch_size
        self.figures: dict[str, Image.Image] = {}
        self.media: dict[str, list[Medium]] = {}  # caption -> files the report embeds

    @property
    def device(self) -> torch.device:
        return self.components.device

    @property
    def schemas(self) -> list[LabelSchema]:
        return self.components.schemas

    @cached_property
    def translator(self):
        return self.components.method.translator()

    @property
    def targets(self) -> list[Target]:
        """The translator's own targets, or every column of the label encoder."""
        columns = self.translator.targets()
        if columns is None:
            columns = self.components.label_encoder.targets()
        return [Target(title, dataset, assignments) for title, dataset, assignments in columns]

    @property
    def classifier(self):
        """The judge: the one given, or one trained now on the real training images."""
        if self._classifier is None:
            classifier = self._make_classifier()
            _check_judge_images(classifier, self.components.settings.image_size, "[classifier]")
            steps, datasets = classifier.steps, len(self.components.train_sets)
            count = f"{steps} steps" if datasets == 1 else f"{steps} steps on each of {datasets} datasets"
            self.console.print(f"training the judge classifier ({classifier.feature_space}, {count})", markup=False)
            with torch.enable_grad():
                classifier.fit(self.components.train_sets, self.components.augmentation, self.device)
            self._classifier = classifier
            self.classifier_trained = True
        return self._classifier

    def batches(self, dataset: int, max_images: int, split: str = "test") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(images in [-1, 1] on the device, labels) of ``max_images`` items of a split, spread
        evenly over it (:func:`spread`). Unreadable files are left out: a metric reads what can be read."""
        for _, images, labels in self.indexed_batches(dataset, max_images, split):
            yield images, labels

    def indexed_batches(self, dataset: int, max_images: int, split: str = "test") -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
        """:meth:`batches` with the index in the split of each image: a metric that asks the
        dataset more about an image (its true translation) names it by that index."""
        items = (self.components.test_sets if split == "test" else self.components.train_sets)[dataset]
        chosen = spread(len(items), max_images)
        for start in range(0, len(chosen), self.batch_size):
            indices = chosen[start : start + self.batch_size]
            read = [(i, item) for i in indices if "error" not in (item := items[i])]
            if not read:
                continue
            raw = collate([item for _, item in read])
            images = self.components.augmentation(raw.images.to(self.device), train=False)
            yield [i for i, _ in read], images, raw.labels.to(self.device)


def train_judge_networks(
    networks: torch.nn.ModuleList,
    schemas: list[LabelSchema],
    train_sets,
    augmentation: Callable,
    device: torch.device,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    inputs: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    progress: Callable[[int], None] | None = None,
) -> None:
    """How a judge classifier trains: per dataset, its network takes ``steps`` Adam steps on
    random batches of the real training samples (augmented as the run augments them, then
    ``inputs``), against that dataset's labels. Seeded per dataset, so a judge trained twice
    is the same judge."""
    networks.to(device).train()
    for index, (dataset, schema, network) in enumerate(zip(train_sets, schemas, networks, strict=True)):
        generator = torch.Generator().manual_seed(seed + index)
        optimizer = torch.optim.Adam(network.parameters(), lr)
        for _ in range(steps):
            picks = torch.randint(0, len(dataset), (batch_size,), generator=generator).tolist()
            raw = collate([dataset[i] for i in picks])
            if raw.images.numel() == 0:  # every picked file unreadable
                continue
            samples = augmentation(raw.images.to(device), train=True)
            loss = part_loss(schema, network(inputs(samples)), raw.labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress:
                progress(1)
    networks.eval()


def check_metrics(components: Components, recipe: Recipe) -> None:
    """Every metric of the recipe applies to its method's translations (a metric's
    ``applies(translator)``): refused before training, not after it."""
    translator = components.method.translator()
    for name, metric in components.metrics.items():
        if not metric.applies(translator):
            method = recipe.table("method").type
            raise MdtError(f"{recipe.source}: [metrics.{name}] does not apply to the translations of method '{method}'; remove it")


def _check_judge_images(classifier, image_size: int, where: str) -> None:
    """A classifier's ``images_problem(image_size)``: what keeps it from training on the
    run's images, said before it trains rather than as a traceback."""
    problem = classifier.images_problem(image_size)
    if problem:
        raise MdtError(f"{where} {problem}")


def check_judge(components: Components, recipe: Recipe, registry: Registry) -> None:
    """Before training: the judge the recipe's metrics will train after it builds and can
    train on the run's images, so that a misspelt backbone or one that cannot take the
    image size is found now, not after days of training. Built in a forked random state,
    so the run's own numbers do not change."""
    if not components.metrics:
        return
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        classifier = build_classifier(recipe, registry, components.schemas)
        _check_judge_images(classifier, components.settings.image_size, f"{recipe.source}: [classifier]")


def run_metrics(evaluation: Evaluation, metrics: Mapping[str, Any], console: Console) -> dict[str, Any]:
    """Run each metric; their values keyed ``<metric name>/<value name>``. Every metric's
    ``prepare(evaluation)`` runs first, so that a bad weights file is reported before any
    long computation."""
    for metric in metrics.values():
        metric.prepare(evaluation)
    results: dict[str, Any] = {}
    for name, metric in metrics.items():
        console.print(f"metric [bold]{name}[/]: running")
        values = metric(evaluation)
        for key, value in values.items():
            results[f"{name}/{key}"] = value
        shown = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in list(values.items())[:6])
        shown = shown or "no values (nothing here that it measures)"
        console.print(f"metric [bold]{name}[/]: {shown}{' …' if len(values) > 6 else ''}", soft_wrap=True)
    return results


def describe_results(metrics: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    """(better, meaning, docs) of each result ``<metric name>/<value name>``, as its metric
    describes it (:meth:`mdt.interfaces.Metric.describe`); for the report."""
    described = {}
    for key in results:
        name, _, value = key.partition("/")
        if name in metrics:
            better, meaning = metrics[name].describe(value)
            described[key] = (better, meaning, metrics[name].docs)
    return described


# ---------------------------------------------------------------- the judge's file


def classifier_table(recipe: Recipe) -> Table:
    """The recipe's ``[classifier]``, or the default judge (a ResNet-18 from scratch)."""
    assert DEFAULT_CLASSIFIER is not None, "SECTIONS gives [classifier] a default table"
    return Table("classifier", "classifier", dict(recipe.data.get("classifier", DEFAULT_CLASSIFIER)))


def build_classifier(recipe: Recipe, registry: Registry, schemas: list[LabelSchema], table: Table | None = None, sample=None):
    """The recipe's judge, given the label ``schemas`` and the samples it reads (``sample``:
    by default, what the recipe's datasets declare)."""
    from mdt.samples import declared_samples

    injected = {"schemas": schemas, "sample": sample or declared_samples(recipe, registry)}
    return instantiate(recipe, table or classifier_table(recipe), registry, injected)


def spread(total: int, count: int) -> list[int]:
    """``count`` indices of ``total`` items, evenly spaced from the first: a split listed in
    folder order (RaFD: one expression after another) is sampled across all its classes,
    where its first ``count`` items would hold only the first few."""
    if count >= total:
        return list(range(total))
    return [i * total // count for i in range(count)]


@torch.no_grad()
def real_accuracy(evaluation: Evaluation, max_images: int) -> dict[str, float]:
    """The judge on real held-out images: overall and per label (``real/<label>``).
    Kept in the evaluation's cache: the accuracy metric and the judge's file both report it."""
    return dict(_real_accuracy(evaluation, max_images)[0])


def _real_accuracy(evaluation: Evaluation, max_images: int) -> tuple[dict[str, float], dict[str, int]]:
    """:func:`real_accuracy`'s values and how many images each counts."""
    key = ("real_accuracy", max_images)
    if key not in evaluation.cache:
        evaluation.cache[key] = reading_accuracy(evaluation, max_images, evaluation.classifier.predict, "real")
    return evaluation.cache[key]


def reading_accuracy(
    evaluation: Evaluation, max_images: int, read: Callable[[torch.Tensor, int], torch.Tensor], name: str
) -> tuple[dict[str, float], dict[str, int]]:
    """How well ``read(images, dataset)`` reads the labels of real held-out images: the share
    of labels it reads right (``<name>_accuracy``; with one class per image, the share of
    images), and per label (``<name>/<label>``; for one class per image, its recall), with
    how many images each counts. Reads with the judge (``real``) and with a model's own
    classifier (``label_reading``)."""
    hits: dict[str, list[float]] = {}
    right = total = 0.0
    images_seen = 0
    for dataset, schema in enumerate(evaluation.schemas):
        for images, labels in evaluation.batches(dataset, max_images):
            images_seen += images.shape[0]
            correct = part_agrees(schema, read(images, dataset), labels)
            if schema.categorical:  # one class per image: right or wrong as a whole; per class, its images read as it
                whole = correct.all(dim=1)
                right += whole.sum().item()
                total += whole.numel()
            else:
                right += correct.sum().item()
                total += correct.numel()
            for column, label in enumerate(schema.names):
                entry = hits.setdefault(f"{name}/{label}", [0.0, 0.0])
                counted = labels[:, column] == 1 if schema.categorical else torch.ones_like(correct[:, column])
                entry[0] += (correct[:, column] & counted).sum().item()
                entry[1] += counted.sum().item()
    measured = {k: n for k, (h, n) in hits.items() if n}  # no images: no value
    values = {f"{name}_accuracy": right / max(1.0, total), **{k: hits[k][0] / n for k, n in measured.items()}}
    return values, {f"{name}_accuracy": images_seen, **{k: int(n) for k, n in measured.items()}}


def save_judge(evaluation: Evaluation, table: Table, directory: Path, max_images: int) -> dict[str, float]:
    """``directory/classifier.safetensors``: the evaluation's judge, the table that builds
    it, the label schemas it reads and its accuracy on (at most ``max_images``) real
    held-out images per dataset, with how many each value counts; returns the accuracy."""
    accuracy, images = _real_accuracy(evaluation, max_images)
    ckpt.save_classifier(
        directory / CLASSIFIER_FILE,
        weights=evaluation.classifier.state_dict(),
        table=table.values,
        schemas=evaluation.schemas,
        accuracy=accuracy,
        accuracy_images=images,
    )
    return dict(accuracy)


def load_classifier(path: Path, registry: Registry, components: Components):
    """A judge saved by :func:`save_classifier`, checked against the model's labels, for
    the model's samples."""
    schemas, device = components.schemas, components.device
    file = path / CLASSIFIER_FILE if path.is_dir() else path
    saved = ckpt.read(file, content=ckpt.CLASSIFIER)
    own = [s.names for s in saved.schemas]
    wanted = [s.names for s in schemas]
    if own != wanted:
        raise MdtError(f"classifier '{file}' reads labels {own}, but the model translates {wanted}; train one on the same recipe")
    values = {k: v for k, v in saved.classifier_table.items() if k != "weights"}  # the file has them
    table = Table("classifier", "classifier", values)
    recipe = Recipe(str(file), {"classifier": table.values})
    classifier = build_classifier(recipe, registry, schemas, table, components.sample)
    classifier.load_state_dict(saved.network("classifier"))
    return classifier.to(device), saved.accuracy


def earlier_judge(recipe: Recipe, registry: Registry, components: Components, folder: Path, console: Console):
    """The judge an earlier stretch of this run trained and kept in ``folder``, while the
    recipe's ``[classifier]`` is the one it was trained with: the metrics of a run's
    stretches then come from one judge, and a run taken further trains no other. None
    where there is none to reuse (the reason said)."""
    file = folder / CLASSIFIER_FILE
    if not file.is_file():
        return None
    try:
        saved = ckpt.read(file, content=ckpt.CLASSIFIER)
        kept = {k: v for k, v in saved.classifier_table.items() if k != "weights"}
        wanted = classifier_table(recipe).values
        if kept != wanted:
            changed = ", ".join(
                f"{k}: {kept.get(k)} -> {wanted.get(k)}" for k in sorted(set(kept) | set(wanted)) if kept.get(k) != wanted.get(k)
            )
            console.print(
                f"[classifier] is not the one the run's judge was trained with ({changed}); training a new judge",
                markup=False,
                soft_wrap=True,
            )
            return None
        judge, _ = load_classifier(folder, registry, components)
    except MdtError as exc:  # the end of a long run is no place to stop for a judge: train another
        console.print(f"the run's judge cannot be used ({exc}); training a new judge", markup=False, soft_wrap=True)
        return None
    console.print(f"judge classifier: {folder}", markup=False, soft_wrap=True)
    return judge
