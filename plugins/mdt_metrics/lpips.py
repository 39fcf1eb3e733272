"""LPIPS (Zhang et al. 2018), the perceptual distance StarGAN v2 reports diversity in.

Distances between unit-normalised AlexNet activations at its five ReLUs, weighted per
channel by linear layers fitted to human judgements and averaged over space. The
weights are files the user supplies to ``mdt eval``: the linear layers (the lpips
package's ``weights/v0.1/alex.pth``) and AlexNet's ImageNet weights (torchvision's
``alexnet-owt-7be5be79.pth``); mdt downloads nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import torch

from mdt.errors import MdtError

CHANNELS = (64, 192, 384, 256, 256)
RELU_ENDS = (2, 5, 8, 10, 12)  # AlexNet's features[:2], [2:5], ... end at its five ReLUs


class Lpips(torch.nn.Module):
    """Images in [-1, 1], two batches (B, 3, H, W) -> (B,) distances."""

    features: torch.nn.Sequential  # AlexNet's
    lins: torch.nn.ModuleList  # a 1x1 convolution per ReLU
    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import alexnet

        self.features = alexnet(weights=None).features
        self.lins = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, 1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    @classmethod
    def from_files(cls, linear: str | Path, backbone: str | Path | None) -> Lpips:
        from mdt.foreign import load_foreign

        if backbone is None:
            raise MdtError("LPIPS needs AlexNet's weights too: give --alexnet FILE (torchvision's alexnet-owt-7be5be79.pth)")
        model = cls()
        lins = load_foreign(linear, "LPIPS weights")
        wanted = {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(CHANNELS)}
        if not isinstance(lins, dict) or any(k not in lins or tuple(lins[k].shape) != s for k, s in wanted.items()):
            raise MdtError(f"'{linear}' is not LPIPS's AlexNet linear weights (the lpips package's weights/v0.1/alex.pth)")
        for i, lin in enumerate(model.lins):
            cast(torch.nn.Conv2d, lin).weight.data.copy_(lins[f"lin{i}.model.1.weight"])  # a ModuleList's items are typed Module
        state = load_foreign(backbone, "AlexNet weights")
        features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")} if isinstance(state, dict) else {}
        own = model.features.state_dict()
        if set(features) != set(own) or any(features[k].shape != own[k].shape for k in own):
            raise MdtError(f"'{backbone}' is not torchvision's AlexNet weights (alexnet-owt-7be5be79.pth)")
        model.features.load_state_dict(features)
        return model

    def _activations(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = (images - self.shift) / self.scale
        out, start = [], 0
        for end in RELU_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
            start = end
        return out

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        layers = zip(self.lins, self._activations(a), self._activations(b), strict=True)
        distances = [lin((x - y) ** 2).mean(dim=(2, 3)) for lin, x, y in layers]
        total = distances[0]
        for distance in distances[1:]:
            total = total + distance
        return total.flatten()
