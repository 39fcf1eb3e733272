"""Loggers: where a run's records go besides ``log.jsonl``.

``log.jsonl`` (:mod:`mdt.logbook`) is always written. A recipe's ``[loggers.NAME]``
tables add trackers (TensorBoard, MLflow, W&B, CSV, or a third party's): each is a
registered ``logger`` component, built only on the main process, that receives the
same calls in the same order:

- ``open(run)`` once, with the run folder, the resolved recipe and the step resumed from;
- ``scalars(step, values)`` at every ``log_every``;
- ``image(step, tag, image, path)`` with each sample grid (``image``: H x W x 3 uint8,
  already saved as the PNG ``path``);
- ``checkpoint(step, path)`` after each checkpoint is written;
- ``metrics(step, values)`` once, with the recipe's metrics;
- ``close(finished)`` at the end, also after an error (``finished`` is False then).

A logger that fails after ``open`` is reported once and left out for the rest of the
run: a tracker's hiccup must not cost a 3-day run. One that fails in ``open`` stops the
run before its first step, with one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.markup import escape

from mdt.component import Component
from mdt.errors import MdtError, failure_line


@dataclass(frozen=True)
class RunInfo:
    """What a logger learns when it opens: the run it records."""

    folder: Path
    recipe: dict[str, Any]  # the resolved recipe: every default written out
    recipe_text: str  # the same, as the run's recipe.toml
    resumed_from: int | None  # the step training continues from; None for a new run

    @property
    def name(self) -> str:
        return self.folder.name


class Logger(Component):
    """A logger that ignores everything: subclass it and override what your tracker keeps."""

    def destination(self) -> str | None:
        """Where it writes, in words ("log.csv in the run folder"): two loggers of one run
        with the same destination would write every value twice, and are refused. None:
        nowhere another logger could write."""
        return None

    def open(self, run: RunInfo) -> None:
        pass

    def scalars(self, step: int, values: dict[str, float]) -> None:
        pass

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        pass

    def checkpoint(self, step: int, path: Path) -> None:
        pass

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        pass

    def close(self, finished: bool) -> None:
        pass


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The values a tracker can plot: ints and floats, not flags or text."""
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"run": {"seed": 0}}`` -> ``{"run.seed": 0}``: a recipe as a tracker's parameters."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class Loggers:
    """Every logger of a run, called in turn; see the module's docstring for the calls."""

    def __init__(self, named: Sequence[tuple[str, Logger]], console) -> None:
        self.named = list(named)
        self.console = console

    def open(self, run: RunInfo) -> None:
        """Open every logger; when one cannot, close those already open and stop."""
        for i, (name, logger) in enumerate(self.named):
            try:
                logger.open(run)
            except Exception as exc:
                opened, self.named = self.named[:i], []
                for _, other in opened:
                    with contextlib.suppress(Exception):  # the first failure is the one to report
                        other.close(False)
                raise MdtError(f"[loggers.{name}] could not start: {failure_line(exc)}") from None

    def _each(self, call: str, do) -> None:
        """``do(logger)`` for each logger; ``call`` names it when one fails."""
        for name, logger in list(self.named):
            try:
                do(logger)
            except Exception as exc:
                self.named.remove((name, logger))
                self.console.print(
                    f"[yellow]logger '{name}' failed in {call} ({escape(failure_line(exc))}); training goes on without it[/]",
                    soft_wrap=True,
                )

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        shown = numbers(values)
        self._each("scalars", lambda logger: logger.scalars(step, shown))

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        self._each("image", lambda logger: logger.image(step, tag, image, path))

    def checkpoint(self, step: int, path: Path) -> None:
        self._each("checkpoint", lambda logger: logger.checkpoint(step, path))

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        self._each("metrics", lambda logger: logger.metrics(step, values))

    def close(self, finished: bool) -> None:
        self._each("close", lambda logger: logger.close(finished))
