"""Writing a user's file: under a temporary name of its own beside its place (the process
id and a random part, so two writers never share one), on disk (fsync) before it takes its
name, and taking that name exclusively unless replacing was asked for, so that a second
writer into the same output stops in one line instead of silently replacing the first
one's file. A refusal names the file the user asked for, never the temporary one.

An output of several files (a model folder) is made complete in a scratch folder beside
it and put in place in one step (:func:`swap_in`)."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mdt.errors import MdtError, written_as


def temporary(path: Path) -> Path:
    """A hidden name beside ``path`` that no other write, of this process or another, uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def discard(tmp: Path) -> None:
    """Remove a temporary file if it is there. Its removal failing must not hide the
    failure being reported: on a read-only file system the write fails first, and then
    unlink fails too (EROFS, even for a file that was never made)."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def write_file(path: str | Path, write: Callable[[BinaryIO], object], replace: bool = True) -> None:
    """``write(file)`` into ``path``: whole or not at all. With ``replace`` False, a file
    that appeared at ``path`` since the command checked is left as it is and named."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        with written_as(path):
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            settle(tmp, path, replace)
    finally:
        discard(tmp)


def settle(tmp: Path, path: Path, replace: bool) -> None:
    """Give the written ``tmp`` the name ``path``: replacing what is there, or only if
    nothing is (a hard link is made atomically or not at all; where the file system has
    none, the check and the move are two steps)."""
    if replace:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise MdtError(f"'{path}' appeared while this command was writing: another process writes there; it was left as it is") from None
    except OSError:  # no hard links here (FAT, some network shares)
        if path.exists():
            raise MdtError(
                f"'{path}' appeared while this command was writing: another process writes there; it was left as it is"
            ) from None
        os.replace(tmp, path)


# ---------------------------------------------------------------- a folder of files at once

SCRATCH = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp")
RENAME_EXCHANGE, AT_FDCWD = 2, -100  # linux/fs.h, fcntl.h


def scratch_folder(out: Path) -> Path:
    """A new folder beside ``out`` to make a multi-file output in, named after ``out`` and
    this process (:func:`remove_stale_scratch` finds those of processes that ended)."""
    folder = temporary(out)
    with written_as(out):  # a refusal names the output, not the scratch folder's hidden name
        folder.mkdir()
    return folder


@contextlib.contextmanager
def staged_as(ready: Path, out: Path) -> Iterator[None]:
    """While a multi-file output is made in its scratch folder ``ready``: a refusal (a
    full disk) names the file as the user will know it, inside ``out``, not inside the
    hidden scratch folder."""
    try:
        yield
    except OSError as exc:
        staged = [Path(name) for name in (exc.filename2, exc.filename) if name is not None and Path(name).is_relative_to(ready)]
        if staged:  # a copy's error names its source first, the staged file second
            raise OSError(exc.errno, exc.strerror, str(out / staged[0].relative_to(ready))) from None
        if exc.filename is None:  # a write that names no file (a full disk under write_text)
            raise OSError(exc.errno, exc.strerror, str(out)) from None
        raise


def remove_stale_scratch(out: Path, say: Callable[[str], None]) -> None:
    """Scratch folders beside ``out`` left by killed processes: removed, and named."""
    if not out.parent.is_dir():
        return
    for path in out.parent.iterdir():
        found = SCRATCH.fullmatch(path.name)
        if found and found["name"] in (out.name, f"{out.name}.old") and path.is_dir() and not _alive(int(found["pid"])):
            shutil.rmtree(path, ignore_errors=True)
            say(f"note: removed '{path}', left by a process that ended while it wrote '{out}'")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def swap_in(ready: Path, out: Path, replace: bool) -> None:
    """Put the complete folder ``ready`` (beside ``out``) at ``out`` in one step, so that a
    kill leaves the old folder or the new one, never a mix. Without ``replace``, a rename
    that only succeeds onto nothing or an empty folder: a folder another process filled
    meanwhile stays as it is. With it, an atomic exchange of the two (Linux's renameat2),
    the old one removed after; where there is no exchange, the old folder is moved aside
    first, and a kill between the two renames leaves it under a scratch name."""
    if not replace or not out.exists():
        try:
            os.rename(ready, out)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise MdtError(
                    f"'{out}' was filled while this command was writing: another process writes there; it was left as it is"
                ) from None
            raise
        return
    if _exchange(ready, out):
        shutil.rmtree(ready, ignore_errors=True)  # the old folder, now at the scratch name
        return
    aside = out.with_name(temporary(out.with_name(out.name + ".old")).name)
    os.rename(out, aside)
    os.rename(ready, out)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Held by one mdt writer at a time per folder that holds ``out``, for a check of what is
    at ``out`` and the swap that follows it, so that no other writer's output arrives
    between the two (an advisory lock on the parent folder; where there is no flock, the
    two steps stay apart)."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    descriptor = os.open(out.parent, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system without locks (some network shares): the steps stay apart
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def carry_over(out: Path, ready: Path, leave: Callable[[Path], bool]) -> None:
    """What ``out`` holds besides the output being made (a file of the user's), into the
    folder ``ready`` that will take its place: hard links, else copies. ``leave(path)``:
    what not to carry (the output's own files, an earlier output's)."""
    if not out.is_dir():
        return
    for path in out.iterdir():
        if leave(path) or (ready / path.name).exists():
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, ready / path.name, symlinks=True)
            continue
        try:
            os.link(path, ready / path.name, follow_symlinks=False)
        except OSError:
            shutil.copy2(path, ready / path.name, follow_symlinks=False)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    done = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return done == 0
