"""Each recording's WORLD features, computed once and kept beside the corpus.

Harvest takes about a third of a second per second of speech on one core, so every
recording is analysed once and its F0 and mel-cepstra written to
``<root>/.mdt-features/<speaker>/<file>.npz``; a file whose size or time has changed since
is analysed again. The aperiodicity is not kept: only synthesis needs it, and
``mdt translate`` analyses its own input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mdt.errors import MdtError
from mdt_stargan_vc.world import analyse, read_wave

FOLDER = ".mdt-features"


@dataclass(frozen=True)
class Recording:
    """One recording of the corpus: its file, speaker and utterance (the same utterance id
    across speakers is the same sentence in a parallel corpus)."""

    path: Path
    speaker: str
    utterance: str


@dataclass
class Features:
    f0: np.ndarray  # (T,) Hz, 0 unvoiced
    mcep: np.ndarray  # (T, 36)


def features_of(recording: Recording, root: Path) -> Features:
    """The recording's F0 and mel-cepstra, from the feature folder or analysed now."""
    stat = recording.path.stat()
    kept = root / FOLDER / recording.speaker / f"{recording.path.name}.npz"
    stamp = np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)
    if kept.is_file():
        try:
            with np.load(kept) as stored:
                if np.array_equal(stored["stamp"], stamp):
                    return Features(stored["f0"].astype(np.float64), stored["mcep"].astype(np.float64))
        except (OSError, ValueError, KeyError):
            pass  # damaged or from another version: analysed again
    analysis = analyse(read_wave(recording.path))
    f0, mcep = analysis.f0.astype(np.float32), analysis.mcep.astype(np.float32)
    kept.parent.mkdir(parents=True, exist_ok=True)
    partial = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as handle:
        np.savez(handle, f0=f0, mcep=mcep, stamp=stamp)
    partial.replace(kept)
    # the numbers every later run reads back, not the analysis's float64: a rerun trains alike
    return Features(f0.astype(np.float64), mcep.astype(np.float64))


def all_features(recordings: Sequence[Recording], root: Path) -> list[Features]:
    """Every recording's features; one that cannot be read is one line naming it."""
    out = []
    for recording in recordings:
        try:
            out.append(features_of(recording, root))
        except MdtError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            raise MdtError(f"cannot analyse recording '{recording.path}': {exc}") from None
    return out
