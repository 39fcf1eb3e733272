"""StarGAN v2's three networks as the paper's appendix and the official checkpoints' tensor
names describe them, written here independently of mdt: the importer test saves these in
the official file layout and checks that mdt's import translates exactly as they do.

Layouts (names in the official files): the generator is ``from_rgb``, ``encode.N``
(residual blocks with instance norm, halving), ``decode.N`` (AdaIN residual blocks,
doubling; the mirror of ``encode``) and ``to_rgb`` (norm, LeakyReLU, 1x1 conv). The mapping
network is ``shared`` (4 linear + ReLU) and ``unshared.K`` (a head per domain); the style
encoder is ``shared`` (conv, halving residual blocks, a 4x4 conv) and ``unshared.K``.
``first_width`` is the official 2**14 // image_size unless a test shrinks it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Residual(nn.Module):
    """x -> (shortcut(x) + body(x)) / sqrt(2); the shortcut is a 1x1 conv when widths differ."""

    def __init__(self, width_in: int, width_out: int, normalize: bool, halve: bool) -> None:
        super().__init__()
        self.normalize, self.halve = normalize, halve
        self.conv1 = nn.Conv2d(width_in, width_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(width_in, width_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(width_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(width_in, affine=True)
        if width_in != width_out:
            self.conv1x1 = nn.Conv2d(width_in, width_out, 1, 1, 0, bias=False)

    def forward(self, x):
        shortcut = self.conv1x1(x) if hasattr(self, "conv1x1") else x
        if self.halve:
            shortcut = F.avg_pool2d(shortcut, 2)
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(F.leaky_relu(h, 0.2))
        if self.halve:
            h = F.avg_pool2d(h, 2)
        h = self.norm2(h) if self.normalize else h
        h = self.conv2(F.leaky_relu(h, 0.2))
        return (shortcut + h) / math.sqrt(2)


class StyleNorm(nn.Module):
    """AdaIN: (1 + gamma(s)) * instance_norm(x) + beta(s), gamma and beta from one linear layer."""

    def __init__(self, style_dim: int, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(style_dim, 2 * width)

    def forward(self, x, s):
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * F.instance_norm(x) + beta


class StyledResidual(nn.Module):
    """Residual block with AdaIN, doubling the size when asked; without the high-pass
    branch, the shortcut is added and the sum scaled by 1/sqrt(2)."""

    def __init__(self, width_in: int, width_out: int, style_dim: int, double: bool, high_pass: float) -> None:
        super().__init__()
        self.double, self.high_pass = double, high_pass
        self.norm1 = StyleNorm(style_dim, width_in)
        self.conv1 = nn.Conv2d(width_in, width_out, 3, 1, 1)
        self.norm2 = StyleNorm(style_dim, width_out)
        self.conv2 = nn.Conv2d(width_out, width_out, 3, 1, 1)
        if width_in != width_out:
            self.conv1x1 = nn.Conv2d(width_in, width_out, 1, 1, 0, bias=False)

    def forward(self, x, s):
        h = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.double:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), s), 0.2))
        if self.high_pass > 0:
            return h
        shortcut = F.interpolate(x, scale_factor=2, mode="nearest") if self.double else x
        shortcut = self.conv1x1(shortcut) if hasattr(self, "conv1x1") else shortcut
        return (h + shortcut) / math.sqrt(2)


class Generator(nn.Module):
    def __init__(self, image_size: int, style_dim: int, max_width: int, high_pass: float = 0.0, first_width: int | None = None) -> None:
        super().__init__()
        width = first_width or 2**14 // image_size
        self.from_rgb = nn.Conv2d(3, width, 3, 1, 1)
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(width, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(width, 3, 1, 1, 0))
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        halvings = int(math.log2(image_size)) - 4 + (1 if high_pass > 0 else 0)
        for _ in range(halvings):
            wider = min(2 * width, max_width)
            self.encode.append(Residual(width, wider, normalize=True, halve=True))
            self.decode.insert(0, StyledResidual(wider, width, style_dim, double=True, high_pass=high_pass))
            width = wider
        for _ in range(2):  # the bottleneck
            self.encode.append(Residual(width, width, normalize=True, halve=False))
            self.decode.insert(0, StyledResidual(width, width, style_dim, double=False, high_pass=high_pass))

    def forward(self, x, s):
        x = self.from_rgb(x)
        for block in self.encode:
            x = block(x)
        for block in self.decode:
            x = block(x, s)
        return self.to_rgb(x)


def _pick(per_domain: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """(B, K, D) styles of every domain -> (B, D) of each row's domain."""
    return per_domain[torch.arange(domain.shape[0]), domain]


class MappingNetwork(nn.Module):
    def __init__(self, latent_dim: int, style_dim: int, domains: int, hidden: int = 512) -> None:
        super().__init__()
        shared = [nn.Linear(latent_dim, hidden), nn.ReLU()]
        for _ in range(3):
            shared += [nn.Linear(hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        heads = []
        for _ in range(domains):
            head = []
            for _ in range(3):
                head += [nn.Linear(hidden, hidden), nn.ReLU()]
            heads.append(nn.Sequential(*head, nn.Linear(hidden, style_dim)))
        self.unshared = nn.ModuleList(heads)

    def forward(self, z, domain):
        h = self.shared(z)
        return _pick(torch.stack([head(h) for head in self.unshared], dim=1), domain)


class StyleEncoder(nn.Module):
    def __init__(self, image_size: int, style_dim: int, domains: int, max_width: int, first_width: int | None = None) -> None:
        super().__init__()
        width = first_width or 2**14 // image_size
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, 1, 1)]
        for _ in range(int(math.log2(image_size)) - 2):  # down to 4x4
            wider = min(2 * width, max_width)
            layers.append(Residual(width, wider, normalize=False, halve=True))
            width = wider
        layers += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, 4, 1, 0), nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(width, style_dim) for _ in range(domains))

    def forward(self, x, domain):
        h = self.shared(x).flatten(1)
        return _pick(torch.stack([head(h) for head in self.unshared], dim=1), domain)
