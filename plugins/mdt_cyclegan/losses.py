"""CycleGAN's losses: plain functions returning (total, {term: value}), and the recipe
components that read their inputs from a :class:`~mdt_cyclegan.method.CycleState`.
Names ending in ``_a`` are of domain A, ``_b`` of domain B; ``fake_b = G_AB(real_a)``.
"""

from __future__ import annotations

import torch

from mdt.loss import Loss, Terms
from mdt.ranges import Weight


def least_squares_discriminator(real_a, fake_a, real_b, fake_b) -> tuple[torch.Tensor, Terms]:
    """½[(D_A(a) − 1)² + D_A(fake_a)²] + ½[(D_B(b) − 1)² + D_B(fake_b)²], each averaged over its patches."""
    loss_a = 0.5 * ((real_a - 1).pow(2).mean() + fake_a.pow(2).mean())
    loss_b = 0.5 * ((real_b - 1).pow(2).mean() + fake_b.pow(2).mean())
    return loss_a + loss_b, {"a": loss_a, "b": loss_b}


def least_squares_generator(fake_a, fake_b) -> tuple[torch.Tensor, Terms]:
    """(D_A(G_BA(b)) − 1)² + (D_B(G_AB(a)) − 1)²: each generator wants its fakes scored real."""
    loss_a, loss_b = (fake_a - 1).pow(2).mean(), (fake_b - 1).pow(2).mean()
    return loss_a + loss_b, {"a": loss_a, "b": loss_b}


def paired_l1(real_a, other_a, real_b, other_b) -> tuple[torch.Tensor, Terms]:
    """‖other_a − real_a‖₁ + ‖other_b − real_b‖₁, each averaged over pixels."""
    loss_a, loss_b = (other_a - real_a).abs().mean(), (other_b - real_b).abs().mean()
    return loss_a + loss_b, {"a": loss_a, "b": loss_b}


class LeastSquaresAdversarial(Loss):
    """LSGAN (Mao et al. 2017) for both discriminators and both generators."""

    reads = {
        "discriminator": ("real_scores_a", "fake_scores_a", "real_scores_b", "fake_scores_b"),
        "generator": ("fake_scores_a", "fake_scores_b"),
    }

    def __call__(self, phase, state):
        if phase == "discriminator":
            return least_squares_discriminator(state.real_scores_a, state.fake_scores_a, state.real_scores_b, state.fake_scores_b)
        return least_squares_generator(state.fake_scores_a, state.fake_scores_b)


class CycleConsistency(Loss):
    """‖G_BA(G_AB(a)) − a‖₁ + ‖G_AB(G_BA(b)) − b‖₁; the paper's λ is 10."""

    reads = {"generator": ("real_a", "reconstruction_a", "real_b", "reconstruction_b")}

    def __init__(self, weight: Weight = 10.0) -> None:
        super().__init__(weight)

    def __call__(self, phase, state):
        return paired_l1(state.real_a, state.reconstruction_a, state.real_b, state.reconstruction_b)


class Identity(Loss):
    """‖G_BA(a) − a‖₁ + ‖G_AB(b) − b‖₁: a generator given an image of its target domain
    should leave it alone (keeps colours); the paper's weight is half the cycle's, 5."""

    reads = {"generator": ("real_a", "identity_a", "real_b", "identity_b")}

    def __init__(self, weight: Weight = 5.0) -> None:
        super().__init__(weight)

    def __call__(self, phase, state):
        return paired_l1(state.real_a, state.identity_a, state.real_b, state.identity_b)
