"""mdt from Python: what a script needs to train a recipe, measure the model and translate
with it, by the names ``import mdt`` offers (docs/api.md)::

    import mdt

    run = mdt.train("quickstart", ["run.iterations=200"])       # a built-in recipe, or a recipe file
    report, metrics = mdt.evaluate(run.run_dir)                  # mdt eval: metrics.json, report.html
    translator = mdt.load_translator(run.run_dir)                # PIL in, PIL out; tensors work too
    translator(picture, to={"Blond_Hair": 1}).save("blond.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from mdt.engine import RunResult
from mdt.engine import train as train_recipe
from mdt.inference import ImageTranslator
from mdt.inference import load_translator as _load_translator
from mdt.measure import evaluate_checkpoint
from mdt.plugins import get_registry
from mdt.recipe import load_recipe as _load_recipe
from mdt.recipe_layout import Recipe
from mdt.runfolder import new_run_dir


def load_recipe(recipe: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """A recipe file, or a built-in recipe by name, with ``overrides`` (``"run.iterations=10"``,
    as ``--set`` takes them), checked against the installed plugins."""
    return _load_recipe(recipe, overrides, get_registry())


def train(
    recipe: str | Path,
    overrides: Sequence[str] = (),
    out: str | Path | None = None,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunResult:
    """``mdt run``: train a recipe (a file, or a built-in recipe's name) into ``out``
    (default ``runs/<recipe name>``, never reused); with ``resume``, go on in ``out``."""
    run_dir = Path(out) if out is not None else new_run_dir(str(recipe))
    return train_recipe(load_recipe(recipe, overrides), get_registry(), run_dir, resume=resume, console=console)


def evaluate(checkpoint: str | Path, **options: Any) -> tuple[Path, dict[str, Any]]:
    """``mdt eval``: every metric on the model's held-out images; returns the report's
    folder and the values. ``options`` are :func:`mdt.measure.evaluate_checkpoint`'s
    (``out``, ``classifier``, ``metric_names``, ``max_images``, ``compare``, ...)."""
    return evaluate_checkpoint(Path(checkpoint), get_registry(), **options)


def load_translator(path: str | Path, device: str = "auto") -> ImageTranslator:
    """A trained model ready to translate: a run folder, a checkpoint file, a model folder
    (mdt save-pretrained) or ``hf://OWNER/NAME``."""
    return _load_translator(path, device)
