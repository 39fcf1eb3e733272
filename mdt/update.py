"""One update of a method's networks, written once for every method.

A method's ``train_step`` reads as its paper's schedule: for each update it names the
phase, the step states its losses read, the optimizers to step and the networks to hold
still. :class:`Updates` does the rest, the same way for every method:

1. freeze the networks named (they take no gradient from this update);
2. clear every optimizer's gradients;
3. for each state, the weighted sum of the losses that take part in the phase
   (:func:`mdt.loss.weighted_total`), back-propagated; several states accumulate before
   one step (CycleGAN's pairs, whose networks are disjoint);
4. step the optimizers named, and unfreeze.

What is logged stays a tensor until :meth:`Updates.values`, which brings the iteration's
values to the host in one transfer (a ``float()`` per value would wait for the device
each time) and adds each decaying loss weight. Network forwards run under
:meth:`Updates.autocast`, bf16 when the run computes in it; the losses are computed in
fp32 by the states that read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import torch

from mdt.loss import weighted_total

if TYPE_CHECKING:
    from mdt.method import Method


class Updates:
    """Performs the updates of one method (its ``losses``, ``optimizers()`` and ``precision``)."""

    def __init__(self, method: Method) -> None:
        self.method = method
        self.step = 0
        self.logged: dict[str, torch.Tensor] = {}

    def autocast(self, device: torch.device | str) -> AbstractContextManager:
        """Where network forwards run: under bf16 autocast when the run computes in bf16."""
        kind = device.type if isinstance(device, torch.device) else device
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.method.precision == "bf16")

    def start(self, step: int, rates: Mapping[str, float] | None = None) -> None:
        """Begin the iteration at 0-based ``step``: the trained networks (those with weights
        that take gradients: not moving averages) in training mode, and ``rates``, the
        learning rate of each optimizer named, set."""
        self.step, self.logged = step, {}
        for network in self.method.networks().values():
            if any(p.requires_grad for p in network.parameters()):
                network.train()
        optimizers = self.method.optimizers()
        for name, rate in (rates or {}).items():
            for group in optimizers[name].param_groups:
                group["lr"] = rate

    def __call__(
        self, phase: str, states: Mapping[str, Any], *, step: Sequence[str], freeze: Sequence[torch.nn.Module] = ()
    ) -> dict[str, torch.Tensor]:
        """One update in ``phase``: the losses of each state in ``states`` (keyed by the
        prefix its values are logged under, "D", "celeba/G"), back-propagated, then the
        optimizers ``step`` names stepped; the networks in ``freeze`` take no gradient.
        Returns the values it logged."""
        optimizers = self.method.optimizers()
        device = optimizers[step[0]].param_groups[0]["params"][0].device
        logged: dict[str, torch.Tensor] = {}
        for network in freeze:
            network.requires_grad_(False)
        try:
            for optimizer in optimizers.values():
                optimizer.zero_grad(set_to_none=True)
            for prefix, state in states.items():
                total, values = weighted_total(self.method.losses, phase, state, self.step, prefix, device)
                total.backward()
                logged.update(values)
            for name in step:
                optimizers[name].step()
        finally:
            for network in freeze:
                network.requires_grad_(True)
        self.logged.update(logged)
        return logged

    def values(self, **extra: float) -> dict[str, float]:
        """The iteration's logged values as numbers (one transfer from the device), each
        decaying loss weight as ``weight/<loss>``, then ``extra`` (a learning rate)."""
        values = dict(zip(self.logged, torch.stack(list(self.logged.values())).tolist(), strict=True)) if self.logged else {}
        for name, loss in self.method.losses.items():
            if loss.decays:
                values[f"weight/{name}"] = loss.weight_at(self.step)
        values.update(extra)
        return values
