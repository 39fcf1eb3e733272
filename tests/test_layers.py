"""mdt.layers.leaky_relu: torch's values and gradients, and a gradient penalty's double
backward that does not pass zeros back through the forward graph."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdt.layers import LeakyReLU, leaky_relu


def _critic(activation) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), activation(0.01), nn.Conv2d(8, 16, 4, 2, 1), activation(0.01),
                         nn.Conv2d(16, 1, 3, 1, 1, bias=False))


def _penalty_backward(critic: nn.Module, images: torch.Tensor) -> Counter:
    """WGAN-GP's penalty on ``critic`` at ``images``, written out independently of mdt's
    losses; backward into the weights. Returns the aten ops that the backward ran."""
    mixed = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        penalty.backward()
    return Counter(event.name for event in profile.events())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_and_gradients_are_torchs(dtype):
    x = torch.randn(4, 5, 6, 7).to(dtype)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, 1e-30])  # the kink and its neighbours
    ours, theirs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_ours, out_theirs = leaky_relu(ours, 0.2), F.leaky_relu(theirs, 0.2)
    assert torch.equal(out_ours, out_theirs)
    upstream = torch.randn_like(out_ours)
    out_ours.backward(upstream)
    out_theirs.backward(upstream)
    assert torch.equal(ours.grad, theirs.grad)


def test_gradient_penalty_gradients_equal_torchs_without_the_pass_of_zeros():
    images = torch.randn(4, 3, 16, 16)
    native, ours = _critic(nn.LeakyReLU), _critic(LeakyReLU)
    ops_native = _penalty_backward(native, images)
    ops_ours = _penalty_backward(ours, images)
    for (name, a), b in zip(native.named_parameters(), ours.parameters()):
        if b.grad is None:  # a bias: the penalty does not depend on it, torch's pass of zeros gives it 0
            assert torch.count_nonzero(a.grad) == 0, name
        else:
            torch.testing.assert_close(b.grad, a.grad, rtol=0, atol=0, msg=name)
    # torch's leaky ReLU sends zeros back through the forward graph: a convolution backward
    # per layer below the head; ours runs none (the double backward is convolutions only).
    assert ops_native["aten::convolution_backward"] == 2
    assert ops_ours["aten::convolution_backward"] == 0


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_a_traced_network_holds_torchs_own_op():
    """Export (TorchScript, ONNX) sees aten::leaky_relu, not a Python function."""
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    network = nn.Sequential(nn.Conv2d(3, 3, 1), LeakyReLU(0.1))
    traced = torch.jit.trace(network, x, check_trace=False)
    assert "aten::leaky_relu" in str(traced.inlined_graph)
    assert "PythonOp" not in str(traced.inlined_graph)
    torch.testing.assert_close(traced(x), F.leaky_relu(network[0](x), 0.1))
