"""Face-landmark masks for StarGAN v2's CelebA-HQ generator (``high_pass > 0``).

The paper keeps a face's identity by adding high-pass filtered encoder features to the
decoder where a face-landmark network sees eyes, nose, mouth and jaw. That network is
a FAN (face alignment network: one stacked hourglass with coordinate channels, 98
landmark heatmaps and a boundary map) whose weights the user supplies — the
``wing.ckpt`` published with StarGAN v2. The layer names here are that file's, so it
loads as it is; nothing is downloaded.

:func:`landmark_masks` turns the 98 heatmaps into the two masks the generator takes: a
whole-face mask for the 32-px skip and one without jaw line, brows and lips for the
larger skips. Heatmaps under 0.1 are dropped, each is scaled to [0, 1], and parts are
moved and sharpened by the amounts of the paper's code.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mdt.errors import MdtError

LANDMARKS = 98


def _coordinates(size: int, with_radius: bool) -> torch.Tensor:
    """(1, 2 or 3, size, size): row and column position in [-1, 1], and the distance
    from the centre scaled to [0, 1]."""
    rows = (torch.arange(size).float() / (size - 1) * 2 - 1).unsqueeze(1).expand(size, size)
    cols = (torch.arange(size).float() / (size - 1) * 2 - 1).unsqueeze(0).expand(size, size)
    planes = [rows, cols]
    if with_radius:
        radius = (rows**2 + cols**2).sqrt()
        planes.append(radius / radius.max())
    return torch.stack(planes).unsqueeze(0)


class CoordConv(nn.Module):
    """A convolution that also sees where each pixel is (CoordConv)."""

    coords: torch.Tensor  # a buffer: (1, 3, size, size) positions

    def __init__(self, size: int, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.register_buffer("coords", _coordinates(size, with_radius=True), persistent=False)
        self.conv = nn.Conv2d(in_channels + 3, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, self.coords.to(x.dtype).expand(x.shape[0], -1, -1, -1)], dim=1))


class ConvBlock(nn.Module):
    """Three pre-activation 3x3 convolutions (to 1/2, 1/4, 1/4 of the width), concatenated, plus the input."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        half, quarter = out_planes // 2, out_planes // 4
        self.bn1, self.conv1 = nn.BatchNorm2d(in_planes), nn.Conv2d(in_planes, half, 3, 1, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(half), nn.Conv2d(half, quarter, 3, 1, 1, bias=False)
        self.bn3, self.conv3 = nn.BatchNorm2d(quarter), nn.Conv2d(quarter, quarter, 3, 1, 1, bias=False)
        self.downsample = None
        if in_planes != out_planes:
            self.downsample = nn.Sequential(nn.BatchNorm2d(in_planes), nn.ReLU(), nn.Conv2d(in_planes, out_planes, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.conv1(F.relu(self.bn1(x)))
        b = self.conv2(F.relu(self.bn2(a)))
        c = self.conv3(F.relu(self.bn3(b)))
        skip = x if self.downsample is None else self.downsample(x)
        return torch.cat([a, b, c], dim=1) + skip


class HourGlass(nn.Module):
    """A coordinate convolution, then ``depth`` levels down (average pool) and back up (nearest)."""

    def __init__(self, depth: int = 4, features: int = 256, size: int = 64) -> None:
        super().__init__()
        self.depth = depth
        self.coordconv = CoordConv(size, features, features, kernel_size=1)
        for level in range(depth, 0, -1):
            self.add_module(f"b1_{level}", ConvBlock(features, features))
            self.add_module(f"b2_{level}", ConvBlock(features, features))
            self.add_module(f"b3_{level}", ConvBlock(features, features))
        self.add_module("b2_plus_1", ConvBlock(features, features))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        upper = self.get_submodule(f"b1_{level}")(x)
        lower = self.get_submodule(f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        lower = self._level(level - 1, lower) if level > 1 else self.get_submodule("b2_plus_1")(lower)
        lower = self.get_submodule(f"b3_{level}")(lower)
        return upper + F.interpolate(lower, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, self.coordconv(x))


class FaceAlignmentNetwork(nn.Module):
    """Images (B, 3, 256, 256) in [0, 1] -> (B, 99, 64, 64): 98 landmark heatmaps and a boundary map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = CoordConv(256, 3, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2, self.conv3, self.conv4 = ConvBlock(64, 128), ConvBlock(128, 128), ConvBlock(128, 256)
        self.m0 = HourGlass(4, 256, 64)
        self.top_m_0 = ConvBlock(256, 256)
        self.conv_last0 = nn.Conv2d(256, 256, 1)
        self.bn_end0 = nn.BatchNorm2d(256)
        self.l0 = nn.Conv2d(256, LANDMARKS + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        x = self.top_m_0(self.m0(x))
        return self.l0(F.relu(self.bn_end0(self.conv_last0(x))))

    @classmethod
    def from_file(cls, path: str | Path) -> FaceAlignmentNetwork:
        """The weights of StarGAN v2's ``wing.ckpt`` (its ``state_dict``), read without pickle code."""
        from mdt.foreign import load_foreign

        network = cls()
        saved = load_foreign(path, "face-landmark weights")
        state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
        own = network.state_dict()
        if not isinstance(state, dict):
            raise MdtError(f"'{path}' holds no state dict; expected StarGAN v2's wing.ckpt")
        # Batch-norm step counters may be absent from older files; they are not used in inference.
        wrong = [
            k for k in own if not k.endswith("num_batches_tracked") and (k not in state or tuple(state[k].shape) != tuple(own[k].shape))
        ]
        if wrong:
            raise MdtError(
                f"'{path}' is not the FAN landmark network of StarGAN v2 (wing.ckpt): {len(wrong)} tensors missing or of another shape, first '{wrong[0]}'"
            )
        network.load_state_dict({k: state[k] for k in own if k in state}, strict=False)
        return network.eval().requires_grad_(False)

    @torch.no_grad()
    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 98, 256, 256) landmark heatmaps of images in [-1, 1] (any size)."""
        x = F.interpolate(images.float(), size=256, mode="bilinear")
        maps = self(x * 0.5 + 0.5)[:, :-1]
        return F.interpolate(maps, scale_factor=256 // maps.shape[-1], mode="bilinear", align_corners=True)

    @torch.no_grad()
    def masks(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return landmark_masks(self.heatmaps(images))


# Landmark index ranges of the 98-point (WFLW) layout: [start, end).
PARTS = {
    "chin": (8, 25),
    "eyebrows": (33, 51),
    "eyebrow_edges": (33, 46),
    "nose": (51, 55),
    "nostrils": (55, 60),
    "eyes": (60, 76),
    "lip_edges": (76, 82),
    "lip_upper": (77, 82),
    "lip_lower": (83, 88),
    "lip_inner": (88, 96),
}
# (rows to move up (+) or down (-), power that sharpens) per part, at 256 px.
MOVES = {"chin": (0, 3), "eyebrows": (-7, 2), "nostrils": (8, 4), "lip_upper": (-8, 4), "lip_lower": (8, 4), "lip_inner": (-2, 3)}


def _up(x: torch.Tensor, rows: int) -> torch.Tensor:
    """Moved ``rows`` up (negative: down), wrapping around."""
    return torch.roll(x, shifts=-rows, dims=2)


def landmark_masks(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 98, H, W) heatmaps -> the generator's two masks (B, 1, H, W) in [0, 1]."""
    x = torch.where(heatmaps < 0.1, torch.zeros_like(heatmaps), heatmaps)
    flat = x.flatten(2)
    low, high = flat.min(dim=2, keepdim=True)[0], flat.max(dim=2, keepdim=True)[0]
    x = ((flat - low) / (high - low + 1e-6)).view_as(x)
    scale = x.shape[2] // 256
    for part, (rows, power) in MOVES.items():
        start, end = PARTS[part]
        x[:, start:end] = _up(x[:, start:end], rows * scale) ** power
    chin_start, chin_end = PARTS["chin"]
    dropped = [
        *range(chin_start),
        *range(chin_end, 33),
        PARTS["eyebrow_edges"][0],
        PARTS["eyebrow_edges"][1],
        PARTS["lip_edges"][0],
        PARTS["lip_edges"][1],
    ]
    x[:, dropped] = 0
    start, end = PARTS["nose"]
    x[:, start + 1 : end] = _up(x[:, start + 1 : end], 4 * scale)
    start, end = PARTS["eyes"]
    eyes = x[:, start:end].clone()
    x[:, start:end] = _up(eyes, -8) ** 3 + _up(eyes, -24)
    inner = x.clone()
    inner[:, chin_start:chin_end] = 0
    inner[:, PARTS["lip_edges"][0] : PARTS["lip_inner"][1]] = 0
    inner[:, PARTS["eyebrows"][0] : PARTS["eyebrows"][1]] = 0
    whole, inner = x.sum(dim=1, keepdim=True), inner.sum(dim=1, keepdim=True)
    whole, inner = torch.nan_to_num(whole, nan=0.0), torch.nan_to_num(inner, nan=0.0)
    return whole.clamp(0, 1), inner.clamp(0, 1)


EYES = {"left_eye": (60, 68), "right_eye": (68, 76)}  # WFLW: the eye on the image's left first
MOUTH = (76, 96)
CONFIDENT = 0.2  # a heatmap peak below this, on average over the eyes and mouth: no face found


class FanFacePoints:
    """Eyes and mouth of a photo from StarGAN v2's FAN (``wing.ckpt``): heatmap peaks of the
    98 landmarks on the centre square at 256 px; None when the peaks are weak (no face)."""

    def __init__(self, weights: str) -> None:
        self.network = FaceAlignmentNetwork.from_file(weights)

    @torch.no_grad()
    def __call__(self, image):
        from mdt.align import FacePoints
        from mdt.images import from_pil

        side = min(image.size)
        left, top = round((image.width - side) / 2.0), round((image.height - side) / 2.0)  # as from_pil crops
        heatmaps = self.network.heatmaps(from_pil(image, 256)[None])[0]  # (98, 256, 256) of the centre square
        peaks, where = heatmaps.flatten(1).max(dim=1)
        xy = torch.stack([where % 256, where // 256], dim=1).double() + 0.5
        used = [*range(*EYES["left_eye"]), *range(*EYES["right_eye"]), *range(*MOUTH)]
        if float(peaks[used].mean()) < CONFIDENT:
            return None

        def centre(first: int, end: int) -> tuple[float, float]:
            x, y = xy[first:end].mean(dim=0).tolist()
            return (left + x * side / 256, top + y * side / 256)

        return FacePoints(centre(*EYES["left_eye"]), centre(*EYES["right_eye"]), centre(*MOUTH))
