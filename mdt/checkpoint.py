"""Checkpoints: one safetensors file per save, never pickle.

A checkpoint holds network weights under ``<network>/<parameter>``, optimizer state
tensors under ``optim/<optimizer>/<param index>/<key>``, random-number states under
``rng/...``, and as string metadata the resolved recipe, the step, the mdt version,
the label schemas and the JSON structure of everything that is not a tensor.
Loading one reads tensors and JSON only, so it can never execute code.

Writes are atomic: a temporary file in the same folder is written, flushed and
fsynced, then renamed over the final name, so a kill at any moment leaves either the
old set of checkpoints or the new one, never a torn file.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from mdt.errors import MdtError

FORMAT = "mdt-checkpoint-1"
PATTERN = re.compile(r"step_(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split back into its parts."""

    path: Path
    metadata: dict[str, str]
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.metadata["step"])

    @property
    def recipe_text(self) -> str:
        return self.metadata["recipe"]

    def json(self, key: str, default: Any = None) -> Any:
        return json.loads(self.metadata[key]) if key in self.metadata else default

    def network(self, name: str) -> dict[str, torch.Tensor]:
        prefix = f"{name}/"
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}


# ---------------------------------------------------------------- flattening


def flatten_optimizer(name: str, state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer ``state_dict`` as tensors plus a JSON structure."""
    tensors: dict[str, torch.Tensor] = {}
    structure: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        entry = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{name}/{index}/{key}"] = value
                entry[key] = {"tensor": True}
            else:
                entry[key] = {"value": value}
        structure["state"][str(index)] = entry
    return tensors, structure


def unflatten_optimizer(name: str, structure: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict:
    state = {}
    for index, entry in structure["state"].items():
        state[int(index)] = {
            key: tensors[f"optim/{name}/{index}/{key}"] if spec.get("tensor") else spec["value"]
            for key, spec in entry.items()
        }
    return {"state": state, "param_groups": structure["param_groups"]}


def capture_rng() -> tuple[dict[str, torch.Tensor], dict]:
    """Every random state a run depends on: torch CPU and CUDA, numpy, Python."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, gauss = random.getstate()
    structure = {
        "numpy": {"kind": kind, "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }
    return tensors, structure


def restore_rng(structure: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng/cuda/"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    n = structure["numpy"]
    np.random.set_state((n["kind"], tensors["rng/numpy"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    p = structure["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ---------------------------------------------------------------- files


def write(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    """Write a safetensors file atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ready = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    meta = {"format": FORMAT, **{k: str(v) for k, v in metadata.items()}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(ready, str(tmp), metadata=meta)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def read(path: str | Path, skip: tuple[str, ...] = ()) -> Checkpoint:
    """Read a checkpoint, leaving out tensors whose names start with ``skip``."""
    path = Path(path)
    if not path.is_file():
        raise MdtError(f"checkpoint '{path}' does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") != FORMAT:
                raise MdtError(f"'{path}' is a safetensors file but not an mdt checkpoint (no '{FORMAT}' metadata)")
            names = [k for k in f.keys() if not (skip and k.startswith(skip))]
            tensors = {k: f.get_tensor(k) for k in names}
    except SafetensorError as exc:
        raise MdtError(f"'{path}' is not a readable safetensors checkpoint: {exc}") from None
    except (OSError, ValueError) as exc:
        raise MdtError(f"cannot read checkpoint '{path}': {exc}") from None
    return Checkpoint(path, dict(metadata), tensors)


def load_foreign(path: str | Path, what: str) -> Any:
    """Another implementation's ``torch.save`` file, for importers. Read with
    ``weights_only=True``: tensors and plain containers only; a pickled object is
    refused, never run. ``what`` names the file in errors ("generator checkpoint")."""
    path = Path(path)
    if not path.is_file():
        raise MdtError(f"{what} '{path}' does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickled objects refused by weights_only, not a torch file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MdtError(f"cannot read {what} '{path}' as a PyTorch file of tensors: {reason}") from None


def step_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary files are ignored)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := PATTERN.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def prune(directory: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (and stale temporary files)."""
    directory = Path(directory)
    for stale in directory.glob(".step_*.tmp"):
        stale.unlink(missing_ok=True)
    if keep <= 0:
        return
    for old in list_checkpoints(directory)[:-keep]:
        old.unlink(missing_ok=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or the newest one of a run folder or its ``checkpoints/``."""
    path = Path(path)
    if path.is_file():
        return path
    for directory in (path / "checkpoints", path):
        found = list_checkpoints(directory)
        if found:
            return found[-1]
    if path.exists():
        raise MdtError(f"'{path}' holds no checkpoint (expected checkpoints/step_*.safetensors)")
    raise MdtError(f"checkpoint or run folder '{path}' does not exist")


def load_network(module: torch.nn.Module, state: Mapping[str, torch.Tensor], name: str, source: str | Path) -> None:
    """Load weights, refusing any mismatch with one line naming the tensor and both shapes."""
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
    module.load_state_dict(dict(state))
