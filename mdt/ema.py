"""A moving average of a network's weights (StarGAN v2's generator; StarGAN's with
``ema_decay``): it changes more slowly than the trained network and usually translates better."""

from __future__ import annotations

import copy

import torch


@torch.no_grad()
def ema_update(model: torch.nn.Module, average: torch.nn.Module, decay: float) -> None:
    """average <- decay * average + (1 - decay) * model, parameter by parameter; buffers
    (instance-norm statistics) are copied."""
    for p, a in zip(model.parameters(), average.parameters(), strict=True):
        a.lerp_(p, 1.0 - decay)
    for buffer, averaged in zip(model.buffers(), average.buffers(), strict=True):
        averaged.copy_(buffer)


def moving_average(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` to average into, without gradients (a generator compiled in
    place gives a copy that runs its own weights: tests/test_quality_switches.py)."""
    return copy.deepcopy(network).requires_grad_(False)
