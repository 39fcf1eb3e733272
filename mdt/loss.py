"""The interface of ``loss`` components: what a method asks of each loss table.

A loss declares what it ``reads`` in each phase of a method's updates ("discriminator",
"generator"): names of fields of that phase's step state, which the method publishes
(``Method.phases``; see :mod:`mdt.contracts`). ``mdt recipe check`` refuses a loss that
reads a field the method does not offer. A loss computes ``(value, {term: value})`` from
the state, and has a ``weight`` that the method applies; ``weight_at(step)`` lets a
weight change over training (StarGAN v2's diversity loss decays to 0), as a function of
the step alone so that a resumed run continues at the right value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mdt.component import Component
from mdt.ranges import Weight

Terms = dict[str, torch.Tensor]


class Loss(Component):
    """One term of a method's updates; its recipe table's name is the name in the log."""

    #: phase -> the state fields read in it, e.g. {"discriminator": ("real_scores", "fake_scores")}
    reads: dict[str, tuple[str, ...]] = {}
    #: What the method multiplies it by; set by ``__init__`` (a subclass that defines its own
    #: calls ``super().__init__(weight)``: the build refuses a loss without a number here).
    weight: float | None = None
    decays = False  # whether weight_at changes with the step (every method's update then logs it)

    def __init__(self, weight: Weight = 1.0) -> None:
        self.weight = float(weight)

    def weight_at(self, step: int) -> float:
        """The weight for the update at 0-based ``step``."""
        assert self.weight is not None, "the build refuses a loss whose weight is not a number"
        return self.weight

    def __call__(self, phase: str, state) -> tuple[torch.Tensor, Terms]:
        raise NotImplementedError


def weighted_total(
    losses: Mapping[str, Any], phase: str, state, step: int, prefix: str, device: torch.device
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted sum of the losses that take part in ``phase``, and what to log: each
    loss, its terms and the total, detached, under ``prefix`` ("D", "G/latent")."""
    total = torch.zeros((), device=device)
    logged: dict[str, torch.Tensor] = {}
    for name, loss in losses.items():
        if phase not in loss.reads:
            continue
        value, terms = loss(phase, state)
        total = total + loss.weight_at(step) * value
        logged[f"{prefix}/{name}"] = value.detach().float()
        for term, term_value in terms.items():
            logged[f"{prefix}/{name}/{term}"] = term_value.detach().float()
    logged[f"{prefix}/total"] = total.detach().float()
    return total, logged
