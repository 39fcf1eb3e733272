"""Writing a user's file: under a temporary name of its own beside its place (the process
id and a random part, so two writers never share one), on disk (fsync) before it takes its
name, and taking that name exclusively unless replacing was asked for, so that a second
writer into the same output stops in one line instead of silently replacing the first
one's file. A refusal names the file the user asked for, never the temporary one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from mdt.errors import MdtError, written_as


def temporary(path: Path) -> Path:
    """A hidden name beside ``path`` that no other write, of this process or another, uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


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
        tmp.unlink(missing_ok=True)


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
