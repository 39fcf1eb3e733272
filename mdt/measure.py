"""``mdt eval`` and ``mdt train-classifier``: a checkpoint's model measured by every metric
that applies on its held-out images (beside other models on the same images and judge),
written as metrics.json and report.html; a recipe's judge trained on its own."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from rich.console import Console

import mdt
from mdt.build import Components, instantiate
from mdt.errors import MdtError
from mdt.evaluation import (
    CLASSIFIER_FILE,
    Evaluation,
    build_classifier,
    classifier_table,
    describe_results,
    load_classifier,
    run_metrics,
    save_judge,
)
from mdt.recipe_layout import Recipe, Table
from mdt.registry import Registry


def _fresh_folder(path: Path, overwrite: bool, option: str) -> None:
    if path.exists() and not path.is_dir():
        raise MdtError(f"{option} '{path}' is a file; give a folder")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise MdtError(f"{option} '{path}' already holds files; pass --overwrite to replace them, or choose another folder")


def train_judge(
    recipe: Recipe, registry: Registry, out: Path, *, max_images: int = 1000, overwrite: bool = False, console: Console | None = None
) -> tuple[Path, dict[str, float]]:
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


def default_metrics(
    recipe: Recipe,
    registry: Registry,
    translator,
    names: Sequence[str] = (),
    max_images: int | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The metrics of ``mdt eval``: those named, else the recipe's ``[metrics]`` (with
    their settings) and every other registered metric that applies to this method.
    ``settings`` (``{"protocol": ("--fid-protocol", value)}``: a value from a command-line
    option) go to every metric whose constructor takes them, like ``max_images``, checked
    against the constructor's annotation."""
    from mdt.signatures import expected_type, format_value, parameters, type_hints, type_problem

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
        assert data.recipe is not None, "build() records the recipe it built from"
        ours, theirs = (resolved(r, registry) for r in (recipe, data.recipe))
        if ours.data["datasets"] != theirs.data["datasets"] or recipe.run.image_size != data.settings.image_size:
            raise MdtError(
                f"'{file}' was trained on other data or another image size than the model it is compared with; "
                "compare models of the same [datasets] and [run] image_size"
            )
        check = weights_check(saved, file)
        components = build(recipe, registry, schemas=data.schemas, statistics=data.statistics, device=device, check_network=check)
        components.train_sets, components.test_sets, components.dataset_names = data.train_sets, data.test_sets, data.dataset_names
    trained_on = [s.names for s in saved.schemas]
    if [s.names for s in components.schemas] != trained_on:
        raise MdtError(
            f"the datasets of '{file}' now give labels {[s.names for s in components.schemas]}, but the model was trained on {trained_on}"
        )
    load_networks(components, saved)
    return file, saved, recipe, components


def run_folder(file: Path) -> Path:
    return file.parent.parent if file.parent.name == "checkpoints" else file.parent


def evaluate_checkpoint(
    path: Path,
    registry: Registry,
    *,
    out: Path | None = None,
    classifier: Path | None = None,
    weights: Mapping[str, Path] | None = None,
    metric_names: Sequence[str] = (),
    max_images: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    console: Console | None = None,
    compare: Sequence[Path] = (),
    settings: Mapping[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """``mdt eval``: every metric on the held-out split; writes ``metrics.json`` and
    ``report.html`` to ``out`` (default: ``<run>/eval-step_<N>``). Each model of
    ``compare`` is measured the same way, on the same held-out images by the same judge,
    and the report puts them side by side."""
    from mdt.build import pick_device

    console = console or Console(stderr=True)
    out, run_dir = _report_folder(path, out, overwrite, weights, compare)
    file, saved, recipe, components = _model(path, registry, pick_device(device, "device"))
    metrics = default_metrics(recipe, registry, components.method.translator(), metric_names, max_images, settings)  # bad settings fail now
    judge, judge_accuracy = None, {}
    classifier = classifier or (run_dir / "classifier" if (run_dir / "classifier" / CLASSIFIER_FILE).is_file() else None)
    if classifier is not None:
        judge, judge_accuracy = load_classifier(classifier, registry, components)
        console.print(f"judge classifier: {classifier}", markup=False)
    evaluation = Evaluation(
        components, lambda: build_classifier(recipe, registry, components.schemas), classifier=judge, weights=weights, console=console
    )
    results = run_metrics(evaluation, metrics, console)
    compared: dict[str, dict[str, Any]] = {}
    for other in compare:
        name, entry = _compared(other, evaluation, recipe, registry, metric_names, max_images, settings)
        compared[_unique(name, [run_dir.name, *compared])] = entry
    figures = {**_sample_figures(evaluation), **evaluation.figures}
    out.mkdir(parents=True, exist_ok=True)
    if evaluation.classifier_trained:
        judge_accuracy = save_judge(evaluation, classifier_table(recipe), out / "classifier", max_images or 1000)
    about = {
        "checkpoint": str(file),
        "step": saved.step,
        "method": recipe.table("method").type,
        "image size": components.settings.image_size,
        "held-out images": ", ".join(f"{n}: {len(t)}" for n, t in zip(components.dataset_names, components.test_sets, strict=True)),
        "images measured per metric, at most": f"{max_images} (--max-images)" if max_images else "each metric's own limit",
        "judge classifier": str(classifier or out / "classifier"),
        "judge accuracy on real held-out images": f"{judge_accuracy.get('real_accuracy', float('nan')):.4f}",
        "pretrained weights given": ", ".join(f"{k}: {v}" for k, v in (weights or {}).items()) or "none",
        "mdt version": mdt.__version__,
        **{f"compared with {name}": entry["checkpoint"] for name, entry in compared.items()},
    }
    _write_report(out, run_dir, file, about, results, evaluation, figures, compared, describe_results(metrics, results))
    return out, results


def _report_folder(path: Path, out: Path | None, overwrite: bool, weights, compare: Sequence[Path]) -> tuple[Path, Path]:
    """The report's folder and the model's run folder; every path given checked before any work."""
    from mdt.hub import hub_location
    from mdt.inference import read_model

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
    return out, run_dir


def _compared(other: Path, evaluation: Evaluation, recipe: Recipe, registry: Registry, metric_names, max_images, settings):
    """Another model measured as the first was: on its held-out images, by its judge."""
    other_file, _, _, other_components = _model(other, registry, evaluation.device, data=evaluation.components)
    evaluation.console.print(f"compared model: {other_file}", markup=False)
    other_evaluation = Evaluation(
        other_components,
        lambda: evaluation.classifier,
        classifier=evaluation.classifier,
        weights=evaluation.weights,
        console=evaluation.console,
    )
    other_evaluation.cache = evaluation.cache  # the judge's readings of real images, real features: the same data
    chosen = default_metrics(recipe, registry, other_evaluation.translator, metric_names, max_images, settings)
    chosen = {k: m for k, m in chosen.items() if m.applies(other_evaluation.translator)}
    results = run_metrics(other_evaluation, chosen, evaluation.console)
    return run_folder(other_file).name, {"checkpoint": str(other_file), "metrics": results}


def _sample_figures(evaluation: Evaluation) -> dict[str, Image.Image]:
    """Each dataset's first held-out images translated to every target, as the run's samples."""
    from mdt.grids import grid_image

    figures = {}
    components = evaluation.components
    with torch.no_grad():
        for dataset, name in enumerate(components.dataset_names):
            for images, labels in evaluation.batches(dataset, components.settings.sample_count):
                rows, titles = evaluation.translator.grid(images, source=dataset, labels=labels)
                grid = grid_image(rows, ["input", *titles], picture=components.modality.preview)
                figures[f"held-out samples of '{name}' translated to every target"] = grid
                break
    return figures


def _write_report(
    out: Path,
    run_dir: Path,
    file: Path,
    about: dict,
    results: dict,
    evaluation: Evaluation,
    figures: dict,
    compared: dict,
    described: dict,
) -> None:
    """metrics.json and report.html in ``out``, and the tables on the console."""
    from mdt import report
    from mdt.logbook import read_log

    document = {"about": about, "metrics": results, **({"compared": compared} if compared else {})}
    (out / "metrics.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    log = run_dir / "log.jsonl"
    titles = [t.title for t in evaluation.targets]
    side_by_side = {run_dir.name: results, **{name: entry["metrics"] for name, entry in compared.items()}} if compared else {}
    report.write_html(
        out / "report.html",
        f"mdt eval: {file.name}",
        about,
        results,
        titles,
        figures,
        read_log(log) if log.is_file() else [],
        compared=side_by_side,
        described=described,
        media=evaluation.media,
    )
    report.print_tables(evaluation.console, results, titles, compared=side_by_side)


def _unique(name: str, taken: Sequence[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
