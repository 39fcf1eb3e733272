"""MLflow: the recipe as parameters, the curves as metrics, grids and checkpoints as artifacts."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mdt.loggers import Logger, RunInfo, flat, numbers

if TYPE_CHECKING:
    from mlflow import MlflowClient

RUN_FILE = "mlflow_run.json"  # in the run folder: a resumed run goes on in the same MLflow run
MAX_PARAMS_PER_CALL = 100  # MLflow's limit for one log_batch


def tracking_uri(location: str) -> str:
    """A tracking URI as MLflow takes it: a plain ``*.db`` path is a local SQLite store
    (MLflow's recommended local backend), any other plain path a file store folder."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", location):
        return location
    path = Path(location).expanduser().resolve()
    return f"sqlite:///{path}" if path.suffix == ".db" else path.as_uri()


def metric_key(key: str, file_store: bool = False) -> str:
    """MLflow's spelling of a value's name: it refuses characters such as '>' in
    ``accuracy/pair/faces->Smiling``, which becomes ``accuracy/pair/faces_to_Smiling``.
    A file store keeps each metric in a file at its name's path, so ``D/adversarial`` and
    ``D/adversarial/real`` cannot both be stored: there '/' becomes '.'."""
    key = re.sub(r"[^\w\-. :/]", "_", key.replace("->", "_to_"))
    return key.replace("/", ".") if file_store else key


def artifact_location(uri: str) -> str | None:
    """Where a new experiment of a local SQLite store keeps its files: beside the database
    (MLflow's default is ``./mlruns`` under whatever folder the run started in)."""
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


class MlflowLogger(Logger):
    """An MLflow run per training run: recipe as parameters, losses and metrics, grids and checkpoints as artifacts."""

    requires = ("mlflow",)

    def __init__(self, tracking_uri: str = "mlflow.db", experiment: str = "mdt", checkpoints: bool = True) -> None:
        if not tracking_uri or not experiment:
            raise ValueError("tracking_uri and experiment must not be empty")
        self.uri, self.experiment, self.log_checkpoints = tracking_uri, experiment, checkpoints
        self.client: MlflowClient | None = None
        self.run_id = ""
        self.file_store = False

    def destination(self) -> str:
        return f"MLflow experiment '{self.experiment}' at {self.uri}"

    def open(self, run: RunInfo) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = tracking_uri(self.uri)
        self.file_store = uri.startswith("file:")
        self.client = MlflowClient(tracking_uri=uri)
        record = run.folder / RUN_FILE
        earlier = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        if run.resumed_from is not None and earlier.get("tracking_uri") == uri:
            self.run_id = earlier["run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            self.client.log_text(self.run_id, run.recipe_text, f"recipe.resumed-{run.resumed_from:08d}.toml")
            return
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(self.experiment, artifact_location(uri))
        self.run_id = self.client.create_run(experiment_id, run_name=run.name, tags={"mdt.run_folder": str(run.folder)}).info.run_id
        record.write_text(json.dumps({"tracking_uri": uri, "run_id": self.run_id}) + "\n", encoding="utf-8")
        params = [
            Param(key, json.dumps(value) if isinstance(value, (list, dict)) else str(value)) for key, value in flat(run.recipe).items()
        ]
        for i in range(0, len(params), MAX_PARAMS_PER_CALL):
            self.client.log_batch(self.run_id, params=params[i : i + MAX_PARAMS_PER_CALL])
        self.client.log_text(self.run_id, run.recipe_text, "recipe.toml")

    @property
    def _opened_client(self) -> MlflowClient:
        assert self.client is not None, "mdt opens a logger before it logs to it"
        return self.client

    def _metrics(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._opened_client.log_batch(
            self.run_id, metrics=[Metric(metric_key(key, self.file_store), value, now, step) for key, value in values.items()]
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self._metrics(step, values)

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        self._opened_client.log_artifact(self.run_id, str(path), tag)

    def checkpoint(self, step: int, path: Path) -> None:
        if self.log_checkpoints:
            self._opened_client.log_artifact(self.run_id, str(path), "checkpoints")

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        self._metrics(step, {f"metrics/{k}": v for k, v in numbers(values).items()})
        self._opened_client.log_dict(self.run_id, values, "metrics.json")

    def close(self, finished: bool) -> None:
        if self.client is not None and self.run_id:
            self.client.set_terminated(self.run_id, status="FINISHED" if finished else "FAILED")
