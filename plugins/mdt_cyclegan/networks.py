"""CycleGAN's networks (Zhu et al., ICCV 2017, appendix 7.2): a ResNet generator and a
70x70 PatchGAN discriminator, with instance normalisation and N(0, 0.02) weights.

At 256 px the paper uses 9 residual blocks, at 128 px 6 (``residual_blocks``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mdt.interfaces import Network
from mdt.layers import FewOutputsConv2d
from mdt.ranges import Count, Positive, halving_problem


def normal_init(module: nn.Module) -> None:
    """The paper's initialisation: weights from N(0, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class ResidualBlock(nn.Module):
    """Reflection-padded conv3x3-norm-ReLU-conv3x3-norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class ResnetGenerator(Network):
    """c7s1-64, d128, d256, R256 x ``residual_blocks``, u128, u64, c7s1-3: one direction
    between two domains; it takes no condition."""

    inputs = ("images",)
    outputs = ("image",)

    @staticmethod
    def arguments_problem(values: Mapping[str, Any]) -> str | None:
        """[run] image_size must be divisible by 2**downsamplings and leave a map of at
        least 2x2 (instance normalisation in training)."""
        return halving_problem(values["image_size"], values["downsamplings"], "downsamplings", 2, "instance normalisation in training")

    def __init__(self, conv_dim: Positive = 64, residual_blocks: Count = 9, downsamplings: Positive = 2) -> None:
        super().__init__()
        if conv_dim < 1 or residual_blocks < 0 or downsamplings < 0:
            raise ValueError("conv_dim must be positive, residual_blocks and downsamplings not negative")
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, conv_dim, 7), nn.InstanceNorm2d(conv_dim), nn.ReLU(True)]
        width = conv_dim
        for _ in range(downsamplings):
            layers += [nn.Conv2d(width, width * 2, 3, 2, 1), nn.InstanceNorm2d(width * 2), nn.ReLU(True)]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(residual_blocks)]
        for _ in range(downsamplings):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), FewOutputsConv2d(width, 3, 7), nn.Tanh()]
        self.layers = nn.Sequential(*layers)
        self.apply(normal_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [-1, 1]."""
        return self.layers(images)


class PatchDiscriminator(Network):
    """PatchGAN: C64 (no norm), then ``layers`` - 1 more stride-2 blocks doubling the
    width (at most 8 x ``conv_dim``), one stride-1 block, and a 1-channel map of scores.
    With ``layers`` = 3 each score sees a 70x70 patch."""

    inputs = ("images",)
    outputs = ("scores",)
    meanings = {**Network.meanings, "scores": "real/fake patch map (B, 1, s, s): higher reads as more real"}

    @staticmethod
    def arguments_problem(values: Mapping[str, Any]) -> str | None:
        """[run] image_size halved ``layers`` times must leave a map of at least 3x3 (the last two 4x4 convolutions)."""
        size, layers = values["image_size"], values["layers"]
        if size >> layers < 3:
            return (
                f"[run] image_size {size} halved {layers} times (layers) leaves a {size >> layers}x{size >> layers} map; "
                "the last two 4x4 convolutions need at least 3x3"
            )
        return None

    def __init__(self, conv_dim: Positive = 64, layers: Positive = 3) -> None:
        super().__init__()
        if conv_dim < 1 or layers < 1:
            raise ValueError("conv_dim and layers must be positive")
        blocks: list[nn.Module] = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width = conv_dim
        for n in range(1, layers + 1):
            stride = 2 if n < layers else 1
            wider = conv_dim * min(2**n, 8)
            blocks += [nn.Conv2d(width, wider, 4, stride, 1), nn.InstanceNorm2d(wider), nn.LeakyReLU(0.2, True)]
            width = wider
        blocks.append(nn.Conv2d(width, 1, 4, 1, 1))
        self.layers = nn.Sequential(*blocks)
        self.apply(normal_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> a real/fake score per patch (B, 1, H, W)."""
        return self.layers(images)
