"""Run folders: where a run's files go, and the lock that keeps one run per folder.

A run holds ``.mdt-run.lock`` (an advisory ``flock`` with its process id written in it)
for its whole life, so a second ``mdt run`` into the same folder is refused however
close together the two start. The operating system drops the lock of a killed process;
the id it leaves behind lets the next run say whose lock it takes over.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from mdt import checkpoint as ckpt
from mdt.errors import MdtError

LOCK_NAME = ".mdt-run.lock"
CACHE_NAME = "cache"  # decoded training images (mdt/cache.py): derived from the data, rebuilt on demand
RUN_FILES = ("recipe.toml", "log.jsonl")  # what a run writes before its first checkpoint


def new_run_dir(recipe_path: str, runs_root: Path = Path("runs")) -> Path:
    """``runs/<recipe name>``, or ``-2``, ``-3``... so no earlier run is touched."""
    stem = Path(recipe_path).stem
    candidate = runs_root / stem
    n = 2
    while candidate.exists() and any(candidate.iterdir()):
        candidate = runs_root / f"{stem}-{n}"
        n += 1
    return candidate


def latest_run_dir(recipe_path: str, runs_root: Path = Path("runs")) -> Path:
    stem = Path(recipe_path).stem
    runs = [p for p in runs_root.glob(f"{stem}*") if p.is_dir() and ckpt.list_checkpoints(p / "checkpoints")]
    if not runs:
        raise MdtError(f"--resume: no run of '{stem}' with a checkpoint under {runs_root}/; name the run folder")
    return max(runs, key=lambda p: ckpt.list_checkpoints(p / "checkpoints")[-1].stat().st_mtime)


class RunLock:
    """The lock of one run folder, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_NAME
        self.created_folder = False
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """Take the lock, or raise naming the process that holds it. Returns a notice
        when a killed run's lock is taken over."""
        self.created_folder = not self.run_dir.exists()
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise MdtError(f"--out '{self.run_dir}' is a file; give a folder for the run")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _pid_in(fd)
            os.close(fd)
            raise MdtError(
                f"'{self.run_dir}' is in use by another mdt run (process {holder or 'unknown'}); wait for it to end, or give another --out"
            ) from None
        previous = _pid_in(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        if previous and previous != os.getpid() and not _alive(previous):
            return f"'{self.run_dir}' was locked by process {previous}, which is no longer running; taking the lock over"
        return None

    def release(self, remove_folder: bool = False) -> None:
        """Unlock; with ``remove_folder``, also remove the folder if this run created it
        and wrote nothing there but the image cache (it stopped before starting)."""
        if self._fd is None:
            return
        os.ftruncate(self._fd, 0)  # a clean end leaves no process id to report as stale
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if remove_folder and self.created_folder and {p.name for p in self.run_dir.iterdir()} <= {LOCK_NAME, CACHE_NAME}:
            shutil.rmtree(self.run_dir / CACHE_NAME, ignore_errors=True)
            self.path.unlink(missing_ok=True)
            self.run_dir.rmdir()


def holds_files(run_dir: Path) -> bool:
    """Whether a folder holds anything but the lock."""
    return run_dir.is_dir() and any(p.name != LOCK_NAME for p in run_dir.iterdir())


def is_started_run(run_dir: Path) -> bool:
    """A run that wrote its recipe or log and was stopped before its first checkpoint."""
    return any((run_dir / name).is_file() for name in RUN_FILES)


def _pid_in(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
