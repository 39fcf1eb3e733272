"""``[run] precision = "auto"``: bf16 autocast where the hardware computes in bf16, else fp32.

Which one a run uses is decided once, when it starts, and written into its recipe.toml and
checkpoints as ``"fp32"`` or ``"bf16"``; a resumed run keeps what its checkpoint used (a
checkpoint from before "auto" existed says ``"fp32"``), so an upgrade never changes the
arithmetic of a run halfway through.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import torch
import torch.nn.functional as F

AUTO = "auto"
PRECISIONS = ("fp32", "bf16")  # what "auto" settles to
CPUINFO = Path("/proc/cpuinfo")


def bf16_hardware(device: torch.device) -> str | None:
    """What makes bf16 fast on ``device`` ("CUDA bf16", "AMX"), or None.

    avx512_bf16 without AMX is not on this list: whether it is faster than fp32 depends on
    the CPU, so ``choose_precision`` measures it instead.
    """
    if device.type == "cuda":
        return "CUDA bf16" if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and _cpu_has("_is_amx_tile_supported", "amx_bf16"):
        return "AMX"
    return None


# bf16 must beat fp32 by this much to be chosen: below it the rounding is not worth it.
WORTH_BF16 = 1.2


@functools.cache
def bf16_convolution_speedup() -> float:
    """How many times faster a 3x3 convolution runs under bf16 autocast than in fp32 on
    this CPU (best of several timings each; about a tenth of a second, once per process).

    avx512_bf16 without AMX was measured both ways on two machines with
    ``benchmarks/precision.py`` (docs/performance.md): on a 2-core Xeon bf16 ran this
    convolution at 0.55x of fp32 and a StarGAN step 24% slower; on a 2-core EPYC at 2.0x
    and a step 1.8x faster. The convolution foretold the step both times.
    """
    random = torch.Generator().manual_seed(0)  # not nn.Conv2d: its init draws from the run's stream
    weight = torch.randn(256, 256, 3, 3, generator=random) * 0.02
    x = torch.randn(4, 256, 16, 16, generator=random)
    fp32, bf16 = _best_seconds(weight, x)
    return fp32 / bf16


def _best_seconds(weight: torch.Tensor, x: torch.Tensor, warmup: int = 2, repeats: int = 7) -> tuple[float, float]:
    """The best time of the convolution in fp32 and under bf16 autocast, the two taking
    turns: other work on the machine (another process on 2 cores) then slows both alike,
    where timing one after the other let it slow only one and flip the choice."""
    times: dict[bool, list[float]] = {False: [], True: []}
    with torch.no_grad():
        for i in range(warmup + repeats):
            for bf16 in (False, True):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    start = time.perf_counter()
                    F.conv2d(x, weight, padding=1)
                    if i >= warmup:
                        times[bf16].append(time.perf_counter() - start)
    return min(times[False]), min(times[True])


def _cpu_has(torch_query: str, cpuinfo_flag: str) -> bool:
    """torch's own query (it also checks the OS enables the feature); else /proc/cpuinfo."""
    query = getattr(torch.cpu, torch_query, None)
    if query is not None:
        return bool(query())
    try:
        with CPUINFO.open() as f:
            return any(line.startswith("flags") and cpuinfo_flag in line.split() for line in f)
    except OSError:
        return False


def choose_precision(setting: str, device: torch.device, resumed: str | None = None) -> tuple[str, str]:
    """(``"fp32"`` or ``"bf16"``, why) for a run's ``precision`` setting on ``device``;
    ``resumed`` is the precision of the checkpoint a run continues from, if any."""
    if setting != AUTO:
        return setting, "set in the recipe"
    if resumed in PRECISIONS:
        return resumed, "what the resumed checkpoint used"
    hardware = bf16_hardware(device)
    if hardware:
        return "bf16", f"auto: {device.type} has {hardware}"
    if device.type == "cpu" and _cpu_has("_is_avx512_bf16_supported", "avx512_bf16"):
        speedup = bf16_convolution_speedup()
        why = f"auto: cpu has avx512_bf16 without AMX; a bf16 convolution ran {speedup:.2g}x as fast as fp32"
        return ("bf16" if speedup >= WORTH_BF16 else "fp32"), why
    if device.type == "cpu":
        return "fp32", "auto: cpu has no bf16 instructions"
    return "fp32", f"auto: no bf16 hardware on {device.type}"
