"""Reusing a training-mode forward's output instead of running the forward again.

StarGAN's official code runs the generator on a batch in the discriminator's update and
again, with the same weights and input, in the generator's. Reusing the first output
saves a forward and gives the same values, but a training-mode forward changes more than
its output: batch and instance norms that track running statistics update them, and a
checkpoint holds those. A forward is recorded so that the second one's updates can be
replayed (each norm again on the input it received, a small part of the forward's cost),
and it is reused only when nothing else could differ: no random draws, no buffer other
than those norms' statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.nn.modules.batchnorm import _NormBase


class ForwardRecord:
    """What one training-mode forward of a module changed besides its output."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.norm_inputs: list[tuple[torch.nn.Module, tuple]] = []
        self.drew_random = False

    @property
    def reusable(self) -> bool:
        """True when running the forward again would change nothing that replay() does
        not: it drew no random numbers, and every buffer of the module is a norm's
        running statistics (a spectral norm's vectors, say, would make it False)."""
        norm_buffers = {id(b) for m in self.module.modules() if isinstance(m, _NormBase) for b in m.buffers(recurse=False)}
        return not self.drew_random and all(id(b) in norm_buffers for b in self.module.buffers())

    def replay(self) -> None:
        """Update the running statistics as a second, identical forward would: each norm
        once more on the input it received, in the same order (its output is dropped)."""
        with torch.no_grad():
            for norm, args in self.norm_inputs:
                norm(*args)


def _rng_states(device: torch.device) -> list[torch.Tensor]:
    states = [torch.random.get_rng_state()]
    if device.type == "cuda":
        states.append(torch.cuda.get_rng_state(device))
    return states


@contextmanager
def recorded_forward(module: torch.nn.Module, device: torch.device) -> Iterator[ForwardRecord]:
    """Record the forwards of ``module`` run inside: the inputs of its norms that update
    running statistics, and whether the random generator of ``device`` (or the CPU's) moved."""
    record = ForwardRecord(module)
    norms = [m for m in module.modules() if isinstance(m, _NormBase) and m.track_running_stats and m.training]
    handles = [m.register_forward_pre_hook(lambda norm, args: record.norm_inputs.append((norm, args))) for m in norms]
    before = _rng_states(device)
    try:
        yield record
    finally:
        for handle in handles:
            handle.remove()
        record.drew_random = any(not torch.equal(a, b) for a, b in zip(before, _rng_states(device), strict=True))
