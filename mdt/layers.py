"""Layers for discriminators whose gradients are differentiated again.

A gradient penalty (WGAN-GP, R1) differentiates D's input gradient with respect to D's
weights. torch's own leaky ReLU declares its backward differentiable in the saved
input too, with a derivative that is zero everywhere; autograd still sends those zeros
back through the whole forward graph, which costs one more backward pass of D per
penalty (convolution gradients of zeros, for weights and inputs). The leaky ReLU here
computes exactly the same values and first derivatives with the same kernels, tells
autograd that its backward depends on the upstream gradient alone, and passes "no
gradient" on as none rather than as a tensor of zeros.

A discriminator's last strided convolutions hold most of its weights and produce maps of
a few positions. On a CPU, oneDNN computes their weight gradients slowly at that shape;
:class:`SmallMapConv2d` computes such a convolution as one matrix product instead (the
same sums, in another order).
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


SMALL_MAP = 16  # output positions at most: 4x4 (StarGAN D's last two layers at 64 and 128 px)


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters, so checkpoints do not change) that, on a CPU and
    for an output of at most ``SMALL_MAP`` positions, unfolds the input and runs one
    matrix product: (batch x positions, inputs x kernel) by (inputs x kernel, outputs).

    Measured on 2 CPU cores (fp32, batch 32, forward / forward and backward): 512 -> 1024
    channels, 4x4 -> 2x2: 31 / 154 ms as a convolution, 15 / 70 as a product; 1024 -> 2048,
    4x4 -> 2x2: 107 / 529 against 40 / 170; 512 -> 1024, 8x8 -> 4x4: 53 / 176 against
    42 / 122. A GPU, a tracer (export) or a larger map keeps torch's convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.groups != 1 or self.padding_mode != "zeros" or isinstance(self.padding, str) \
                or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return super().forward(x)
        rows = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
                zip(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)]
        if rows[0] * rows[1] > SMALL_MAP:
            return super().forward(x)
        return _as_matrix_product(x, self, rows)


def _as_matrix_product(x: torch.Tensor, conv: nn.Conv2d, rows: list[int]) -> torch.Tensor:
    """conv(x) with ``rows`` its output's height and width, by unfold and one matrix product."""
    batch = x.shape[0]
    columns = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # (B, C*kh*kw, L)
    flat = columns.transpose(1, 2).reshape(batch * rows[0] * rows[1], -1)
    weight = conv.weight.reshape(conv.weight.shape[0], -1)  # autocast casts addmm/mm as it does a convolution
    out = flat @ weight.t() if conv.bias is None else torch.addmm(conv.bias, flat, weight.t())
    # (B*L, O) is the channels-last layout of (B, O, H, W); a few positions: copy to torch's default
    return out.view(batch, rows[0], rows[1], -1).permute(0, 3, 1, 2).contiguous()
