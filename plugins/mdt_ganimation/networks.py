"""GANimation's generator (Pumarola et al., ECCV 2018): StarGAN's encoder, bottleneck and
decoder, ending in two heads — a colour image C and an attention mask A — combined as

    G(x, y) = A · x + (1 − A) · C

so A near 1 keeps the input's pixel and A near 0 paints C there: the network changes only
what the target asks for. Its result is ``(image, mask, color)``, the first the main one.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, cast

import torch
from mdt_stargan.networks import StarGANGenerator
from torch import nn

from mdt.layers import few_outputs_conv2d
from mdt.ranges import Count, Positive


class Translation(NamedTuple):
    """What the generator returns: the image, its attention mask (B, 1, S, S) in [0, 1]
    (1: the input's pixel kept), and the colour image (B, 3, S, S) in [-1, 1]."""

    image: torch.Tensor
    mask: torch.Tensor
    color: torch.Tensor


class AttentionGenerator(StarGANGenerator):
    """StarGAN's generator body with a colour head (tanh) and an attention head (sigmoid).

    ``label_dim`` comes from the label encoder; ``conv_dim`` is the first layer's width
    (doubled at each of the ``downsamplings``), ``residual_blocks`` the bottleneck depth.
    ``residual_color`` (not in the paper; a switch for changes spread over a face): C is
    the input plus the colour head's change, clamp(x + C', -1, 1), so that where A lets
    C through the input's texture stays under what is added (wrinkles on skin) instead of
    being painted anew. ``upsampling``: as StarGAN's generator's (``"resize"``: no
    checkerboard).
    """

    inputs = ("images", "labels")
    outputs = ("image", "mask", "color")
    meanings = {
        **StarGANGenerator.meanings,
        "mask": "attention A (B, 1, S, S) in [0, 1]: where it is 1 the input's pixel is kept",
        "color": "colour image C (B, 3, S, S) in [-1, 1]; image = A * images + (1 - A) * C",
    }

    def __init__(
        self,
        label_dim: int,
        conv_dim: Positive = 64,
        residual_blocks: Count = 6,
        downsamplings: Positive = 2,
        residual_color: bool = False,
        upsampling: Literal["transposed", "resize"] = "transposed",
    ) -> None:
        super().__init__(label_dim, conv_dim, residual_blocks, downsamplings, upsampling=upsampling)
        self.residual_color = residual_color
        self.layers = self.layers[:-2]  # StarGAN's body, without its last convolution and tanh
        self.color_head = nn.Sequential(nn.Conv2d(conv_dim, 3, 7, 1, 3, bias=False), nn.Tanh())
        self.attention_head = nn.Sequential(nn.Conv2d(conv_dim, 1, 7, 1, 3, bias=False), nn.Sigmoid())

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> Translation:  # type: ignore[override]  # its declared outputs: three
        """images (B, 3, S, S) in [-1, 1], condition (B, label_dim) -> Translation."""
        tiled = condition.view(condition.shape[0], -1, 1, 1).expand(-1, -1, images.shape[2], images.shape[3])
        features = self.layers(torch.cat([images, tiled.to(images.dtype)], dim=1))
        # Both heads as one 4-channel convolution, by kernel rows on a CPU (mdt.layers).
        color_conv, attention_conv = (
            cast(nn.Conv2d, self.color_head[0]),
            cast(nn.Conv2d, self.attention_head[0]),
        )  # Sequential's items: Module
        both = few_outputs_conv2d(features, torch.cat([color_conv.weight, attention_conv.weight]), padding=3)
        color, mask = self.color_head[1](both[:, :3]), self.attention_head[1](both[:, 3:])
        if self.residual_color:
            color = (images + color).clamp(-1, 1)
        return Translation(mask * images + (1 - mask) * color, mask, color)
