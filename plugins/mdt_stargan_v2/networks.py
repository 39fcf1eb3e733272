"""StarGAN v2's networks (Choi et al., CVPR 2020, appendix): an AdaIN generator, a
mapping network, a style encoder and a multi-task discriminator.

Widths start at ``base_channels`` and double at each downsampling up to
``max_channels``. The style encoder and the discriminator downsample to 4x4; the
generator to 16x16 at 256 px (one level deeper with the high-pass skip connections).
Tensor names inside each network follow the official checkpoints, so that
``mdt import stargan-v2`` only renames the top level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from torch import nn

from mdt.interfaces import Network
from mdt.layers import LeakyReLU, leaky_relu
from mdt.ranges import Positive, PowerOfTwo, Weight


def he_init(module: nn.Module) -> None:
    """The paper's initialisation: He (fan-in) normal weights, zero biases."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _levels(image_size: int, smallest: int) -> int:
    """How many halvings take ``image_size`` down to ``smallest``."""
    if image_size < smallest * 2 or image_size & (image_size - 1):
        raise ValueError(f"image_size must be a power of two of at least {smallest * 2}, not {image_size}")
    return int(math.log2(image_size // smallest))


# What the four networks' inputs and outputs are (Network.meanings), for exported files.
MEANINGS = {
    **Network.meanings,
    "style": "style codes (B, style_dim)",
    "latent": "latent codes (B, latent_dim), drawn from N(0, 1)",
    "domains": "domain indices (B,) int64: the target's (mapping network) or the image's own (style encoder)",
    "landmark_masks": "face-landmark masks (B, 1, S, S) from the FAN network, for a generator with high_pass > 0",
    "domain_scores": "real/fake score of each image for each domain (B, K)",
}


class ResBlock(nn.Module):
    """Pre-activation residual block: [norm] lrelu conv [pool] [norm] lrelu conv, plus a
    shortcut (1x1 projection when widths differ, then pooling); the sum is scaled by
    1/sqrt(2) to keep unit variance. Its leaky ReLUs are :mod:`mdt.layers`' (same values),
    so R1's double backward through the discriminator skips a pass of zeros."""

    def __init__(self, c_in: int, c_out: int, normalize: bool = False, downsample: bool = False) -> None:
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.conv1 = nn.Conv2d(c_in, c_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(c_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(c_in, affine=True)
        self.conv1x1 = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv1x1(x) if self.conv1x1 is not None else x
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(leaky_relu(h, 0.2))
        if self.downsample:
            shortcut = F.avg_pool2d(shortcut, 2)
            h = F.avg_pool2d(h, 2)
        h = self.norm2(h) if self.normalize else h
        h = self.conv2(leaky_relu(h, 0.2))
        return (shortcut + h) / math.sqrt(2)


class AdaIN(nn.Module):
    """Adaptive instance norm: the style sets each channel's scale (1 + gamma) and shift."""

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(style)[:, :, None, None].chunk(2, dim=1)
        return (1 + gamma) * F.instance_norm(x) + beta


class StyledResBlock(nn.Module):
    """A decoder block: AdaIN lrelu [upsample] conv AdaIN lrelu conv. Without the
    high-pass skips the (upsampled, projected) input is added and scaled by 1/sqrt(2);
    with them the block's output is the residual branch alone, as in the paper's CelebA-HQ model."""

    def __init__(self, c_in: int, c_out: int, style_dim: int, upsample: bool = False, residual_only: bool = False) -> None:
        super().__init__()
        self.upsample, self.residual_only = upsample, residual_only
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, c_in)
        self.norm2 = AdaIN(style_dim, c_out)
        self.conv1x1 = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False) if c_in != c_out else None

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.norm1(x, style), 0.2)
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv1(h)
        h = self.conv2(F.leaky_relu(self.norm2(h, style), 0.2))
        if self.residual_only:
            return h
        shortcut = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        if self.conv1x1 is not None:
            shortcut = self.conv1x1(shortcut)
        return (shortcut + h) / math.sqrt(2)


class StarGANv2Generator(Network):
    """Encoder of normalised residual blocks (average-pool down), two bottleneck blocks,
    and a decoder of AdaIN blocks (nearest-neighbour up) conditioned on a style code.

    ``high_pass`` > 0 adds the paper's CelebA-HQ skip connections: high-pass filtered
    encoder features, weighted by face-landmark masks, added in the decoder; the filter
    is divided by ``high_pass``. Such a generator needs the masks at every call.
    """

    inputs = ("images", "style", "landmark_masks")
    outputs = ("image",)
    meanings = MEANINGS
    high_pass_kernel: torch.Tensor  # a buffer: the skips' 3x3 filter

    # Resolutions (px) whose encoder features feed the high-pass skips; the first mask
    # is used at 32 px, the second at 64 and 128 (as the official model at 256 px).
    SKIP_SIZES = (32, 64, 128)

    def __init__(
        self,
        image_size: Annotated[int, PowerOfTwo(16)],
        style_dim: Positive = 64,
        base_channels: Positive = 64,
        max_channels: Positive = 512,
        high_pass: Weight = 0.0,
    ) -> None:
        super().__init__()
        if high_pass < 0:
            raise ValueError(f"high_pass must be 0 (off) or positive, not {high_pass}")
        self.image_size, self.style_dim, self.high_pass = image_size, style_dim, float(high_pass)
        self.condition_dim = style_dim  # what it is conditioned on, for generic tests and tools
        levels = _levels(image_size, 16 if image_size >= 32 else 8) + (1 if high_pass > 0 else 0)
        self.from_rgb = nn.Conv2d(3, base_channels, 3, 1, 1)
        self.encode = nn.ModuleList()
        self.decode = nn.ModuleList()
        c_in = base_channels
        for _ in range(levels):
            c_out = min(c_in * 2, max_channels)
            self.encode.append(ResBlock(c_in, c_out, normalize=True, downsample=True))
            self.decode.insert(0, StyledResBlock(c_out, c_in, style_dim, upsample=True, residual_only=high_pass > 0))
            c_in = c_out
        for _ in range(2):
            self.encode.append(ResBlock(c_in, c_in, normalize=True))
            self.decode.insert(0, StyledResBlock(c_in, c_in, style_dim, residual_only=high_pass > 0))
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(base_channels, affine=True), nn.LeakyReLU(0.2), nn.Conv2d(base_channels, 3, 1, 1, 0))
        kernel = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]) / (high_pass or 1.0)
        self.register_buffer("high_pass_kernel", kernel, persistent=False)
        self.apply(he_init)

    def example_inputs(self, known: Mapping[str, torch.Tensor]) -> tuple[Any, ...]:
        """The samples, a style code of zeros and, with high-pass skips, landmark masks of
        zeros: what recipe check runs it on."""
        images = known["images"]
        style = torch.zeros(images.shape[0], self.style_dim, device=images.device)
        if self.high_pass <= 0:
            return images, style
        mask = torch.zeros(images.shape[0], 1, *images.shape[2:], device=images.device)
        return images, style, (mask, mask)

    def forward(self, x: torch.Tensor, style: torch.Tensor, masks: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if self.high_pass > 0 and masks is None:
            raise ValueError("this generator has high-pass skips (high_pass > 0) and needs face-landmark masks")
        h = self.from_rgb(x)
        features = {}
        for block in self.encode:
            if masks is not None and h.shape[-1] in self.SKIP_SIZES:
                features[h.shape[-1]] = h
            h = block(h)
        for block in self.decode:
            h = block(h, style)
            size = h.shape[-1]
            if masks is not None and size in features:
                mask = F.interpolate(masks[0] if size == self.SKIP_SIZES[0] else masks[1], size=size, mode="bilinear")
                h = h + self._high_pass(mask * features[size])
        return self.to_rgb(h)

    def _high_pass(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.high_pass_kernel.to(x.dtype).expand(x.shape[1], 1, 3, 3)
        return F.conv2d(x, kernel, padding=1, groups=x.shape[1])


class MappingNetwork(Network):
    """z -> style of a domain: a shared MLP, then one MLP head per domain."""

    inputs = ("latent", "domains")
    outputs = ("style",)
    meanings = MEANINGS

    def __init__(
        self,
        num_classes: int,
        latent_dim: Positive = 16,
        style_dim: Positive = 64,
        hidden: Positive = 512,
        shared_layers: Positive = 4,
        head_layers: Positive = 4,
    ) -> None:
        super().__init__()
        if shared_layers < 1 or head_layers < 1:
            raise ValueError("shared_layers and head_layers must be at least 1")
        self.latent_dim, self.style_dim, self.num_domains = latent_dim, style_dim, num_classes
        shared: list[nn.Module] = []
        for i in range(shared_layers):
            shared += [nn.Linear(latent_dim if i == 0 else hidden, hidden), nn.ReLU()]
        self.shared = nn.Sequential(*shared)
        self.unshared = nn.ModuleList()
        for _ in range(num_classes):
            head: list[nn.Module] = []
            for _ in range(head_layers - 1):
                head += [nn.Linear(hidden, hidden), nn.ReLU()]
            self.unshared.append(nn.Sequential(*head, nn.Linear(hidden, style_dim)))
        self.apply(he_init)

    def example_inputs(self, known: Mapping[str, torch.Tensor]) -> tuple[Any, ...]:
        """Noise of zeros and the known domain indices: what recipe check runs it on."""
        domains = known["domains"]
        return torch.zeros(domains.shape[0], self.latent_dim, device=domains.device), domains

    def forward(self, z: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(B, latent_dim), (B,) domain indices -> (B, style_dim)."""
        h = self.shared(z)
        styles = torch.stack([head(h) for head in self.unshared], dim=1)
        return styles[torch.arange(z.shape[0], device=z.device), domain]


def _trunk(image_size: int, base_channels: int, max_channels: int) -> tuple[list[nn.Module], int]:
    """conv, residual blocks down to 4x4, lrelu, 4x4 conv to 1x1, lrelu."""
    layers: list[nn.Module] = [nn.Conv2d(3, base_channels, 3, 1, 1)]
    c_in = base_channels
    for _ in range(_levels(image_size, 4)):
        c_out = min(c_in * 2, max_channels)
        layers.append(ResBlock(c_in, c_out, downsample=True))
        c_in = c_out
    layers += [LeakyReLU(0.2), nn.Conv2d(c_in, c_in, 4, 1, 0), LeakyReLU(0.2)]
    return layers, c_in


class StyleEncoder(Network):
    """Image -> style of a domain: a shared convolutional trunk, one linear head per domain."""

    inputs = ("images", "domains")
    outputs = ("style",)
    meanings = MEANINGS

    def __init__(
        self,
        image_size: Annotated[int, PowerOfTwo(8)],
        num_classes: int,
        style_dim: Positive = 64,
        base_channels: Positive = 64,
        max_channels: Positive = 512,
    ) -> None:
        super().__init__()
        self.style_dim, self.num_domains = style_dim, num_classes
        layers, channels = _trunk(image_size, base_channels, max_channels)
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(nn.Linear(channels, style_dim) for _ in range(num_classes))
        self.apply(he_init)

    def forward(self, x: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S), (B,) domain indices -> (B, style_dim)."""
        h = self.shared(x).flatten(1)
        styles = torch.stack([head(h) for head in self.unshared], dim=1)
        return styles[torch.arange(x.shape[0], device=x.device), domain]


class StarGANv2Discriminator(Network):
    """Multi-task discriminator: one real/fake logit per domain, (B, num_domains).

    Each domain's output judges only images of (or translated to) that domain; the
    method picks the column."""

    inputs = ("images",)
    outputs = ("domain_scores",)
    meanings = MEANINGS

    def __init__(
        self, image_size: Annotated[int, PowerOfTwo(8)], num_classes: int, base_channels: Positive = 64, max_channels: Positive = 512
    ) -> None:
        super().__init__()
        self.num_domains = num_classes
        layers, channels = _trunk(image_size, base_channels, max_channels)
        self.main = nn.Sequential(*layers, nn.Conv2d(channels, num_classes, 1, 1, 0))
        self.apply(he_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).flatten(1)
