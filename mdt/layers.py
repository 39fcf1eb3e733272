"""Layers for discriminators whose gradients are differentiated again.

A gradient penalty (WGAN-GP, R1) differentiates D's input gradient with respect to D's
weights. torch's own leaky ReLU declares its backward differentiable in the saved
input too, with a derivative that is zero everywhere; autograd still sends those zeros
back through the whole forward graph, which costs one more backward pass of D per
penalty (convolution gradients of zeros, for weights and inputs). The leaky ReLU here
computes exactly the same values and first derivatives with the same kernels, tells
autograd that its backward depends on the upstream gradient alone, and passes "no
gradient" on as none rather than as a tensor of zeros.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _LeakyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.slope = slope
        ctx.set_materialize_grads(False)  # no gradient in stays none out: nothing runs below
        ctx.save_for_backward(x.detach())  # detached: the backward's graph never reaches x
        return F.leaky_relu(x, slope)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if grad is None:
            return None, None
        (x,) = ctx.saved_tensors
        # differentiable in grad (a double backward gets grad_grad * slope-or-1), constant in x
        return torch.ops.aten.leaky_relu_backward(grad, x, ctx.slope, False), None


def leaky_relu(x: torch.Tensor, slope: float) -> torch.Tensor:
    """``F.leaky_relu(x, slope)``, the same values and gradients; a gradient penalty's
    double backward through it skips the pass of zeros through the forward graph."""
    if not (torch.is_grad_enabled() and x.requires_grad) or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return F.leaky_relu(x, slope)  # nothing to differentiate twice, or a tracer that wants aten ops
    return _LeakyReLU.apply(x, slope)


class LeakyReLU(nn.Module):
    """Module form of :func:`leaky_relu`; no parameters, so checkpoints do not change."""

    def __init__(self, slope: float) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return leaky_relu(x, self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"
