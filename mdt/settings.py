"""``[run]``: settings of the engine itself, not of any component."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from mdt.ranges import AtLeast, Count, Positive


@dataclass(frozen=True)
class RunSettings:
    """How long to train, on what, and how often to log, sample and save. Every number
    is range-checked by ``mdt recipe check`` (:mod:`mdt.ranges`)."""

    iterations: Positive = 1000
    batch_size: Positive = 16
    image_size: Annotated[int, AtLeast(8)] = 128
    seed: Count = 0
    device: str = "auto"
    deterministic: bool = False
    num_workers: Count = 0
    threads: Count = 0  # 0: torch's default
    log_every: Positive = 10
    sample_every: Positive = 1000
    sample_count: Positive = 8
    checkpoint_every: Positive = 10000
    keep_checkpoints: Count = 3  # 0: keep every checkpoint
    skip_bad_files: bool = False
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 where the hardware has it (mdt/precision.py)
    channels_last: bool = False
    cache_images: bool | Literal["auto"] = "auto"  # auto: when the datasets allow it and it fits (mdt/cache.py)
    compile_generator: bool = False


DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")  # torch's device types mdt trains on
DEVICE_NAMES = "'auto', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu' or 'xpu:N'"


def device_problem(name: str) -> str | None:
    """What is wrong with a device's name on any machine (whether this one has the
    device is :func:`mdt.build.pick_device`'s question); None when nothing is."""
    kind, colon, index = name.partition(":")
    if name == "auto" or (kind in DEVICE_TYPES and (not colon or index.isdigit())):
        return None
    return f"mdt trains on {DEVICE_NAMES}, not on '{name}'"
