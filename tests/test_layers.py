"""mdt.layers: leaky_relu gives torch's values and gradients, and a gradient penalty's
double backward that does not pass zeros back through the forward graph; SmallMapConv2d
gives nn.Conv2d's values and gradients (first and second order) by one matrix product."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdt.layers import LeakyReLU, SmallMapConv2d, leaky_relu


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


# -- SmallMapConv2d ---------------------------------------------------------------------


def _ops(work) -> Counter:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        work()
    return Counter(event.name for event in profile.events())


def _twins(*args, **kwargs) -> tuple[nn.Conv2d, SmallMapConv2d]:
    torch.manual_seed(0)
    theirs = nn.Conv2d(*args, **kwargs)
    ours = SmallMapConv2d(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())  # the same parameters, under the same names
    return theirs, ours


@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "bias"), [
    (4, 4, 2, 1, True),    # StarGAN D's last layer: 4x4 -> 2x2
    (2, 4, 2, 1, False),   # -> 1x1
    (5, 3, 2, 0, True),    # odd size, no padding: -> 2x2
    (8, 4, 2, 1, True),    # -> 4x4, the largest map it takes
    (2, 2, 1, 0, False),   # a kernel covering the map (the class head's shape)
])
def test_small_map_convolution_is_nn_conv2d(size, kernel, stride, padding, bias):
    theirs, ours = _twins(6, 10, kernel, stride, padding, bias=bias)
    x = torch.randn(3, 6, size, size)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    expected, out = theirs(a), ours(b)
    assert out.shape == expected.shape and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    upstream = torch.randn_like(out)
    expected.backward(upstream)
    out.backward(upstream)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(theirs.named_parameters(), ours.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=1e-6, msg=name)
    assert _ops(lambda: ours(x))["aten::mm" if not bias else "aten::addmm"] == 1


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_a_larger_map_or_a_tracer_keeps_torchs_convolution():
    _, ours = _twins(4, 8, 4, 2, 1)
    big = torch.randn(2, 4, 10, 10)  # -> 5x5 = 25 positions
    ops = _ops(lambda: ours(big))
    assert ops["aten::convolution"] == 1 and ops["aten::addmm"] == 0
    small = torch.randn(2, 4, 4, 4)
    traced = torch.jit.trace(ours, small, check_trace=False)
    assert "aten::_convolution" in str(traced.inlined_graph)
    torch.testing.assert_close(traced(small), ours(small), rtol=1e-5, atol=1e-6)


def test_gradient_penalty_through_small_map_layers_matches_nn_conv2d():
    """A critic whose last two layers have 2x2 and 1x1 outputs, penalty written out here."""
    def critic(conv):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), LeakyReLU(0.01), conv(8, 16, 4, 2, 1), LeakyReLU(0.01),
                             conv(16, 32, 4, 2, 1), LeakyReLU(0.01), nn.Conv2d(32, 1, 1, bias=False))
    images = torch.randn(4, 3, 8, 8)
    theirs, ours = critic(nn.Conv2d), critic(SmallMapConv2d)
    _penalty_backward(theirs, images)
    ops = _penalty_backward(ours, images)
    for (name, a), b in zip(theirs.named_parameters(), ours.parameters()):
        if a.grad is None:
            assert b.grad is None, name
        else:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert ops["aten::mm"] > 0  # the small layers' double backward ran as matrix products


def test_small_map_convolution_under_bf16_autocast_computes_in_bf16():
    theirs, ours = _twins(16, 32, 4, 2, 1)
    x = torch.randn(4, 16, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, out = theirs(x), ours(x)
    assert out.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected.float(), rtol=2e-2, atol=2e-2)
