"""CSV: the training curves as one table, for spreadsheets and pandas."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from mdt.loggers import Logger, RunInfo


class CsvLogger(Logger):
    """Scalars as a CSV table in the run folder: a row per logged step, a column per value."""

    def __init__(self, file: str = "log.csv") -> None:
        if not file.endswith(".csv") or Path(file).is_absolute() or ".." in Path(file).parts or "/" in file:
            raise ValueError(f"file = '{file}' must be a file name ending in .csv, inside the run folder")
        self.file = file
        self.path: Path | None = None
        self.columns: list[str] = []

    def destination(self) -> str:
        return f"{self.file} in the run folder"

    def open(self, run: RunInfo) -> None:
        self.path = run.folder / self.file
        rows = self._rows()
        if run.resumed_from is not None and rows:  # rows after the resumed step are written again
            self._rewrite([r for r in rows if float(r["step"]) <= run.resumed_from])

    @property
    def _opened_path(self) -> Path:
        """The table's file, known once the run opened the logger."""
        assert self.path is not None, "mdt opens a logger before it logs to it"
        return self.path

    def _rows(self) -> list[dict[str, str]]:
        if not self._opened_path.exists():
            return []
        with open(self._opened_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            self.columns = list(reader.fieldnames or [])
            return list(reader)

    def _rewrite(self, rows: list[dict]) -> None:
        tmp = self._opened_path.with_name(f".{self._opened_path.name}.tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self._opened_path)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        row = {"step": step, **values}
        new = [k for k in row if k not in self.columns]
        if new:  # a value first logged now: the table gains a column, earlier rows stay empty in it
            rows = self._rows()
            self.columns = [*self.columns, *new] if self.columns else list(row)
            self._rewrite(rows)
        with open(self._opened_path, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, self.columns, restval="").writerow(row)
