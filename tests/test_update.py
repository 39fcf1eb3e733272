"""mdt.update: the one update every method's train_step performs, on a method small enough
to work out by hand: y = w·x for two one-weight networks, and losses that are y itself."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mdt.loss import Loss
from mdt.method import Method


class Value(Loss):
    """The state's ``out``: its gradient by w is x."""

    reads = {"learn": ("out",)}

    def __call__(self, phase, state):
        return state.out, {"twice": 2 * state.out.detach()}


class Fading(Value):
    decays = True

    def weight_at(self, step):
        return self.weight * (1 - step / 10)


class Broken(Value):
    def __call__(self, phase, state):
        raise RuntimeError("a loss that fails mid-update")


class Tiny(Method):
    def __init__(self, losses):
        self.a, self.b = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
        for net in (self.a, self.b):
            torch.nn.init.constant_(net.weight, 1.0)
        self.losses = losses
        self._optimizers = {"a": torch.optim.SGD(self.a.parameters(), lr=1.0), "b": torch.optim.SGD(self.b.parameters(), lr=1.0)}

    def networks(self):
        return {"a": self.a, "b": self.b}

    def optimizers(self):
        return self._optimizers


def state(net, x: float):
    return SimpleNamespace(out=net(torch.tensor([[x]])).sum())


def test_an_update_sums_weighted_losses_of_every_state_and_steps_only_what_it_names():
    method = Tiny({"value": Value(2.0), "fading": Fading(3.0)})
    method.update.start(step=4, rates={"a": 0.5})
    assert method.optimizers()["a"].param_groups[0]["lr"] == 0.5 and method.optimizers()["b"].param_groups[0]["lr"] == 1.0
    logged = method.update("learn", {"one": state(method.a, 1.0), "two": state(method.a, 3.0)}, step=["a"])
    # d/dw of (2 + 3 * 0.6) * (w·1 + w·3): 3.8 * 4 = 15.2; one SGD step at lr 0.5 from w = 1
    assert method.a.weight.item() == pytest.approx(1 - 0.5 * 15.2)
    assert method.b.weight.item() == 1.0 and method.b.weight.grad is None
    assert set(logged) == {f"{p}/{k}" for p in ("one", "two") for k in ("value", "value/twice", "fading", "fading/twice", "total")}
    values = method.update.values(lr=0.5)
    assert values["one/total"] == pytest.approx(3.8 * 1) and values["two/total"] == pytest.approx(3.8 * 3)
    assert values["two/value/twice"] == pytest.approx(6.0)
    assert values["weight/fading"] == pytest.approx(3 * 0.6) and "weight/value" not in values
    assert list(values)[-1] == "lr" and values["lr"] == 0.5


def test_a_frozen_network_takes_no_gradient_and_is_unfrozen_even_when_a_loss_fails():
    method = Tiny({"value": Value(1.0)})
    method.update.start(step=0)
    method.update("learn", {"x": SimpleNamespace(out=(method.a(method.b(torch.ones(1, 1)))).sum())}, step=["a"], freeze=[method.b])
    assert method.b.weight.grad is None and method.b.weight.requires_grad
    assert method.a.weight.item() == pytest.approx(0.0)  # d(w_a·w_b·1)/dw_a = 1, one step of lr 1
    broken = Tiny({"value": Broken(1.0)})
    with pytest.raises(RuntimeError, match="fails mid-update"):
        broken.update("learn", {"x": state(broken.a, 1.0)}, step=["a"], freeze=[broken.b])
    assert broken.b.weight.requires_grad


def test_start_puts_only_trained_networks_in_training_mode():
    method = Tiny({"value": Value(1.0)})
    method.a.eval(), method.b.eval()
    method.b.requires_grad_(False)  # a moving average: never trained
    method.update.start(step=0)
    assert method.a.training and not method.b.training


def test_every_built_in_method_logs_a_decaying_weight(registry):
    """A loss whose weight changes is logged with its weight by every method alike."""
    from conftest import REPO, shrunk

    from mdt.build import build
    from mdt.data import Batch
    from mdt.recipe import load_recipe

    sets = [
        a
        for a in shrunk(REPO / "recipes" / "quickstart.toml", "datasets.faces.size=8", "datasets.faces.test_size=2", registry=registry)
        if a != "--set"
    ]
    components = build(load_recipe(REPO / "recipes" / "quickstart.toml", sets, registry), registry)
    method = components.method
    method.losses["identity"].decays = True
    method.losses["identity"].weight_at = lambda step: 5.0 / (step + 1)
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(2)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(2)])
    values = method.train_step([Batch(components.augmentation(raw), labels, 0)], 3)
    assert values["weight/identity"] == pytest.approx(1.25)
