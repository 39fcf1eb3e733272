"""``[run] precision = "auto"``: bf16 autocast where the hardware computes in bf16, else fp32.

Which one a run uses is decided once, when it starts, and written into its recipe.toml and
checkpoints as ``"fp32"`` or ``"bf16"``; a resumed run keeps what its checkpoint used (a
checkpoint from before "auto" existed says ``"fp32"``), so an upgrade never changes the
arithmetic of a run halfway through.
"""

from __future__ import annotations

from pathlib import Path

import torch

AUTO = "auto"
CPUINFO = Path("/proc/cpuinfo")


def bf16_hardware(device: torch.device) -> str | None:
    """What makes bf16 fast on ``device`` ("CUDA bf16", "AMX"), or None.

    A CPU with avx512_bf16 but no AMX computes bf16 dot products, yet not faster: on one
    such 2-core Xeon ``benchmarks/precision.py`` measured a 3x3 convolution at 101 GFLOP/s
    under bf16 autocast against 184 in fp32, and a StarGAN training step at 2.03 s
    against 1.64 (docs/performance.md). Without AMX a CPU stays fp32; a recipe can still
    ask for "bf16".
    """
    if device.type == "cuda":
        return "CUDA bf16" if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and _cpu_has("_is_amx_tile_supported", "amx_bf16"):
        return "AMX"
    return None


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
    if resumed in ("fp32", "bf16"):
        return resumed, "what the resumed checkpoint used"
    hardware = bf16_hardware(device)
    if hardware:
        return "bf16", f"auto: {device.type} has {hardware}"
    if device.type == "cpu":
        return "fp32", "auto: cpu has no AMX"
    return "fp32", f"auto: no bf16 hardware on {device.type}"
