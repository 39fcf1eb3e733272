"""TensorBoard: scalars, sample grids, the recipe as text and the final metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mdt.loggers import Logger, RunInfo, numbers

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def as_markdown_code(text: str) -> str:
    """TensorBoard renders text as Markdown: indent it so TOML shows verbatim."""
    return "\n".join("    " + line for line in text.splitlines())


class TensorBoardLogger(Logger):
    """Scalars, sample grids, the recipe and the final metrics in TensorBoard event files."""

    requires = ("tensorboard",)

    def __init__(self, folder: str = "tensorboard", images: bool = True) -> None:
        if not folder or Path(folder).is_absolute() or ".." in Path(folder).parts:
            raise ValueError(f"folder = '{folder}' must be a folder name inside the run folder")
        self.folder, self.images = folder, images
        self.writer: SummaryWriter | None = None

    def destination(self) -> str:
        return f"the folder {self.folder}/ in the run folder"

    @property
    def _opened_writer(self) -> SummaryWriter:
        assert self.writer is not None, "mdt opens a logger before it logs to it"
        return self.writer

    def open(self, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: TensorBoard hides what a killed run wrote after the step it resumes from
        purge = None if run.resumed_from is None else run.resumed_from + 1
        self.writer = SummaryWriter(str(run.folder / self.folder), purge_step=purge)
        self.writer.add_text("recipe", as_markdown_code(run.recipe_text), run.resumed_from or 0)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._opened_writer.add_scalar(key, value, step)

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        if self.images:
            self._opened_writer.add_image(tag, image, step, dataformats="HWC")

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        for key, value in numbers(values).items():
            self._opened_writer.add_scalar(f"metrics/{key}", value, step)
        self._opened_writer.add_text("metrics", as_markdown_code(json.dumps(values, indent=2)), step)

    def close(self, finished: bool) -> None:
        if self.writer is not None:
            self.writer.close()
