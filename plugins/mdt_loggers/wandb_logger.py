"""Weights & Biases: scalars, sample grids, the recipe and the metrics, offline by default.

Offline, the run is a folder under the run folder's ``wandb/`` that ``wandb sync`` uploads
later: nothing leaves the machine unless the recipe says ``mode = "online"``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from mdt.loggers import Logger, RunInfo, flat, numbers

if TYPE_CHECKING:
    import wandb

RUN_FILE = "wandb_run.json"  # in the run folder: a resumed run goes on in the same W&B run


class WandbLogger(Logger):
    """A W&B run per training run (offline unless mode = "online"): recipe as config, scalars, grids, metrics."""

    requires = ("wandb",)

    def __init__(self, project: str = "mdt", mode: Literal["offline", "online"] = "offline", entity: str = "") -> None:
        if not project:
            raise ValueError("project must not be empty")
        self.project, self.mode, self.entity = project, mode, entity or None
        self.run: wandb.Run | None = None

    def destination(self) -> str:
        return f"W&B project '{self.project}'" + (f" of '{self.entity}'" if self.entity else "") + f" ({self.mode})"

    @property
    def _opened_run(self) -> wandb.Run:
        assert self.run is not None, "mdt opens a logger before it logs to it"
        return self.run

    def open(self, run: RunInfo) -> None:
        import wandb

        record = run.folder / RUN_FILE
        earlier = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        run_id = earlier.get("id") if run.resumed_from is not None else None
        run_id = run_id or secrets.token_hex(4)
        settings = wandb.Settings(silent=True, console="off", save_code=False, disable_git=True, x_disable_stats=True)
        self.run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            dir=str(run.folder),
            name=run.name,
            id=run_id,
            resume="allow",
            config=flat(run.recipe),
            settings=settings,
            reinit="create_new",
        )
        record.write_text(json.dumps({"id": run_id}) + "\n", encoding="utf-8")
        name = "recipe.toml" if run.resumed_from is None else f"recipe.resumed-{run.resumed_from:08d}.toml"
        (Path(self.run.dir) / name).write_text(run.recipe_text, encoding="utf-8")  # the run's files/ go with it
        self.run.save(str(Path(self.run.dir) / name), base_path=self.run.dir, policy="now")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._opened_run.log(values, step=step)

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        import wandb

        self._opened_run.log({tag: wandb.Image(image, caption=path.name)}, step=step)

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        self._opened_run.summary.update({f"metrics/{k}": v for k, v in numbers(values).items()})

    def close(self, finished: bool) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if finished else 1)
