"""StarGAN's generator and discriminator (Choi et al., CVPR 2018, Tables 4 and 5).

At 128 px with 5 labels: generator 8,430,528 parameters, discriminator 44,762,048.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mdt.interfaces import Network
from mdt.layers import FewOutputsConv2d, LeakyReLU, SmallMapConv2d
from mdt.ranges import Count, Fraction, Positive, sample_halving_problem
from mdt.samples import SampleSpec
from mdt_stargan.input_augment import InputAugment


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm that always normalises each image by its own statistics.

    The official code tracks running statistics but never puts the generator in eval
    mode, so its outputs always use per-image statistics. PyTorch's eval mode would
    switch to the running averages and garble the output; this keeps the buffers (and
    so the official checkpoint layout) without that switch. Outside training it computes
    the same normalisation as a group norm with one group per channel, whose CPU kernel
    runs 2-5x faster than instance norm's (docs/performance.md, translation).
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, affine=True, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        # torch.group_norm: F.group_norm's Python checks would make an export's tracer warn
        return torch.group_norm(x, self.num_features, self.weight, self.bias, self.eps, False)


def _norm(channels: int) -> InstanceNorm:
    return InstanceNorm(channels)


class ResidualBlock(nn.Module):
    """conv3x3-norm-ReLU-conv3x3-norm, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


def _upsample(width: int, how: str) -> list[nn.Module]:
    """Twice the height and width, half the channels: the paper's transposed convolution,
    or a nearest-neighbour resize and a 3x3 convolution."""
    if how == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width // 2, 3, 1, 1, bias=False)]
    return [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False)]


class StarGANGenerator(Network):
    """StarGAN generator: encoder, residual bottleneck, decoder; the label is tiled over the image.

    ``label_dim`` comes from the label encoder. ``conv_dim`` is the first layer's width
    (doubled at each of the ``downsamplings``), ``residual_blocks`` the bottleneck depth.
    ``residual_output`` (not in the paper; a switch for what translations keep): the
    network's output is added to the input, clamped to [-1, 1], so "no change" is an
    output of zeros. ``upsampling`` (not in the paper; a switch for fine texture):
    ``"transposed"``, the paper's 4x4 transposed convolutions of stride 2, whose
    overlapping kernels can print a checkerboard; ``"resize"``, a nearest-neighbour 2x
    resize followed by a 3x3 convolution, which cannot (Odena et al. 2016). ``sample``
    (mdt's, from the datasets) gives the channels in and out; none: RGB.
    """

    inputs = ("images", "labels")
    outputs: ClassVar[tuple[str, ...] | None] = ("image",)  # Network's type: a subclass may declare more (GANimation's)

    @staticmethod
    def arguments_problem(values: Mapping[str, Any]) -> str | None:
        """Both sides of the samples must be divisible by 2**downsamplings and leave a map
        of at least 2x2 (instance normalisation in training)."""
        return sample_halving_problem(
            values.get("sample"), values["image_size"], values["downsamplings"], "downsamplings", 2, "instance normalisation in training"
        )

    def __init__(
        self,
        label_dim: int,
        conv_dim: Positive = 64,
        residual_blocks: Count = 6,
        downsamplings: Positive = 2,
        residual_output: bool = False,
        sample: SampleSpec | None = None,
        upsampling: Literal["transposed", "resize"] = "transposed",
    ) -> None:
        super().__init__()
        if conv_dim < 1 or residual_blocks < 0 or downsamplings < 0:
            raise ValueError("conv_dim must be positive, residual_blocks and downsamplings not negative")
        if upsampling not in ("transposed", "resize"):
            raise ValueError(f'upsampling must be "transposed" or "resize", not {upsampling!r}')
        self.label_dim = label_dim
        self.residual_output = residual_output
        channels = sample.channels if sample is not None else 3
        layers: list[nn.Module] = [
            nn.Conv2d(channels + label_dim, conv_dim, 7, 1, 3, bias=False),
            _norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        width = conv_dim
        for _ in range(downsamplings):
            layers += [nn.Conv2d(width, width * 2, 4, 2, 1, bias=False), _norm(width * 2), nn.ReLU(inplace=True)]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(residual_blocks)]
        for _ in range(downsamplings):
            layers += [*_upsample(width, upsampling), _norm(width // 2), nn.ReLU(inplace=True)]
            width //= 2
        layers += [FewOutputsConv2d(width, channels, 7, 1, 3, bias=False), nn.Tanh()]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) in [-1, 1], condition (B, label_dim) -> (B, C, H, W)."""
        tiled = condition.view(condition.shape[0], -1, 1, 1).expand(-1, -1, images.shape[2], images.shape[3])
        out = self.layers(torch.cat([images, tiled.to(images.dtype)], dim=1))
        return (images + out).clamp(-1, 1) if self.residual_output else out


class StarGANDiscriminator(Network):
    """PatchGAN critic with an auxiliary domain classifier; no normalisation. Its leaky
    ReLUs are :mod:`mdt.layers`' (same values), which keep the gradient penalty's double
    backward to the passes it needs; so are its convolutions, which compute the last,
    weight-heavy ones as one matrix product on a CPU.

    ``layers`` stride-2 4x4 convolutions (width ``conv_dim`` doubling each time), then a
    3x3 real/fake head over the remaining map and a classifier whose kernel covers it.
    ``spectral_norm`` (not in the paper; a switch): every convolution's weight is divided
    by its largest singular value (Miyato et al. 2018), estimated by one power iteration
    per forward in training. ``augment_shift`` and ``augment_cutout`` (not in the paper;
    off at 0): in training, every image D reads is first shifted by up to that fraction of
    its side and has a square of that fraction of its sides blanked
    (:mod:`mdt_stargan.input_augment`), so that D reads attributes from every part of a face.
    """

    inputs = ("images",)
    outputs = ("scores", "logits")
    meanings = {
        **Network.meanings,
        "scores": "real/fake map (B, 1, s, s): higher reads as more real",
        "logits": "domain logits (B, K): the labels it reads, before a sigmoid or softmax",
    }

    @staticmethod
    def arguments_problem(values: Mapping[str, Any]) -> str | None:
        """Both sides of the samples must be divisible by 2**layers (the classifier's kernel covers the last map)."""
        return sample_halving_problem(values.get("sample"), values["image_size"], values["layers"], "layers")

    def __init__(
        self,
        image_size: int,
        num_classes: int,
        conv_dim: Positive = 64,
        layers: Positive = 6,
        spectral_norm: bool = False,
        augment_shift: Fraction = 0.0,
        augment_cutout: Fraction = 0.0,
        sample: SampleSpec | None = None,
    ) -> None:
        super().__init__()
        given = {"image_size": image_size, "layers": layers, "sample": sample}
        problem = self.arguments_problem(given) if layers >= 1 else "layers must be positive"
        if problem:
            raise ValueError(problem)
        channels, rows, columns = sample.shape if sample is not None else (3, image_size, image_size)
        blocks: list[nn.Module] = [SmallMapConv2d(channels, conv_dim, 4, 2, 1), LeakyReLU(0.01)]
        width = conv_dim
        for _ in range(1, layers):
            blocks += [SmallMapConv2d(width, width * 2, 4, 2, 1), LeakyReLU(0.01)]
            width *= 2
        self.trunk = nn.Sequential(*blocks)
        self.real_fake_head = nn.Conv2d(width, 1, 3, 1, 1, bias=False)
        self.class_head = nn.Conv2d(width, num_classes, (rows >> layers, columns >> layers), bias=False)
        if spectral_norm:
            for module in [*self.trunk, self.real_fake_head, self.class_head]:
                if isinstance(module, nn.Conv2d):
                    nn.utils.parametrizations.spectral_norm(module)
        self.augment = InputAugment(augment_shift, augment_cutout)  # no weights: checkpoints keep their keys

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, C, H, W) -> (real/fake map (B, 1, H/2^L, W/2^L), class logits (B, num_classes))."""
        features = self.trunk(self.augment(images))
        logits = self.class_head(features)
        return self.real_fake_head(features), logits.view(logits.shape[0], -1)
