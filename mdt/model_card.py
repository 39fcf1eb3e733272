"""The README.md of a model folder: a model card in the Hugging Face Hub's form.

Its front matter (licence, datasets, labels, and the metrics in ``model-index``) is made
by huggingface_hub's ``ModelCardData``, which timm, and so mdt, always installs, so that
``ModelCard.load`` and the Hub read it as they read their own. Its body says what the
model is, what it scored and where the numbers come from, how to use it (shell and
Python, each runnable as written from the folder beside it), what it is for and not for,
how it was trained, and which paper to cite. What a plugin knows, it declares: a method
its paper (``Method.citation``), a dataset its terms (``Dataset.terms``) and whether it
shows real people (``Dataset.shows_people``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from mdt import checkpoint as ckpt
from mdt.errors import MdtError
from mdt.hub import SAMPLE

NOT_STATED = "not stated"  # the card of a model saved without a licence: "other" on the Hub, named so
ERROR_KINDS = ("error", "mae", "l1")  # a value's own kind, where its name says it: lower is better
LOWER_IS_BETTER = ("fid", "kid", "error", "mae", "l1", "cycle")
HIGHER_IS_BETTER = ("accuracy", "diversity", "lpips")


@dataclass
class CardFacts:
    """What a card says, gathered by mdt.pretrained from the checkpoint and its run."""

    name: str  # the model folder's name: the model-index entry, and the path in the commands
    saved: ckpt.Checkpoint
    licence: str
    metrics: dict[str, float] = field(default_factory=dict)
    measured: list[str] = field(default_factory=list)  # where the metrics come from, in words
    has_sample: bool = False
    grid_flags: str = ""  # the options a grid needs, as mdt translate flags
    grid_keywords: str = ""  # the same, as Python keyword arguments
    training_time: str = ""  # from the run's log, where there is one


def model_card(facts: CardFacts) -> str:
    """The whole README.md: front matter, then the sections of the body."""
    recipe = tomllib.loads(facts.saved.recipe_text)
    plugins = _plugin_facts(recipe)
    front = _card_data(facts, recipe, plugins.task).to_yaml()
    body = [
        *_summary(facts, recipe, plugins),
        *_results(facts, plugins),
        *_usage(facts),
        *_intended_use(facts, recipe, plugins),
        *_training(facts, recipe),
        *_citation(plugins),
    ]
    return f"---\n{front}\n---\n\n" + "\n".join(body)


def _datasets(recipe: dict) -> list[str]:
    return sorted({table.get("type", name) for name, table in recipe.get("datasets", {}).items()})


def _card_data(facts: CardFacts, recipe: dict, task: str) -> ModelCardData:
    """The front matter: the Hub's fields (``task``: the pipeline tag of the samples'
    modality), mdt's labels, and every metric in ``model-index``."""
    datasets = _datasets(recipe)
    method = recipe.get("method", {}).get("type", "?")
    stated = facts.licence != NOT_STATED
    results = [
        EvalResult(
            task_type=task,
            dataset_type=", ".join(datasets),
            dataset_name=", ".join(datasets),
            metric_type=metric_type(key),
            metric_value=value,
            metric_name=key,
        )
        for key, value in sorted(facts.metrics.items())
    ]
    return ModelCardData(
        library_name="mdt",
        license=facts.licence if stated else "other",
        license_name=None if stated else "not-stated",
        pipeline_tag=task,
        tags=["mdt", method, task],
        datasets=datasets,
        labels=[label for schema in facts.saved.schemas for label in schema.names],
        metrics=sorted({key.split("/")[0] for key in facts.metrics}) or None,
        model_name=facts.name if results else None,
        eval_results=results or None,
    )


@dataclass
class _PluginFacts:
    description: str = ""
    citation: str = ""
    terms: dict[str, str] = field(default_factory=dict)  # by dataset table name
    shows_people: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)  # metric classes by table name: they say which way is better
    task: str = "image-to-image"  # the Hub's pipeline tag of the samples' modality (Modality.task)


def _plugin_facts(recipe: dict) -> _PluginFacts:
    """What the method's and datasets' plugins declare; nothing where one is not installed."""
    from mdt.interfaces import Dataset, Metric
    from mdt.method import Method
    from mdt.plugins import get_registry

    registry, facts = get_registry(), _PluginFacts()
    try:
        method = registry.get("method", recipe.get("method", {}).get("type", "")).factory_class(Method)
        facts.description = registry.get("method", recipe["method"]["type"]).description
        facts.citation = method.citation
    except (MdtError, KeyError):
        pass
    for name, table in recipe.get("datasets", {}).items():
        try:
            dataset = registry.get("dataset", table.get("type", name)).factory_class(Dataset)
        except MdtError:
            continue
        facts.terms[name] = dataset.terms
        facts.shows_people |= dataset.shows_people
        facts.task = _task(registry, dataset, table, recipe.get("run", {}).get("image_size", 128)) or facts.task
    for name, table in recipe.get("metrics", {}).items():
        try:
            facts.metrics[name] = registry.get("metric", table.get("type", name)).factory_class(Metric)
        except MdtError:
            continue
    return facts


def _summary(facts: CardFacts, recipe: dict, plugins: _PluginFacts) -> list[str]:
    saved, method = facts.saved, recipe.get("method", {}).get("type", "?")
    size = recipe.get("run", {}).get("image_size")
    made = (
        f"A `{method}` model imported from {saved.origin} (its step {saved.step})"
        if saved.origin
        else f"A `{method}` model trained with mdt for {saved.step} iterations"
    )
    pixels = f", translating {size} x {size} px images" if size else ""
    what = f" {plugins.description.rstrip('.')}." if plugins.description else ""
    return [
        f"# {method} on {', '.join(_datasets(recipe))}" + (f", {size} px" if size else ""),
        "",
        f"{made}, on {', '.join(_datasets(recipe))}{pixels}.{what} This folder is `{facts.name}`.",
        "",
        f"Licence: {licence_text(facts.licence)}.",
        "",
        "Labels, by dataset: " + "; ".join(f"{s.dataset}: {', '.join(s.names)}" for s in saved.schemas) + ".",
        "",
    ]


def _results(facts: CardFacts, plugins: _PluginFacts) -> list[str]:
    lines: list[str] = []
    if facts.metrics:
        lines += ["## Results", "", f"Measured on the held-out images by {' and '.join(facts.measured)}.", ""]
        lines += ["| metric | value | better |", "| --- | --- | --- |"]
        lines += [f"| {k} | {v:.4g} | {_better(k, plugins)} |" for k, v in sorted(facts.metrics.items())]
        lines += ["", "docs/evaluation.md in mdt says what each measures and how.", ""]
    if facts.has_sample:
        lines += [f"![samples: each input, then its translation to every target]({SAMPLE})", ""]
    return lines


def _usage(facts: CardFacts) -> list[str]:
    """How to use it: the plugins to install, then translate (shell and Python) and train again."""
    name, saved = facts.name, facts.saved
    packages = sorted({p["distribution"] for p in saved.plugins})
    lines = ["## Use it", "", "```bash", f"pip install mdt-translate {' '.join(packages)}".rstrip(), "```", ""]
    if packages:
        uses = ", ".join(
            f"{p['kind']} `{p['name']}` ({p['distribution']} {p.get('version', '')})".replace(" )", ")") for p in saved.plugins
        )
        lines += [f"It uses components of mdt plugins ({uses}), which the line above installs.", ""]
    lines += [
        f"From the folder that holds `{name}` (downloaded from the Hub: `--checkpoint hf://OWNER/{name}`), translate "
        f"(the model's own options: `mdt translate --checkpoint {name} --help`):",
        "",
        "```bash",
        f"mdt translate --checkpoint {name} --input photo.jpg --output out.png --grid{facts.grid_flags}",
        "```",
        "",
        "or from Python (`translator.options` lists what it takes):",
        "",
        "```python",
        "from PIL import Image",
        "",
        "from mdt import load_translator",
        "",
        f'translator = load_translator("{name}")',
        f'translator.grid(Image.open("photo.jpg"){facts.grid_keywords}).save("grid.png")',
        "```",
        "",
        "and train it again (the recipe names the data it was trained on):",
        "",
        "```bash",
        f"mdt run {name}/recipe.toml",
        "```",
        "",
    ]
    return lines


def _task(registry, dataset, table: dict, image_size: int) -> str:
    """The pipeline tag of the modality of a dataset's samples; "" where it cannot be told."""
    from mdt.interfaces import Modality

    try:
        modality = dataset.samples({k: v for k, v in table.items() if k != "type"}, image_size).modality
        return registry.get("modality", modality).factory_class(Modality).task
    except (MdtError, ValueError, TypeError, KeyError):
        return ""


def _intended_use(facts: CardFacts, recipe: dict, plugins: _PluginFacts) -> list[str]:
    size = recipe.get("run", {}).get("image_size", "its training")
    labels = ", ".join(label for schema in facts.saved.schemas for label in schema.names)
    lines = [
        "## Intended use and limitations",
        "",
        f"- For research on, and demonstrations of, multi-domain {plugins.task} translation.",
        f"- It changes only the labels it was trained on ({labels}), and only as far as its training data showed them. "
        f"Inputs are resized to {size} px; images unlike its training data (other framing, other subjects) "
        "translate worse, often without any sign.",
        "- Its metrics come from mdt's own judge classifier and feature space unless the results say otherwise: "
        "compare them with other mdt models, not with published numbers.",
    ]
    for name, table in recipe.get("datasets", {}).items():
        terms = plugins.terms.get(name) or (
            f"not known to its dataset plugin: check the terms of the data under `{table.get('root', '?')}` before you share the model"
        )
        lines.append(f"- Training data `{name}` ({table.get('type', name)}): {terms}.")
    if plugins.shows_people:
        lines.append(
            "- It edits photographs of people: do not use it to deceive, to impersonate anyone, or on a person's image "
            "without their consent, and say that its outputs are generated."
        )
    return [*lines, ""]


def _training(facts: CardFacts, recipe: dict) -> list[str]:
    run = recipe.get("run", {})
    settings = [f"{facts.saved.step} iterations"]
    settings += [f"{label} {run[key]}" for key, label in (("batch_size", "batch size"), ("image_size", "image size")) if key in run]
    settings += [f"precision {run['precision']}"] if "precision" in run else []
    lines = ["## Training", "", f"`recipe.toml` is the whole recipe: {', '.join(settings)}."]
    if facts.training_time:
        lines += ["", facts.training_time]
    return [*lines, ""]


def _citation(plugins: _PluginFacts) -> list[str]:
    if not plugins.citation:
        return []
    return ["## Citation", "", "The method's paper:", "", "```bibtex", plugins.citation.strip(), "```", ""]


def _better(key: str, plugins: _PluginFacts) -> str:
    """Which way a value is better: as its metric says, else as its name says (:func:`direction`)."""
    name, _, value = key.partition("/")
    said = plugins.metrics[name].describe(value)[0] if name in plugins.metrics else ""
    return said or direction(key)


def licence_text(licence: str) -> str:
    if licence == NOT_STATED:
        return "not stated by whoever saved the model; ask them before you reuse the weights"
    if licence == "other":
        return "the author's own, named by license_name and license_link in this card's front matter"
    return licence


def metric_type(key: str) -> str:
    """The Hub's metric type of a metrics.json key: its metric's name ("accuracy/target/smile"
    is an accuracy), unless the value names an error of its own ("accuracy/real_error" is
    an error, not an accuracy, and a card would show 1.0 as a perfect score)."""
    metric, *rest = key.split("/")
    for part in rest:
        kind = next((k for k in ERROR_KINDS if part == k or part.endswith("_" + k)), None)
        if kind:
            return kind
    return metric


def direction(key: str) -> str:
    """Whether a higher or a lower value of a metric is better; a count of images is neither."""
    if any(part.endswith("images") for part in key.split("/")):
        return "(a count)"
    kind = metric_type(key)
    words = [kind, *key.split("/", maxsplit=1)[0].split("_")]
    if any(word in LOWER_IS_BETTER for word in words):
        return "lower"
    if any(word in HIGHER_IS_BETTER for word in words):
        return "higher"
    return ""


def card_metrics(text: str) -> dict[str, Any]:
    """The metrics of a card written before model folders held metrics.json: front-matter
    lines ``  "name": value`` under ``metrics:``."""
    import json

    lines = text.split("---\n")[1].splitlines() if text.startswith("---\n") else []
    found, inside = {}, False
    for line in lines:
        if not line.startswith("  "):
            inside = line.strip() == "metrics:"
            continue
        if inside and '": ' in line:
            key, _, value = line.strip().rpartition(": ")
            try:
                found[json.loads(key)] = float(value)
            except ValueError:
                continue
    return found
