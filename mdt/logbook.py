"""The run log ``log.jsonl``, always written; trackers are loggers (:mod:`mdt.loggers`).

``log.jsonl`` holds one record per line: ``{"event", "step", "time", ...values}``. A
run resumed from step S first moves the records after S (written before a kill, and
about to be written again) to ``log.discarded.jsonl`` and notes ``{"event": "resumed"}``,
so every curve runs forward once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

DISCARDED = "log.discarded.jsonl"


class Logbook:
    def __init__(self, run_dir: Path, resumed_from: int | None = None) -> None:
        self.path = run_dir / "log.jsonl"
        discarded = cut_after(self.path, resumed_from) if resumed_from is not None else []
        torn = self.path.exists() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run; close() closes it)
        if torn:  # a line cut by a kill: end it so the next record stays readable
            self._file.write("\n")
        if resumed_from is not None:
            steps = [r.get("step", 0) for r in discarded]
            self.write(resumed_from, {"discarded": [min(steps), max(steps)] if steps else None}, event="resumed")

    def write(self, step: int, values: dict[str, Any], event: str = "train") -> None:
        record = {"event": event, "step": step, "time": round(time.time(), 3), **values}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def cut_after(path: Path, step: int) -> list[dict[str, Any]]:
    """Move the records of ``path`` after ``step`` to ``log.discarded.jsonl``; return them.
    A line torn by a kill is moved too."""
    if not path.exists():
        return []
    kept: list[str] = []
    moved: list[tuple[str, dict[str, Any] | None]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            moved.append((line, None))
            continue
        if isinstance(record, dict) and record.get("event") != "resumed" and record.get("step", 0) > step:
            moved.append((line, record))
        else:
            kept.append(line)
    if moved:
        with open(path.with_name(DISCARDED), "a", encoding="utf-8") as f:
            f.writelines(line + "\n" for line, _ in moved)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        os.replace(tmp, path)
    return [record for _, record in moved if record is not None]


def read_log(path: Path) -> list[dict[str, Any]]:
    """The log's records; a line torn by a kill is passed over."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def metrics_step(path: Path) -> int | None:
    """The step at which the run last measured its metrics (``metrics.json``), or None."""
    if not path.is_file():
        return None
    steps = [r.get("step") for r in read_log(path) if isinstance(r, dict) and r.get("event") == "metrics"]
    return steps[-1] if steps and isinstance(steps[-1], int) else None
