"""Measuring a trained model: what every metric receives, and the judge classifier's file.

The engine (after training) and ``mdt eval`` build one :class:`Evaluation` and pass it
to each metric. It hands out held-out batches, the translation targets (the sample
grid's columns), the *judge* — a classifier trained on
the real training images, once, when a metric first asks — and the files of pretrained
networks the user gave (``weights``: FID's Inception, LPIPS), which mdt never downloads.
Metrics may add pictures to ``figures``; the report shows them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console

import mdt
from mdt import checkpoint as ckpt
from mdt.build import Components, instantiate
from mdt.data import collate
from mdt.errors import MdtError
from mdt.labels import LabelSchema, column_labels, part_agrees, set_labels
from mdt.recipe import SECTIONS, Recipe, Table
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
        items = (self.components.test_sets if split == "test" else self.components.train_sets)[dataset]
        chosen = spread(len(items), max_images)
        for start in range(0, len(chosen), self.batch_size):
            raw = collate([items[i] for i in chosen[start:start + self.batch_size]])
            if raw.images.numel() == 0:
                continue
            images = self.components.augmentation(raw.images.to(self.device), train=False)
            yield images, raw.labels.to(self.device)


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


# ---------------------------------------------------------------- the judge's file


def classifier_table(recipe: Recipe) -> Table:
    """The recipe's ``[classifier]``, or the default judge (a ResNet-18 from scratch)."""
    return Table("classifier", "classifier", dict(recipe.data.get("classifier", DEFAULT_CLASSIFIER)))


def build_classifier(recipe: Recipe, registry: Registry, schemas: list[LabelSchema], table: Table | None = None):
    return instantiate(recipe, table or classifier_table(recipe), registry, {"schemas": schemas})


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
        evaluation.cache[key] = _measure_real_accuracy(evaluation, max_images)
    return evaluation.cache[key]


def _measure_real_accuracy(evaluation: Evaluation, max_images: int) -> tuple[dict[str, float], dict[str, int]]:
    hits: dict[str, list[float]] = {}
    right = total = 0.0
    images_seen = 0
    for dataset, schema in enumerate(evaluation.schemas):
        for images, labels in evaluation.batches(dataset, max_images):
            images_seen += images.shape[0]
            correct = part_agrees(schema, evaluation.classifier.predict(images, dataset), labels)
            if schema.categorical:  # one class per image: right or wrong as a whole; per class, its images read as it
                whole = correct.all(dim=1)
                right += whole.sum().item()
                total += whole.numel()
            else:
                right += correct.sum().item()
                total += correct.numel()
            for column, label in enumerate(schema.names):
                entry = hits.setdefault(f"real/{label}", [0.0, 0.0])
                counted = labels[:, column] == 1 if schema.categorical else torch.ones_like(correct[:, column])
                entry[0] += (correct[:, column] & counted).sum().item()
                entry[1] += counted.sum().item()
    counted = {k: n for k, (h, n) in hits.items() if n}  # no images: no value
    values = {"real_accuracy": right / max(1.0, total), **{k: hits[k][0] / n for k, n in counted.items()}}
    return values, {"real_accuracy": images_seen, **{k: int(n) for k, n in counted.items()}}


def save_judge(evaluation: Evaluation, table: Table, directory: Path, max_images: int) -> dict[str, float]:
    """``directory/classifier.safetensors``: the evaluation's judge, the table that builds
    it, the label schemas it reads and its accuracy on (at most ``max_images``) real
    held-out images per dataset, with how many each value counts; returns the accuracy."""
    accuracy, images = _real_accuracy(evaluation, max_images)
    ckpt.save_classifier(directory / CLASSIFIER_FILE, weights=evaluation.classifier.state_dict(), table=table.values,
                         schemas=evaluation.schemas, accuracy=accuracy, accuracy_images=images)
    return dict(accuracy)


def load_classifier(path: Path, registry: Registry, schemas: list[LabelSchema], device: torch.device):
    """A judge saved by :func:`save_classifier`, checked against the model's labels."""
    file = path / CLASSIFIER_FILE if path.is_dir() else path
    saved = ckpt.read(file, content=ckpt.CLASSIFIER)
    own = [s.names for s in saved.schemas]
    wanted = [s.names for s in schemas]
    if own != wanted:
        raise MdtError(f"classifier '{file}' reads labels {own}, but the model translates {wanted}; train one on the same recipe")
    values = {k: v for k, v in saved.classifier_table.items() if k != "weights"}  # the file has them
    table = Table("classifier", "classifier", values)
    recipe = Recipe(str(file), {"classifier": table.values})
    classifier = build_classifier(recipe, registry, schemas, table)
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
            changed = ", ".join(f"{k}: {kept.get(k)} -> {wanted.get(k)}" for k in sorted(set(kept) | set(wanted))
                                if kept.get(k) != wanted.get(k))
            console.print(f"[classifier] is not the one the run's judge was trained with ({changed}); training a new judge",
                          markup=False, soft_wrap=True)
            return None
        judge, _ = load_classifier(folder, registry, components.schemas, components.device)
    except MdtError as exc:  # the end of a long run is no place to stop for a judge: train another
        console.print(f"the run's judge cannot be used ({exc}); training a new judge", markup=False, soft_wrap=True)
        return None
    console.print(f"judge classifier: {folder}", markup=False, soft_wrap=True)
    return judge


# ---------------------------------------------------------------- mdt train-classifier, mdt eval


def _fresh_folder(path: Path, overwrite: bool, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise MdtError(f"{option} '{path}' is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise MdtError(f"{option} '{path}' already holds files; pass --overwrite to replace them, or choose another folder")


def train_judge(recipe: Recipe, registry: Registry, out: Path, *, max_images: int = 1000, overwrite: bool = False,
                console: Console | None = None) -> tuple[Path, dict[str, float]]:
    """``mdt train-classifier``: the recipe's judge, trained on its real training images
    and scored on its held-out ones."""
    from mdt.build import build

    console = console or Console(stderr=True)
    _fresh_folder(out, overwrite, "--out")
    components = build(recipe, registry)
    table = classifier_table(recipe)
    evaluation = Evaluation(components, lambda: build_classifier(recipe, registry, components.schemas, table), console=console)
    accuracy = save_judge(evaluation, table, out, max_images)
    return out / CLASSIFIER_FILE, accuracy


def default_metrics(recipe: Recipe, registry: Registry, translator, names: Sequence[str] = (), max_images: int | None = None,
                    settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metrics of ``mdt eval``: those named, else the recipe's ``[metrics]`` (with
    their settings) and every other registered metric that applies to this method.
    ``settings`` (``{"protocol": ("--fid-protocol", value)}``: a value from a command-line
    option) go to every metric whose constructor takes them, like ``max_images``, checked
    against the constructor's annotation."""
    from mdt.recipe import expected_type, format_value, parameters, type_hints, type_problem

    tables = {t.name: t for t in recipe.section("metrics")}
    if names:  # a recipe's metric by its name, or any registered metric by its type
        chosen = {n: tables.get(n) or Table(f"metrics.{n}", "metric", {"type": registry.get("metric", n).name}) for n in names}
    else:
        chosen = dict(tables)
        used = {t.type for t in tables.values()}
        for name in registry.names("metric"):
            if name not in used and name not in chosen:
                chosen[name] = Table(f"metrics.{name}", "metric", {"type": name})
    metrics = {}
    for name, table in chosen.items():
        values = dict(table.values)
        factory = registry.get("metric", values["type"]).factory
        given = {"max_images": ("--max-images", max_images), **(settings or {})}
        hints = type_hints(factory)
        for key, (flag, value) in given.items():
            if value is None or key not in parameters(factory):
                continue
            problem = type_problem(value, expected_type(parameters(factory)[key], hints))
            if problem:
                raise MdtError(f"{flag} {format_value(value)}: metric '{name}' takes {key} {problem}")
            values[key] = value
        metric = instantiate(recipe, Table(table.address, "metric", values), registry, {})
        if names or metric.applies(translator):
            metrics[name] = metric
    return metrics


def _model(path: Path, registry: Registry, device: torch.device, data: Components | None = None):
    """A checkpoint's recipe and built components with its weights loaded. With ``data``,
    the datasets of an already built model are used (a compared model is measured on the
    same held-out images), and the checkpoint must have been trained on the same data."""
    from mdt.build import build
    from mdt.inference import load_networks, model_recipe, read_model, weights_check
    from mdt.recipe import resolved

    file, saved = read_model(path)
    recipe = model_recipe(file, saved, registry)
    if data is None:
        components = build(recipe, registry, device=device, check_network=weights_check(saved, file))
    else:
        ours, theirs = (resolved(r, registry) for r in (recipe, data.recipe))
        if ours.data["datasets"] != theirs.data["datasets"] or recipe.run.image_size != data.settings.image_size:
            raise MdtError(f"'{file}' was trained on other data or another image size than the model it is compared with; "
                           "compare models of the same [datasets] and [run] image_size")
        components = build(recipe, registry, schemas=data.schemas, device=device, check_network=weights_check(saved, file))
        components.train_sets, components.test_sets, components.dataset_names = data.train_sets, data.test_sets, data.dataset_names
    trained_on = [s.names for s in saved.schemas]
    if [s.names for s in components.schemas] != trained_on:
        raise MdtError(f"the datasets of '{file}' now give labels {[s.names for s in components.schemas]}, but the model was trained on {trained_on}")
    load_networks(components, saved)
    return file, saved, recipe, components


def run_folder(file: Path) -> Path:
    return file.parent.parent if file.parent.name == "checkpoints" else file.parent


def evaluate_checkpoint(path: Path, registry: Registry, *, out: Path | None = None, classifier: Path | None = None,
                        weights: Mapping[str, Path] | None = None, metric_names: Sequence[str] = (), max_images: int | None = None,
                        device: str = "auto", overwrite: bool = False, console: Console | None = None,
                        compare: Sequence[Path] = (), settings: Mapping[str, Any] | None = None) -> tuple[Path, dict[str, Any]]:
    """``mdt eval``: every metric on the held-out split; writes ``metrics.json`` and
    ``report.html`` to ``out`` (default: ``<run>/eval-step_<N>``). Each model of
    ``compare`` is measured the same way, on the same held-out images by the same judge,
    and the report puts them side by side."""
    from mdt import report
    from mdt.build import pick_device
    from mdt.grids import grid_image
    from mdt.inference import read_model
    from mdt.logbook import read_log
    from mdt.pretrained import hub_location

    console = console or Console(stderr=True)
    if out is None and (location := hub_location(path)):
        raise MdtError(f"give --out for '{location}': its folder is huggingface_hub's cache, not a place for a report")
    file, saved = read_model(path)
    run_dir = run_folder(file)
    out = out or run_dir / f"eval-step_{saved.step:08d}"
    _fresh_folder(out, overwrite, "--out")
    for name, weight in (weights or {}).items():
        if not Path(weight).is_file():
            raise MdtError(f"--{name} '{weight}' does not exist")
    for other in compare:
        read_model(other)  # a wrong path fails now, not after the first model's metrics
    file, saved, recipe, components = _model(path, registry, pick_device(device, "device"))
    metrics = default_metrics(recipe, registry, components.method.translator(), metric_names, max_images, settings)  # bad settings fail now
    judge, judge_accuracy = None, {}
    classifier = classifier or (run_dir / "classifier" if (run_dir / "classifier" / CLASSIFIER_FILE).is_file() else None)
    if classifier is not None:
        judge, judge_accuracy = load_classifier(classifier, registry, components.schemas, components.device)
        console.print(f"judge classifier: {classifier}", markup=False)
    evaluation = Evaluation(components, lambda: build_classifier(recipe, registry, components.schemas), classifier=judge,
                            weights=weights, console=console)
    results = run_metrics(evaluation, metrics, console)
    compared = {}
    for other in compare:
        other_file, _, _, other_components = _model(other, registry, components.device, data=components)
        console.print(f"compared model: {other_file}", markup=False)
        other_evaluation = Evaluation(other_components, lambda: evaluation.classifier, classifier=evaluation.classifier, weights=weights,
                                      console=console)
        other_evaluation.cache = evaluation.cache  # the judge's readings of real images, real features: the same data
        chosen = default_metrics(recipe, registry, other_evaluation.translator, metric_names, max_images, settings)
        chosen = {k: m for k, m in chosen.items() if m.applies(other_evaluation.translator)}
        name = _unique(run_folder(other_file).name, [run_dir.name, *compared])
        compared[name] = {"checkpoint": str(other_file), "metrics": run_metrics(other_evaluation, chosen, console)}
    figures = {}
    with torch.no_grad():
        for dataset, name in enumerate(components.dataset_names):
            for images, labels in evaluation.batches(dataset, components.settings.sample_count):
                rows, titles = evaluation.translator.grid(images, source=dataset, labels=labels)  # as the run's samples
                figures[f"held-out images of '{name}' translated to every target"] = grid_image(rows, ["input", *titles])
                break
    figures.update(evaluation.figures)
    out.mkdir(parents=True, exist_ok=True)
    if evaluation.classifier_trained:
        judge_accuracy = save_judge(evaluation, classifier_table(recipe), out / "classifier", max_images or 1000)
    about = {
        "checkpoint": str(file),
        "step": saved.step,
        "method": recipe.table("method").type,
        "image size": components.settings.image_size,
        "held-out images": ", ".join(f"{n}: {len(t)}" for n, t in zip(components.dataset_names, components.test_sets)),
        "images measured per metric, at most": f"{max_images} (--max-images)" if max_images else "each metric's own limit",
        "judge classifier": str(classifier or out / "classifier"),
        "judge accuracy on real held-out images": f"{judge_accuracy.get('real_accuracy', float('nan')):.4f}",
        "pretrained weights given": ", ".join(f"{k}: {v}" for k, v in (weights or {}).items()) or "none",
        "mdt version": mdt.__version__,
    }
    for name, entry in compared.items():
        about[f"compared with {name}"] = entry["checkpoint"]
    document = {"about": about, "metrics": results, **({"compared": compared} if compared else {})}
    (out / "metrics.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log = run_dir / "log.jsonl"
    titles = [t.title for t in evaluation.targets]
    side_by_side = {run_dir.name: results, **{name: entry["metrics"] for name, entry in compared.items()}} if compared else {}
    report.write_html(out / "report.html", f"mdt eval: {file.name}", about, results, titles, figures, read_log(log) if log.is_file() else [],
                      compared=side_by_side)
    report.print_tables(console, results, titles, compared=side_by_side)
    return out, results


def _unique(name: str, taken: Sequence[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
