"""mdt.layers: leaky_relu gives torch's values and gradients, and a gradient penalty's
double backward that does not pass zeros back through the forward graph; SmallMapConv2d
gives nn.Conv2d's values and gradients (first and second order) by one matrix product;
FewOutputsConv2d gives them by one convolution per kernel row."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mdt.layers import FewOutputsConv2d, LeakyReLU, SmallMapConv2d, leaky_relu


def _critic(activation) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 4, 2, 1), activation(0.01), nn.Conv2d(8, 16, 4, 2, 1), activation(0.01), nn.Conv2d(16, 1, 3, 1, 1, bias=False)
    )


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
    for (name, a), b in zip(native.named_parameters(), ours.parameters(), strict=True):
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


def _twins(*args, kind=SmallMapConv2d, **kwargs) -> tuple[nn.Conv2d, nn.Conv2d]:
    torch.manual_seed(0)
    theirs = nn.Conv2d(*args, **kwargs)
    ours = kind(*args, **kwargs)
    ours.load_state_dict(theirs.state_dict())  # the same parameters, under the same names
    return theirs, ours


def _assert_same_values_and_gradients(theirs: nn.Module, ours: nn.Module, x: torch.Tensor, atol: float) -> None:
    """Outputs (shape, dtype, values, a contiguous layout), input gradients and every
    parameter's gradient of ``ours`` equal ``theirs``' within float rounding."""
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    expected, out = theirs(a), ours(b)
    assert out.shape == expected.shape and out.dtype == expected.dtype and out.is_contiguous()
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=atol)
    upstream = torch.randn_like(out)
    expected.backward(upstream)
    out.backward(upstream)
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=atol)
    for (name, p), q in zip(theirs.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-5, atol=atol, msg=name)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "bias"),
    [
        (4, 4, 2, 1, True),  # StarGAN D's last layer: 4x4 -> 2x2
        (2, 4, 2, 1, False),  # -> 1x1
        (5, 3, 2, 0, True),  # odd size, no padding: -> 2x2
        (8, 4, 2, 1, True),  # -> 4x4, the largest map it takes
        (2, 2, 1, 0, False),  # a kernel covering the map (the class head's shape)
    ],
)
def test_small_map_convolution_is_nn_conv2d(size, kernel, stride, padding, bias):
    theirs, ours = _twins(6, 10, kernel, stride, padding, bias=bias)
    x = torch.randn(3, 6, size, size)
    _assert_same_values_and_gradients(theirs, ours, x, atol=1e-6)
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
        return nn.Sequential(
            nn.Conv2d(3, 8, 4, 2, 1),
            LeakyReLU(0.01),
            conv(8, 16, 4, 2, 1),
            LeakyReLU(0.01),
            conv(16, 32, 4, 2, 1),
            LeakyReLU(0.01),
            nn.Conv2d(32, 1, 1, bias=False),
        )

    images = torch.randn(4, 3, 8, 8)
    theirs, ours = critic(nn.Conv2d), critic(SmallMapConv2d)
    _penalty_backward(theirs, images)
    ops = _penalty_backward(ours, images)
    for (name, a), b in zip(theirs.named_parameters(), ours.parameters(), strict=True):
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


# -- FewOutputsConv2d --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "outputs", "kernel", "padding", "bias"),
    [
        (64, 3, 7, 3, False),  # StarGAN G's last layer
        (16, 4, 7, 3, True),  # GANimation's colour and mask heads in one
        (8, 2, (3, 5), (1, 2), True),  # a kernel wider than high, its own padding per side
        (5, 8, 3, 0, False),  # no padding: the output shrinks; the most outputs it takes
        (6, 1, (2, 3), (0, 1), False),  # an even kernel height
    ],
)
def test_few_outputs_convolution_is_nn_conv2d(inputs, outputs, kernel, padding, bias):
    theirs, ours = _twins(inputs, outputs, kernel, 1, padding, bias=bias, kind=FewOutputsConv2d)
    x = torch.randn(3, inputs, 9, 11)
    _assert_same_values_and_gradients(theirs, ours, x, atol=1e-5)
    rows = [tuple(i) for op, i in _conv_inputs(lambda: ours(x)) if op == "aten::convolution"]
    kh, kw = theirs.kernel_size
    assert rows == [(outputs * kh, inputs, 1, kw)]  # one convolution, a kernel row per output channel


def _conv_inputs(work) -> list[tuple[str, list[int]]]:
    """(name, weight shape) of every aten convolution ``work`` ran."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profile:
        work()
    return [(event.name, event.input_shapes[1]) for event in profile.events() if event.name == "aten::convolution"]


def test_few_outputs_convolution_under_bf16_autocast_is_torchs_within_bf16_rounding():
    theirs, ours = _twins(64, 3, 7, 1, 3, bias=False, kind=FewOutputsConv2d)
    x = torch.randn(2, 64, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, out = theirs(x), ours(x)
    exact = theirs(x)
    assert out.dtype == expected.dtype == torch.bfloat16
    # both are the fp32 result rounded once to bf16, from bf16 inputs: as close to it as torch's
    assert (out.float() - exact).abs().max() <= 1.5 * (expected.float() - exact).abs().max()


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
@pytest.mark.parametrize("args", [(8, 3, 3, 2, 1), (8, 16, 3, 1, 1), (8, 3, (1, 3), 1, (0, 1))])
def test_a_stride_many_outputs_one_row_or_a_tracer_keeps_torchs_convolution(args):
    _, ours = _twins(*args, kind=FewOutputsConv2d)
    x = torch.randn(2, 8, 8, 8)
    assert [tuple(shape) for _, shape in _conv_inputs(lambda: ours(x))] == [tuple(ours.weight.shape)]
    _, rows = _twins(8, 3, 7, 1, 3, kind=FewOutputsConv2d)
    graph = str(torch.jit.trace(rows, x, check_trace=False).inlined_graph)
    assert graph.count("aten::_convolution") == 1 and "aten::add_" not in graph and "aten::permute" not in graph
    torch.testing.assert_close(torch.jit.trace(rows, x, check_trace=False)(x), rows(x), rtol=1e-5, atol=1e-5)
