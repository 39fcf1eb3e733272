"""Running each network once on the datasets' samples before it is trained.

A network that cannot take the samples (a kernel larger than the map it reaches, a first
layer made for three channels given one) fails at the first training step, deep in torch,
after minutes of start-up. Here every network is built on torch's meta device (no memory,
no arithmetic) and run on a batch of the declared samples (:mod:`mdt.samples`), so the
mismatch is one line naming its table: ``mdt recipe check`` asks, and so does every run
before it allocates weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from mdt.samples import SampleSpec

BATCH = 2  # two samples: batch statistics (instance norm) need no more


def known_inputs(sample: SampleSpec, label_dim: int, device: torch.device | str = "meta") -> dict[str, torch.Tensor]:
    """What mdt can make of a recipe for a network's inputs, by the names networks declare."""
    return {
        "images": torch.zeros(BATCH, *sample.shape, device=device),
        "labels": torch.zeros(BATCH, label_dim, device=device),
        "domains": torch.zeros(BATCH, dtype=torch.long, device=device),
    }


def run_problem(network: torch.nn.Module, known: Mapping[str, Any]) -> str | None:
    """Why ``network`` (on the meta device) cannot run on ``known`` inputs; None when it
    runs or declares inputs mdt cannot make (:meth:`mdt.interfaces.Network.example_inputs`)."""
    example = example_inputs_of(network, known)
    if example is None:
        return None
    try:
        with torch.no_grad():
            network(*example)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    return None


def example_inputs_of(network: torch.nn.Module, known: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The network's example inputs, as its :class:`~mdt.interfaces.Network` base says;
    a module that is not one (a test's stand-in) is not run."""
    from mdt.interfaces import Network

    return network.example_inputs(known) if isinstance(network, Network) else None
