"""Drop-in layers that compute torch's own operations faster on a CPU, with the same
parameters (so checkpoints and imported weights do not change) and the same sums.

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

A generator's last convolution maps many channels to three. oneDNN vectorises a
convolution over 16 output channels, so with three it does about five times the work it
keeps; :class:`FewOutputsConv2d` computes each kernel row as a one-row convolution with
three times the kernel's height outputs and adds the rows' results, shifted.
"""

from __future__ import annotations

from typing import cast

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
        if (
            x.device.type != "cpu"
            or self.groups != 1
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or torch.jit.is_tracing()
            or torch.jit.is_scripting()
            or torch.compiler.is_compiling()
        ):
            return super().forward(x)
        rows = [
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation, strict=True)
        ]
        if rows[0] * rows[1] > SMALL_MAP:
            return super().forward(x)
        return _as_matrix_product(x, self, rows)


def _as_matrix_product(x: torch.Tensor, conv: nn.Conv2d, rows: list[int]) -> torch.Tensor:
    """conv(x) with ``rows`` its output's height and width, by unfold and one matrix product."""
    batch = x.shape[0]
    assert not isinstance(conv.padding, str), "SmallMapConv2d keeps torch's convolution for a padding by name"
    columns = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)  # (B, C*kh*kw, L)
    flat = columns.transpose(1, 2).reshape(batch * rows[0] * rows[1], -1)
    weight = conv.weight.reshape(conv.weight.shape[0], -1)  # autocast casts addmm/mm as it does a convolution
    out = flat @ weight.t() if conv.bias is None else torch.addmm(conv.bias, flat, weight.t())
    # (B*L, O) is the channels-last layout of (B, O, H, W); a few positions: copy to torch's default
    return out.view(batch, rows[0], rows[1], -1).permute(0, 3, 1, 2).contiguous()


FEW_OUTPUTS = 8  # output channels at most: an RGB image, or RGB and an attention mask


class FewOutputsConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters) computed by :func:`few_outputs_conv2d` where it
    applies: a stride-1, undilated, ungrouped convolution with zero padding.

    Measured on 2 CPU cores (StarGAN G's last layer, 64 -> 3 channels, 7x7, 64 px,
    batch 16; forward / forward and backward): bf16 autocast 18.9 / 102 ms as a
    convolution, 8.8 / 28 by rows; fp32 32.8 / 102 against 14.7 / 57."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.groups != 1
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or self.stride != (1, 1)
            or self.dilation != (1, 1)
        ):
            return super().forward(x)
        padding = cast(tuple[int, int], self.padding)  # a Conv2d's padding is a pair; torch types it tuple[int, ...]
        return few_outputs_conv2d(x, self.weight, self.bias, padding)


def few_outputs_conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, padding: int | tuple[int, int] = 0
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, 1, padding)``; on a CPU, with at most ``FEW_OUTPUTS``
    outputs and a kernel more than one row high, as one (1 x kw) convolution with outputs
    x kh channels (one per output and kernel row) whose rows are then added, each shifted
    by its kernel row: the same products and sums. A GPU, a tracer (export) or another
    shape gets torch's convolution."""
    if (
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.compiler.is_compiling()
        or x.device.type != "cpu"
        or x.dim() != 4
        or weight.shape[0] > FEW_OUTPUTS
        or weight.shape[2] == 1
    ):
        return F.conv2d(x, weight, bias, 1, padding)  # tracers first: they would record the shape tests
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    outputs, inputs, height, width = weight.shape
    by_row = weight.permute(0, 2, 1, 3).reshape(outputs * height, inputs, 1, width)  # rows (output, u)
    rows = F.conv2d(x, by_row, None, 1, (0, pad_w))  # autocast casts it as it would the convolution
    rows = F.pad(rows, (0, 0, pad_h, pad_h))
    out_h = rows.shape[2] - height + 1
    rows = rows.view(x.shape[0], outputs, height, rows.shape[2], rows.shape[3])
    # output row i = sum over u of row u's results at padded row i + u, accumulated in at
    # least fp32 and rounded once, as a convolution is
    total = torch.add(rows[:, :, 0, :out_h].to(torch.promote_types(rows.dtype, torch.float32)), rows[:, :, 1, 1 : 1 + out_h])
    for u in range(2, height):
        total.add_(rows[:, :, u, u : u + out_h])
    if bias is not None:
        total.add_(bias.view(1, -1, 1, 1))
    return total.to(rows.dtype)
