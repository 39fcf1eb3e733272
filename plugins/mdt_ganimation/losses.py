"""GANimation's attention losses: plain functions returning (total, {term: value}), and the
components that read the attention masks A of the translation and of the cycle back from
the method's state (``fake_mask``, ``reconstruction_mask``). Both keep A from saturating to
1 — where the generator would change nothing — and smooth. GANimation's other losses are
StarGAN's: ``wgan``, ``gradient_penalty``, ``domain_classification`` (a regression for
continuous labels) and ``cycle_l1``.
"""

from __future__ import annotations

import torch

from mdt.loss import Loss, Terms
from mdt.ranges import Weight


def mask_mean(*masks: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """The sum over masks of each mask's mean value."""
    return sum(m.mean() for m in masks), {}  # type: ignore[return-value]  # a tensor: every caller gives masks, never none


def total_variation(*masks: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """Σ |A(i, j+1) − A(i, j)| + |A(i+1, j) − A(i, j)| over every pixel, summed over masks and
    the batch (the official code's scale, hence its weight of 1e-5)."""
    total = sum((m[..., :, 1:] - m[..., :, :-1]).abs().sum() + (m[..., 1:, :] - m[..., :-1, :]).abs().sum() for m in masks)
    return total, {}  # type: ignore[return-value]  # a tensor: every caller gives masks, never none


class AttentionMean(Loss):
    """Mean of the attention masks: the paper's λ_A = 0.1 keeps them from all-ones."""

    reads = {"generator": ("fake_mask", "reconstruction_mask")}

    def __init__(self, weight: Weight = 0.1) -> None:
        super().__init__(weight)

    def __call__(self, phase, state):
        return mask_mean(state.fake_mask, state.reconstruction_mask)


class AttentionSmoothness(Loss):
    """Total variation of the attention masks, so they are smooth; the paper's λ_TV = 1e-5."""

    reads = {"generator": ("fake_mask", "reconstruction_mask")}

    def __init__(self, weight: Weight = 1e-5) -> None:
        super().__init__(weight)

    def __call__(self, phase, state):
        return total_variation(state.fake_mask, state.reconstruction_mask)
