"""Loading a checkpoint's tensors into built networks, refusing any mismatch in one line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from mdt.errors import MdtError


def load_network(module: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str, source: str | Path) -> None:
    """Load weights, refusing any mismatch with one line naming the tensor and both shapes."""
    check_network(module, state, name, source)
    module.load_state_dict(dict(state))


def check_network(module: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str, source: str | Path) -> None:
    """Refuse, in one line naming the tensor, a ``state`` whose tensors' names or shapes are
    not ``module``'s. ``module`` may live on torch's meta device: nothing is read or copied."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing:
        raise MdtError(f"{source}: {name} lacks tensor '{missing[0]}' that the recipe's {name} has ({len(missing)} missing)")
    if unexpected:
        raise MdtError(f"{source}: {name} tensor '{unexpected[0]}' does not exist in the recipe's {name}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise MdtError(
                f"{source}: {name} tensor '{key}' has shape {tuple(tensor.shape)} in the checkpoint "
                f"but {tuple(own[key].shape)} in the recipe"
            )
