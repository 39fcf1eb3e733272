"""Data-parallel training across processes started by ``torchrun``.

Each process trains on its slice of every global batch; before each optimizer step the
gradients of that optimizer's parameters are averaged across processes (one flat
all-reduce). This is data parallelism without the ``DistributedDataParallel`` wrapper's
reducer, on purpose: a GAN update runs several forwards per backward, differentiates
twice for the gradient penalty, and freezes one network while the other trains — the
cases where the wrapper's bookkeeping breaks. A parameter without a gradient (a
penalty-only backward) counts as zero on every rank, so ranks never disagree.
Checkpoints, logs and samples come from rank 0 only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mdt.errors import MdtError


@dataclass(frozen=True)
class Topology:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> Topology:
    """The process's place as ``torchrun`` describes it (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Topology(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def initialise(topology: Topology, device_type: str) -> None:
    if topology.distributed and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(topology.local_rank)
        dist.init_process_group(backend)


def group_open() -> bool:
    return dist.is_available() and dist.is_initialized()


def close() -> None:
    """Close this process's group once its run is over, as torch asks: one left to the
    interpreter's exit makes NCCL warn and can hang the exit."""
    dist.destroy_process_group()


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over all processes (missing ones count as zero)."""
    world = dist.get_world_size()
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(parameters, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def synchronise_optimizers(optimizers: dict[str, torch.optim.Optimizer]) -> None:
    """Average gradients across processes right before every step of these optimizers."""
    for optimizer in optimizers.values():
        parameters = [p for group in optimizer.param_groups for p in group["params"]]
        optimizer.register_step_pre_hook(averaging_hook(parameters))


def averaging_hook(parameters: list[torch.nn.Parameter]) -> Callable[[torch.optim.Optimizer, Any, Any], None]:
    """An optimizer's step pre-hook that averages the gradients of ``parameters``."""

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        average_gradients(parameters)

    return hook


def broadcast_networks(networks: dict[str, torch.nn.Module]) -> None:
    """Start every process from rank 0's weights."""
    for network in networks.values():
        for tensor in [*network.parameters(), *network.buffers()]:
            dist.broadcast(tensor.data, src=0)


def agree(choice: str, options: tuple[str, ...], device: torch.device) -> str:
    """Rank 0's ``choice`` on every process, for choices a process makes by measuring."""
    index = torch.tensor([options.index(choice)], device=device)
    dist.broadcast(index, src=0)
    return options[int(index.item())]


def barrier() -> None:
    dist.barrier()


def all_finite(values: dict[str, float], device: torch.device) -> bool:
    """Whether every process's losses are finite, so all stop together."""
    import math

    flag = torch.tensor([0.0 if all(math.isfinite(v) for v in values.values()) else 1.0], device=device)
    dist.all_reduce(flag)
    return flag.item() == 0


def shard_size(batch_size: int, topology: Topology) -> int:
    if batch_size % topology.world_size:
        raise MdtError(
            f"[run] batch_size = {batch_size} cannot be split evenly over {topology.world_size} processes; "
            f"use a multiple of {topology.world_size}"
        )
    return batch_size // topology.world_size
