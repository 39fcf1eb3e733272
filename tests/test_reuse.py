"""mdt.reuse: an output reused instead of a second, identical forward leaves the network's
state as the second forward would have."""

from __future__ import annotations

import copy

import torch

from mdt.reuse import recorded_forward


def network(*extra: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3),
        torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True),
        *extra,
    )


def test_replay_leaves_the_statistics_of_a_second_forward():
    once, twice = network(), network()
    x = torch.randn(5, 3, 12, 12)
    with recorded_forward(once, x.device) as record:
        out = once(x)
    assert record.reusable and len(record.norm_inputs) == 2
    record.replay()
    assert torch.equal(out, twice(x))
    twice(x)  # what the official code does: the same forward again
    for (name, a), b in zip(once.named_buffers(), twice.buffers(), strict=True):
        assert torch.equal(a, b), name  # running means, variances and BatchNorm's counter
    assert int(once[1].num_batches_tracked) == 2


def test_nothing_is_recorded_in_eval_mode_or_after_the_block():
    net, x = network().eval(), torch.randn(2, 3, 12, 12)
    before = copy.deepcopy(net.state_dict())
    with recorded_forward(net, x.device) as record:
        net(x)
    record.replay()
    net.train()(x)
    assert record.norm_inputs == [] and record.reusable
    assert not torch.equal(net[1].running_mean, before["1.running_mean"])  # the hooks are gone: no error, no record


def test_a_forward_that_draws_random_numbers_is_not_reusable():
    net, x = network(torch.nn.Dropout(0.5)), torch.randn(2, 3, 12, 12)
    with recorded_forward(net, x.device) as record:
        net(x)
    assert record.drew_random and not record.reusable


def test_a_forward_with_other_state_is_not_reusable():
    net = network()
    net[3] = torch.nn.utils.spectral_norm(net[3])  # its power iteration updates buffers u and v
    x = torch.randn(2, 3, 12, 12)
    with recorded_forward(net, x.device) as record:
        net(x)
    assert not record.drew_random and not record.reusable
