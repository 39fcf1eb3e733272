"""Loggers: a quickstart run sends its scalars, sample grids, recipe and metrics to
TensorBoard, MLflow, W&B (offline) and CSV, and each store is read back with its own
library's reader, compared value by value with log.jsonl and the run folder."""

from __future__ import annotations

import csv
import io
import json
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REPO, small
from PIL import Image
from rich.console import Console
from test_recipe_errors import one_line_error

from mdt.logbook import read_log
from mdt.loggers import Logger, Loggers
from mdt.toml_text import dump_toml

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

STEPS = (
    "run.iterations=4",
    "run.sample_every=2",
    "run.checkpoint_every=2",
    "datasets.faces.size=16",
    "datasets.faces.test_size=4",
    "classifier.steps=1",
    "metrics.accuracy.max_images=2",
    "method.d_steps_per_g=2",  # G steps at every 2nd iteration: its scalars are logged there only
)


def recipe_with_loggers(folder: Path, store: Path) -> Path:
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data["loggers"] = {
        "tensorboard": {"type": "tensorboard"},
        "mlflow": {"type": "mlflow", "tracking_uri": str(store / "mlflow.db"), "experiment": "quickstart"},
        "wandb": {"type": "wandb", "project": "quickstart"},
        "csv": {"type": "csv"},
    }
    path = folder / "quickstart_logged.toml"
    path.write_text(dump_toml(data))
    return path


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> Path:
    from mdt.cli import main

    root = tmp_path_factory.mktemp("logged")
    args = ["run", str(recipe_with_loggers(root, root)), "--out", str(root / "run"), *small(*STEPS)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_SILENT", "true")
        patch.chdir(root)
        result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "failed" not in result.output, result.output
    return root / "run"


def train_values(run: Path, key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in read_log(run / "log.jsonl") if r["event"] == "train" and key in r}


def png_pixels(data: bytes | Path) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data) if isinstance(data, bytes) else data).convert("RGB"))


def sample_files(run: Path) -> dict[int, Path]:
    return {int(p.stem.split("_")[1]): p for p in sorted((run / "samples").glob("step_*.png"))}


# ------------------------------------------------------------------ TensorBoard


def test_tensorboard_holds_scalars_grids_recipe_and_metrics(logged_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logged_run / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0}).Reload()
    expected = train_values(logged_run, "G/total")
    scalars = {e.step: e.value for e in events.Scalars("G/total")}
    assert sorted(scalars) == sorted(expected) == [2, 3, 4]  # G first updates at step 2
    assert all(scalars[s] == pytest.approx(expected[s], rel=1e-6) for s in expected)
    assert [e.step for e in events.Scalars("D/total")] == [1, 2, 3, 4]
    images = {e.step: e for e in events.Images("samples")}
    assert sorted(images) == sorted(sample_files(logged_run)) == [2, 4]
    for step, path in sample_files(logged_run).items():
        assert np.array_equal(png_pixels(images[step].encoded_image_string), png_pixels(path))
    recipe_text = events.Tensors("recipe/text_summary")[0].tensor_proto.string_val[0].decode()
    assert [line[4:] for line in recipe_text.splitlines()] == (logged_run / "recipe.toml").read_text().splitlines()
    metrics = json.loads((logged_run / "metrics.json").read_text())
    assert events.Scalars("metrics/accuracy/real_accuracy")[0].value == pytest.approx(metrics["accuracy/real_accuracy"])


# ------------------------------------------------------------------ MLflow


def test_mlflow_holds_recipe_params_metrics_grids_and_checkpoints(logged_run, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{logged_run.parent / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["quickstart"], output_format="list")
    assert len(runs) == 1
    found = runs[0]
    assert found.info.run_name == logged_run.name and found.info.status == "FINISHED"
    recipe = tomllib.loads((logged_run / "recipe.toml").read_text())
    assert found.data.params["run.batch_size"] == str(recipe["run"]["batch_size"]) == "2"
    assert found.data.params["networks.generator.conv_dim"] == "8"
    client = MlflowClient(uri)
    history = {m.step: m.value for m in client.get_metric_history(found.info.run_id, "D/total")}
    expected = train_values(logged_run, "D/total")
    assert sorted(history) == [1, 2, 3, 4] and all(history[s] == pytest.approx(expected[s]) for s in expected)
    metrics = json.loads((logged_run / "metrics.json").read_text())
    assert found.data.metrics["metrics/accuracy/real_accuracy"] == pytest.approx(metrics["accuracy/real_accuracy"])
    pair = next(k for k in metrics if "->" in k)  # MLflow refuses '>' in names
    assert found.data.metrics["metrics/" + pair.replace("->", "_to_")] == pytest.approx(metrics[pair])
    local = Path(client.download_artifacts(found.info.run_id, "", str(tmp_path)))
    assert (local / "recipe.toml").read_text() == (logged_run / "recipe.toml").read_text()
    for path in sample_files(logged_run).values():
        assert (local / "samples" / path.name).read_bytes() == path.read_bytes()
    saved = sorted(p.name for p in (logged_run / "checkpoints").glob("*.safetensors"))
    assert sorted(p.name for p in (local / "checkpoints").iterdir()) == saved
    assert json.loads((local / "metrics.json").read_text()) == metrics


# ------------------------------------------------------------------ W&B (offline)


def wandb_records(path: Path):
    """The records of an offline run's ``.wandb`` file, decoded with wandb's own protobuf
    schema. The file is a LevelDB-style log: a 7-byte header (':W&B', magic, version),
    then 32 KiB blocks of chunks, each with a 7-byte header (checksum, length, type:
    1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = 7, b""
    while position + 7 <= len(data):
        left = 32768 - position % 32768
        if left < 7:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 2):
            pending = chunk
        elif kind in (3, 4):
            pending += chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def test_wandb_offline_run_holds_config_scalars_grids_recipe_and_metrics(logged_run):
    folders = list((logged_run / "wandb").glob("offline-run-*"))
    assert len(folders) == 1
    folder = folders[0]
    records = list(wandb_records(next(folder.glob("run-*.wandb"))))
    run_record = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert run_record.project == "quickstart" and run_record.display_name == logged_run.name
    config = {u.key: json.loads(u.value_json) for u in run_record.config.update}
    assert config["run.batch_size"] == 2 and config["networks.generator.conv_dim"] == 8
    history: dict[int, dict] = {}
    for r in records:
        if r.WhichOneof("record_type") == "history":
            row = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
            history[row["_step"]] = row
    expected = train_values(logged_run, "D/total")
    assert sorted(history) == [1, 2, 3, 4]
    assert all(history[s]["D/total"] == pytest.approx(expected[s]) for s in expected)
    for step, path in sample_files(logged_run).items():
        image = folder / "files" / history[step]["samples/path"]
        assert np.array_equal(png_pixels(image), png_pixels(path))
    assert (folder / "files" / "recipe.toml").read_text() == (logged_run / "recipe.toml").read_text()
    summary = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in r.summary.update})
    metrics = json.loads((logged_run / "metrics.json").read_text())
    assert summary["metrics/accuracy/real_accuracy"] == pytest.approx(metrics["accuracy/real_accuracy"])
    assert next(r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit") == 0


# ------------------------------------------------------------------ CSV


def test_csv_holds_every_logged_value(logged_run):
    with open(logged_run / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = [r for r in read_log(logged_run / "log.jsonl") if r["event"] == "train"]
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records] == [1, 2, 3, 4]
    for row, record in zip(rows, records, strict=True):
        for key, value in record.items():
            if key not in ("event", "step", "time"):
                assert float(row[key]) == pytest.approx(value)
        assert all(row[k] == "" for k in row if k not in record)  # the G values start at step 2


def test_csv_resumed_run_rewrites_the_rows_after_the_checkpoint(cli, tmp_path):
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data.pop("metrics"), data.pop("classifier")
    data["loggers"] = {"table": {"type": "csv", "file": "curves.csv"}}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    args = [
        "run",
        "r.toml",
        "--out",
        "run",
        *small("run.iterations=4", "run.checkpoint_every=2", "datasets.faces.size=16", "datasets.faces.test_size=4"),
    ]
    assert cli(*args).exit_code == 0
    (tmp_path / "run" / "checkpoints" / "step_00000004.safetensors").unlink()  # as if killed after step 4's log
    resumed = cli(*args[:2], "--resume", "run", *args[4:])
    assert resumed.exit_code == 0, resumed.output
    with open(tmp_path / "run" / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    records = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["event"] == "train"]
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records] == [1, 2, 3, 4]
    assert [float(r["D/total"]) for r in rows] == pytest.approx([r["D/total"] for r in records])


# ------------------------------------------------------------------ failures and checks


class Recorder(Logger):
    def __init__(self, fail_in: str = "") -> None:
        self.calls, self.fail_in = [], fail_in

    def __getattribute__(self, name):
        attribute = object.__getattribute__(self, name)
        if name in ("open", "scalars", "image", "checkpoint", "metrics", "close"):

            def call(*args):
                self.calls.append(name)
                if name == self.fail_in:
                    raise RuntimeError("tracker is down")
                return attribute(*args)

            return call
        return attribute


def test_a_logger_that_fails_midway_is_reported_once_and_left_out():
    console = Console(file=io.StringIO(), width=200)
    broken, fine = Recorder(fail_in="scalars"), Recorder()
    loggers = Loggers([("broken", broken), ("fine", fine)], console)
    loggers.open(None)
    for step in (1, 2, 3):
        loggers.scalars(step, {"loss": 1.0, "flag": True, "note": "text"})
    loggers.close(True)
    output = console.file.getvalue()
    assert output.count("logger 'broken' failed in scalars (RuntimeError: tracker is down)") == 1
    assert broken.calls == ["open", "scalars"]
    assert fine.calls == ["open", "scalars", "scalars", "scalars", "close"]


def test_a_logger_that_cannot_start_stops_the_run_with_one_line(cli, tmp_path):
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data["loggers"] = {"tracker": {"type": "mlflow", "tracking_uri": "nosuchscheme://host/x"}}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    line = one_line_error(cli("run", "r.toml", "--out", "run", *small()))
    assert line.startswith("error: [loggers.tracker] could not start:") and "nosuchscheme" in line


def test_a_tracker_failure_is_one_line_naming_what_the_user_can_fix():
    """A failure's notice is one line: the system's reason from deep in the causes (a full
    disk, a refused connection, also when only being handled), else the wrapped error's own
    words, never a driver's SQL; a chain that loops ends; markup is shown as written."""
    import errno

    def wrapped(inner: BaseException, outer: BaseException) -> BaseException:
        try:
            try:
                raise inner
            except BaseException as exc:
                raise outer from exc
        except BaseException as exc:
            return exc

    class Failing(Logger):
        def __init__(self, error: BaseException) -> None:
            self.error = error

        def scalars(self, step, values):
            raise self.error

    full = wrapped(OSError(errno.ENOSPC, "No space left on device", "curves.csv"), RuntimeError("flush failed"))
    driver = wrapped(ValueError("attempt to write a readonly database"), RuntimeError("(autoflush advice)\n[SQL: INSERT]"))
    refused = wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), RuntimeError("Max retries exceeded"))
    refused.__cause__, refused.__context__, refused.__suppress_context__ = (
        None,
        refused.__cause__,
        False,
    )  # raised while handling it (HTTP clients)
    looped = RuntimeError("outer")
    looped.__cause__ = ValueError("inner")
    looped.__cause__.__cause__ = looped  # a chain that loops back must still end
    hidden = wrapped(OSError(errno.ENOENT, "No such file or directory", "cfg"), RuntimeError("experiment 7 does not exist"))
    hidden.__cause__, hidden.__context__, hidden.__suppress_context__ = None, hidden.__cause__, True  # raise ... from None
    console = Console(file=io.StringIO(), width=400)
    loggers = Loggers(
        [("full", Failing(full)), ("driver", Failing(driver)), ("server", Failing(refused)),
         ("looped", Failing(looped)), ("hidden", Failing(hidden)),
         ("odd", Failing(RuntimeError("[bold]sql[/bold] failed\nsecond line")))],
        console,
    )  # fmt: skip
    loggers.scalars(1, {"loss": 1.0})
    lines = console.file.getvalue().splitlines()
    assert lines == [
        "logger 'full' failed in scalars (cannot use 'curves.csv': No space left on device); training goes on without it",
        "logger 'driver' failed in scalars (ValueError: attempt to write a readonly database); training goes on without it",
        "logger 'server' failed in scalars (Connection refused); training goes on without it",
        "logger 'looped' failed in scalars (ValueError: inner); training goes on without it",
        "logger 'hidden' failed in scalars (RuntimeError: experiment 7 does not exist); training goes on without it",
        "logger 'odd' failed in scalars (RuntimeError: [bold]sql[/bold] failed); training goes on without it",
    ]


def mlflow_recipe(tmp_path: Path, tracking_uri: str) -> Path:
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data["loggers"] = {"tracker": {"type": "mlflow", "tracking_uri": tracking_uri, "checkpoints": False}}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    return tmp_path / "r.toml"


def test_an_unwritable_mlflow_store_is_one_line_at_once(cli, tmp_path, capfd):
    """MLflow itself retries a SQLite store it cannot open for about 100 s, printing each
    retry; mdt tries the store first and stops in a moment with one line."""
    import time

    (tmp_path / "store.db").mkdir()  # a folder where the database file should be
    started = time.monotonic()
    result = cli("run", str(mlflow_recipe(tmp_path, str(tmp_path / "store.db"))), "--out", str(tmp_path / "run"), *small())
    elapsed = time.monotonic() - started
    assert one_line_error(result) == (
        f"error: [loggers.tracker] could not start: cannot write the MLflow store {tmp_path / 'store.db'}: unable to open database file"
    )
    assert elapsed < 30, f"{elapsed:.0f} s: MLflow's own retries ran"
    printed = capfd.readouterr()
    assert "retried" not in printed.err + printed.out


def test_an_mlflow_server_that_does_not_answer_stops_the_run_at_once(cli, tmp_path):
    """MLflow's client retries a server it cannot reach 7 times with backoff (about 250 s,
    silently); while the run opens, mdt lets the first refusal stand: one line naming it."""
    import socket
    import time

    with socket.socket() as probe:  # a port on this machine that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = cli("run", str(mlflow_recipe(tmp_path, f"http://127.0.0.1:{port}")), "--out", str(tmp_path / "run"), *small())
    elapsed = time.monotonic() - started
    assert one_line_error(result) == f"error: [loggers.tracker] could not start: MLflow store http://127.0.0.1:{port}: Connection refused"
    assert elapsed < 60, f"{elapsed:.0f} s: MLflow's own retries ran"


def test_a_full_mlflow_disk_is_named_without_mlflow_tracebacks(tmp_path, capfd):
    """SQLite says 'database or disk is full' when its file cannot grow; made real here
    by capping the database at its current size (PRAGMA max_page_count) on every
    connection MLflow takes from its pool after the run opened."""
    from mdt_loggers.mlflow_logger import MlflowLogger
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    from mdt.loggers import RunInfo

    store = tmp_path / "mlflow.db"
    (tmp_path / "run").mkdir()
    console = Console(file=io.StringIO(), width=400)
    loggers = Loggers([("tracker", MlflowLogger(tracking_uri=str(store)))], console)
    loggers.open(RunInfo(tmp_path / "run", {"run": {"seed": 0}}, "[run]\nseed = 0\n", None))

    def cap(connection, record, proxy):
        connection.execute("PRAGMA max_page_count = 1")  # SQLite keeps it at the current size

    event.listen(Pool, "checkout", cap)
    try:
        loggers.scalars(1, {f"loss{i}": float(i) for i in range(500)})
        loggers.scalars(2, {"loss": 1.0})  # left out after the failure: no second line
    finally:
        event.remove(Pool, "checkout", cap)
    assert console.file.getvalue().splitlines() == [
        f"logger 'tracker' failed in scalars (the disk of the MLflow store {store} is full); training goes on without it"
    ]
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out and "disk is full" not in printed.err + printed.out


def test_recipe_check_names_a_missing_tracker_package(cli, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data["loggers"] = {"team": {"type": "wandb"}}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    line = one_line_error(cli("recipe", "check", "r.toml"))
    assert "[loggers.team]" in line and "'wandb', which is not installed (pip install wandb)" in line
    assert not (tmp_path / "runs").exists()


def test_old_run_tensorboard_setting_is_read_as_a_logger(cli, tmp_path):
    text = (REPO / "recipes" / "quickstart.toml").read_text().replace("threads = 2", "threads = 2\ntensorboard = true")
    (tmp_path / "old.toml").write_text(text)
    shown = cli("recipe", "show", "old.toml")
    assert shown.exit_code == 0
    assert "[run] tensorboard = true is read as [loggers.tensorboard]" in shown.output
    assert tomllib.loads(shown.output[shown.output.index("[run]\n") :])["loggers"] == {
        "tensorboard": {"type": "tensorboard", "folder": "tensorboard", "images": True}
    }
    (tmp_path / "off.toml").write_text(text.replace("tensorboard = true", "tensorboard = false"))
    shown = cli("recipe", "show", "off.toml")
    assert shown.exit_code == 0 and "loggers" not in shown.output and "tensorboard" not in shown.output


def test_mlflow_file_store_folder(cli, tmp_path, monkeypatch):
    """A folder as tracking_uri is MLflow's file store (which MLflow 3 keeps only on request)."""
    import mlflow

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data.pop("metrics"), data.pop("classifier")
    data["loggers"] = {"mlflow": {"type": "mlflow", "tracking_uri": "store", "checkpoints": False}}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    result = cli("run", "r.toml", "--out", "run", *small())
    assert result.exit_code == 0 and "failed" not in result.output, result.output
    assert (tmp_path / "store").is_dir() and not (tmp_path / "mlflow.db").exists()
    mlflow.set_tracking_uri((tmp_path / "store").as_uri())
    found = mlflow.search_runs(experiment_names=["mdt"], output_format="list")
    assert len(found) == 1 and found[0].data.params["run.iterations"] == "2"
    # The file store keeps a metric as a file at its name's path: 'D/adversarial' and
    # 'D/adversarial/real' cannot both be paths, so there '/' is written '.'.
    metrics = found[0].data.metrics
    assert metrics["D.total"] == pytest.approx(train_values(tmp_path / "run", "D/total")[2])
    assert metrics["D.adversarial.real"] == pytest.approx(train_values(tmp_path / "run", "D/adversarial/real")[2])


@pytest.mark.parametrize(
    "table, expected",
    [
        ({"type": "tensorboard", "folder": "../elsewhere"}, "folder = '../elsewhere' must be a folder name inside the run folder"),
        ({"type": "csv", "file": "curves.txt"}, "file = 'curves.txt' must be a file name ending in .csv"),
        ({"type": "mlflow", "experiment": ""}, "tracking_uri and experiment must not be empty"),
        ({"type": "wandb", "mode": "shared"}, 'key \'mode\' = "shared": expected one of "offline", "online"'),
    ],
)
def test_bad_logger_settings_are_one_line(cli, tmp_path, table, expected):
    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data["loggers"] = {"tracker": table}
    (tmp_path / "r.toml").write_text(dump_toml(data))
    line = one_line_error(cli("run", "r.toml", "--out", "run", *small()))
    assert "[loggers.tracker]" in line and expected in line
    assert not (tmp_path / "run").exists()  # stopped before the run began


def test_an_mlflow_sqlite_uri_is_read_as_sqlalchemy_reads_it(tmp_path, monkeypatch):
    """``sqlite:///rel.db?timeout=20``: the file is rel.db in the working folder (the query
    is SQLAlchemy's, not part of the name), and its artifacts go beside it, as an
    absolute file URI (a relative path has none: it raised ValueError)."""
    from mdt_loggers.mlflow_logger import artifact_location, check_writable, store_path

    monkeypatch.chdir(tmp_path)
    assert store_path("sqlite:///rel.db?timeout=20") == ("sqlite", Path("rel.db"))
    assert artifact_location("sqlite:///rel.db?timeout=20") == (tmp_path / "mlartifacts").as_uri()
    check_writable("sqlite:///rel.db?timeout=20")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rel.db"]
