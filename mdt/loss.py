"""The interface of ``loss`` components: what a method asks of each loss table.

A loss takes part in some ``phases`` of a method's updates ("discriminator",
"generator"), computes ``(value, {term: value})`` from the method's step state, and has
a ``weight`` that the method applies; ``weight_at(step)`` lets a weight change over
training (StarGAN v2's diversity loss decays to 0), as a function of the step alone so
that a resumed run continues at the right value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

Terms = dict[str, torch.Tensor]


class Loss:
    phases: tuple[str, ...] = ()
    decays = False  # whether weight_at changes with the step (methods then log it)

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def weight_at(self, step: int) -> float:
        """The weight for the update at 0-based ``step``."""
        return self.weight

    def __call__(self, phase: str, state) -> tuple[torch.Tensor, Terms]:
        raise NotImplementedError


def weight_at(loss, step: int) -> float:
    """A loss's weight at ``step``; a loss need not subclass :class:`Loss`, only have ``weight``."""
    method = getattr(loss, "weight_at", None)
    return method(step) if method is not None else loss.weight


def weighted_total(losses: Mapping[str, Any], phase: str, state, step: int, prefix: str, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The weighted sum of the losses that take part in ``phase``, and what to log: each
    loss, its terms and the total, detached, under ``prefix`` ("D", "G/latent")."""
    total = torch.zeros((), device=device)
    logged: dict[str, torch.Tensor] = {}
    for name, loss in losses.items():
        if phase not in loss.phases:
            continue
        value, terms = loss(phase, state)
        total = total + weight_at(loss, step) * value
        logged[f"{prefix}/{name}"] = value.detach().float()
        for term, term_value in terms.items():
            logged[f"{prefix}/{name}/{term}"] = term_value.detach().float()
    logged[f"{prefix}/total"] = total.detach().float()
    return total, logged


def check_phases(losses: Mapping[str, Any], phases: tuple[str, ...], method: str) -> None:
    """Every loss table must name phases that ``method`` runs."""
    from mdt.errors import MdtError

    for name, loss in losses.items():
        own = getattr(loss, "phases", None)
        if not own or not set(own) <= set(phases):
            raise MdtError(f"[losses.{name}] takes part in {tuple(own or ())}, not in the phases of {method}: {', '.join(phases)}")
