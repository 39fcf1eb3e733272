"""User-facing errors.

Everything a user can get wrong (a recipe key, a data file, a checkpoint) raises
:class:`MdtError` with one line that says what was wrong, where, and what would be
right. The CLI prints that line and exits with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


class MdtError(Exception):
    """An error caused by the user's input, reported as a single line."""


def closest_first(word: str, choices: Iterable[str]) -> list[str]:
    """``choices`` sorted so that the ones most like ``word`` come first."""
    choices = sorted(set(choices))
    if not choices:
        return []
    ranked = difflib.get_close_matches(word, choices, n=len(choices), cutoff=0.0)
    return ranked


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when something close to ``word`` exists, else ``''``."""
    choices = list(choices)
    by_case = {choice.casefold(): choice for choice in choices}  # HAPPY for happy: the same word
    matches = difflib.get_close_matches(word.casefold(), list(by_case), n=1, cutoff=0.6)
    return f" (did you mean '{by_case[matches[0]]}'?)" if matches else ""


def os_error_line(exc: OSError) -> str:
    """One line for a file the system refused: which path, and why in plain words."""
    where = f"'{exc.filename}'" if exc.filename is not None else "a file"
    if isinstance(exc, FileExistsError):
        if exc.filename is not None and os.path.isdir(exc.filename):
            return f"{where} already exists"
        return f"{where} is a file, where a folder is needed"
    if isinstance(exc, NotADirectoryError):
        return f"{where}: a part of this path is a file, where a folder is needed"
    return f"cannot use {where}: {exc.strerror or exc}"


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors behind it: what it was raised from, else what was being
    handled when it was raised (unless ``raise ... from None`` hid that); each once, so a
    chain that loops back ends."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)


def failure_line(exc: BaseException) -> str:
    """One line for an unexpected failure of someone else's code (a tracker's client):
    an :class:`MdtError` as it is; else the first system error among its causes, which
    says what the user can fix ("No space left on device", "Connection refused"); else
    the type and first line of the error it wraps, however deep (a database driver's own
    words, where the layers above add lines of SQL and advice about sessions)."""
    if isinstance(exc, MdtError):
        return str(exc)
    for cause in causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return os_error_line(cause) if cause.filename is not None else cause.strerror
    root = exc
    seen = {id(exc)}
    while root.__cause__ is not None and id(root.__cause__) not in seen:  # what it wraps ("raise ... from")
        root = root.__cause__
        seen.add(id(root))
    first = str(root).strip().splitlines()
    return f"{type(root).__name__}: {first[0]}" if first else type(root).__name__


@contextmanager
def written_as(path: str | Path) -> Iterator[None]:
    """A file written under a temporary name first: a refusal names the file the user
    asked for (``out/a.png``), not the temporary one (``out/.a.png.tmp``)."""
    try:
        yield
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
