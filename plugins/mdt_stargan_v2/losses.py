"""StarGAN v2's losses: plain functions returning (total, {term: value}), and the recipe
components that apply them.

Each component names what it ``reads`` in each phase of a
:class:`~mdt_stargan_v2.method.StepState`, which computes each value once, on first use.
The method multiplies by ``weight_at(step)``. StarGAN's ``cycle_l1`` works here too:
the step state offers the same ``real`` and ``reconstruction``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mdt.loss import Loss, Terms
from mdt.ranges import Count, Weight


def nonsaturating_discriminator(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """-log D(real) - log(1 - D(fake)), as binary cross-entropy on logits."""
    real, fake = F.softplus(-real_logits).mean(), F.softplus(fake_logits).mean()
    return real + fake, {"real": real, "fake": fake}


def nonsaturating_generator(fake_logits: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """-log D(fake): the non-saturating generator loss."""
    return F.softplus(-fake_logits).mean(), {}


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """R1 (Mescheder et al. 2018): half the squared gradient norm of D on real images,
    averaged over the batch. ``real_images`` must require grad and have produced ``real_logits``."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    squared = grad.float().pow(2).flatten(1).sum(1)
    return 0.5 * squared.mean(), {"grad_norm": squared.detach().sqrt().mean()}


def style_reconstruction(predicted: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """|E(G(x, s)) - s|: the generator must use the style it is given."""
    return (predicted - target).abs().mean(), {}


def diversity_sensitive(fake: torch.Tensor, other_fake: torch.Tensor) -> tuple[torch.Tensor, Terms]:
    """-|G(x, s1) - G(x, s2)|: minimising it pushes two styles' outputs apart. The
    second output is treated as a constant, as in the paper's code."""
    distance = (fake - other_fake.detach()).abs().mean()
    return -distance, {"distance": distance.detach()}


class NonSaturatingAdversarial(Loss):
    """Non-saturating GAN loss on the multi-task discriminator's output for each image's domain."""

    reads = {"discriminator": ("real_scores", "fake_scores"), "generator": ("fake_scores",)}

    def __call__(self, phase, state):
        if phase == "discriminator":
            return nonsaturating_discriminator(state.real_scores, state.fake_scores)
        return nonsaturating_generator(state.fake_scores)


class R1Penalty(Loss):
    """Zero-centred gradient penalty on real images for the discriminator; the paper's gamma is 1."""

    reads = {"discriminator": ("real_scores", "real_input")}

    def __call__(self, phase, state):
        return r1_penalty(state.real_scores, state.real_input)


class StyleReconstruction(Loss):
    """The style encoder must recover the style a fake was made with."""

    reads = {"generator": ("predicted_style", "target_style")}

    def __call__(self, phase, state):
        return style_reconstruction(state.predicted_style, state.target_style)


class DiversitySensitive(Loss):
    """Outputs of two styles for the same input should differ. The weight falls linearly
    from ``weight`` to 0 over the first ``decay_iterations`` updates (the paper's ds_iter);
    it depends only on the step, so a resumed run continues at the right value."""

    reads = {"generator": ("fake", "other_fake")}
    decays = True

    def __init__(self, weight: Weight = 1.0, decay_iterations: Count = 100000) -> None:
        super().__init__(weight)
        if decay_iterations < 0:
            raise ValueError(f"decay_iterations must be 0 (no decay) or positive, not {decay_iterations}")
        self.decay_iterations = decay_iterations

    def weight_at(self, step: int) -> float:
        if self.decay_iterations == 0:
            return super().weight_at(step)
        return super().weight_at(step) * max(0.0, 1.0 - step / self.decay_iterations)

    def __call__(self, phase, state):
        return diversity_sensitive(state.fake, state.other_fake)
