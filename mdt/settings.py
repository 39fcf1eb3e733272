"""``[run]``: settings of the engine itself, not of any component."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RunSettings:
    """How long to train, on what, and how often to log, sample and save."""

    iterations: int = 1000
    batch_size: int = 16
    image_size: int = 128
    seed: int = 0
    device: str = "auto"
    deterministic: bool = False
    num_workers: int = 0
    threads: int = 0
    log_every: int = 10
    sample_every: int = 1000
    sample_count: int = 8
    checkpoint_every: int = 10000
    keep_checkpoints: int = 3
    skip_bad_files: bool = False
    tensorboard: bool = True
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    cache_images: bool = False
    compile_generator: bool = False
