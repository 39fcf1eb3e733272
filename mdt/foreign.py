"""Other implementations' files (the official StarGAN and StarGAN v2 checkpoints, pretrained
Inception, LPIPS, AlexNet and landmark weights), read for importers and metrics without ever
unpickling an object: mdt's own checkpoints are safetensors (mdt.checkpoint)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mdt.errors import MdtError


def load_foreign(path: str | Path, what: str) -> Any:
    """Another implementation's ``torch.save`` file, for importers. Read with
    ``weights_only=True``: tensors and plain containers only; a pickled object is
    refused, never run. ``what`` names the file in errors ("generator checkpoint")."""
    path = Path(path)
    if not path.is_file():
        raise MdtError(f"{what} '{path}' does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04" and head[:1] != b"\x80":  # torch.save: a zip archive, or (before torch 1.6) a pickle
        raise MdtError(f"cannot read {what} '{path}' as a PyTorch file of tensors: it is not a file that torch.save writes")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickled objects refused by weights_only, not a torch file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" in reason:  # torch's advice here is to unpickle anyway: never
            reason = "it holds pickled objects besides tensors, which mdt never unpickles (loading them could run code)"
        raise MdtError(f"cannot read {what} '{path}' as a PyTorch file of tensors: {reason}") from None
