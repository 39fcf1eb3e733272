"""MLflow: the recipe as parameters, the curves as metrics, grids and checkpoints as artifacts.

MLflow talks on the console itself: it retries a store it cannot open for about 100 s
(SQLite) or 250 s (a server), logging each retry, and logs a traceback before raising a
database error. mdt reports a logger's failure in one line (:mod:`mdt.loggers`), so the
logger keeps MLflow's own log records off the console while it calls MLflow, checks at
``open`` that a local store can be written before MLflow starts retrying, lets a
server refuse at once while the run opens, and names a full disk as such.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np

from mdt.errors import MdtError, causes, failure_line
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
    local = store_path(uri)
    if local is not None and local[0] == "sqlite":
        return (local[1].resolve().parent / "mlartifacts").as_uri()  # sqlite:///rel.db is relative to here
    return None


def store_path(uri: str) -> tuple[str, Path] | None:
    """("sqlite", database file) or ("file", folder) for a local store; None for a server."""
    if uri.startswith("sqlite:///"):
        return "sqlite", Path(uri.removeprefix("sqlite:///").split("?", 1)[0])  # ?timeout=20 is not the file's
    if uri.startswith("file:"):
        return "file", Path(url2pathname(urlparse(uri).path))
    return None


def check_writable(uri: str) -> None:
    """Refuse, in a moment, a local store that cannot be written (MLflow would retry it for
    about 100 s before saying so)."""
    local = store_path(uri)
    if local is None:
        return
    kind, path = local
    folder = path.parent if kind == "sqlite" else path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            with contextlib.closing(sqlite3.connect(path, timeout=5)) as database:
                database.execute("BEGIN IMMEDIATE")
                database.execute("CREATE TABLE mdt_write_probe (x)")  # a write, rolled back
                database.rollback()
        else:
            tempfile.TemporaryFile(dir=folder).close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):  # another process writes there now (MLflow setting up its tables): it can be written
            return
        raise MdtError(f"cannot write the MLflow store {path}: {exc}") from None
    except (OSError, sqlite3.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise MdtError(f"cannot write the MLflow store {path}: {reason}") from None


def disk_full(exc: BaseException) -> bool:
    """Whether a full disk is among the causes of ``exc`` (SQLite says "database or disk
    is full" in a database error; a file store gets ENOSPC)."""
    return any(
        (isinstance(cause, OSError) and cause.errno == errno.ENOSPC) or "database or disk is full" in str(cause) for cause in causes(exc)
    )


#: Loggers whose records MLflow's client writes to the console while it works.
CHATTY = ("mlflow", "alembic", "urllib3")
#: Environment settings that make MLflow's HTTP client give up at once on a server that
#: does not answer (its defaults retry 7 times with backoff: about 250 s).
FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


@contextlib.contextmanager
def quiet_mlflow(fail_fast: bool = False) -> Iterator[None]:
    """MLflow's own log records kept off the console (mdt reports a failure in one line);
    with ``fail_fast``, a server that does not answer fails the call at once, unless the
    user set those variables themselves."""
    import mlflow  # noqa: F401  (it sets its loggers' levels when imported: first, then ours)

    loggers = [logging.getLogger(name) for name in CHATTY]  # their children inherit the level
    levels = [logger.level for logger in loggers]
    added = {k: v for k, v in FAIL_FAST.items() if k not in os.environ} if fail_fast else {}
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    os.environ.update(added)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        for key in added:
            os.environ.pop(key, None)


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

    @contextlib.contextmanager
    def _talking(self, opening: bool = False) -> Iterator[None]:
        """Around every call into MLflow: its log records off the console, a full disk
        named; while ``opening``, a server that does not answer fails at once, and any
        failure names the store."""
        with quiet_mlflow(fail_fast=opening):
            try:
                yield
            except Exception as exc:
                if disk_full(exc):
                    raise MdtError(f"the disk of the MLflow store {self.uri} is full") from exc
                if opening:
                    raise MdtError(f"MLflow store {self.uri}: {failure_line(exc)}") from exc
                raise

    def open(self, run: RunInfo) -> None:
        uri = tracking_uri(self.uri)
        check_writable(uri)
        with self._talking(opening=True):
            self._open(run, uri)

    def _open(self, run: RunInfo, uri: str) -> None:
        from mlflow import MlflowClient
        from mlflow.entities import Param

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
        with self._talking():
            self._metrics(step, values)

    def image(self, step: int, tag: str, image: np.ndarray, path: Path) -> None:
        with self._talking():
            self._opened_client.log_artifact(self.run_id, str(path), tag)

    def checkpoint(self, step: int, path: Path) -> None:
        if self.log_checkpoints:
            with self._talking():
                self._opened_client.log_artifact(self.run_id, str(path), "checkpoints")

    def metrics(self, step: int, values: dict[str, Any]) -> None:
        with self._talking():
            self._metrics(step, {f"metrics/{k}": v for k, v in numbers(values).items()})
            self._opened_client.log_dict(self.run_id, values, "metrics.json")

    def close(self, finished: bool) -> None:
        if self.client is not None and self.run_id:
            with self._talking():
                self.client.set_terminated(self.run_id, status="FINISHED" if finished else "FAILED")
