"""The two Inception networks published FIDs are measured with, from files of their weights.

- ``pytorch-fid``: TensorFlow's 2015 Inception graph, ported to PyTorch by pytorch-fid
  (``pt_inception-2015-12-05-6726825d.pth``): the feature space of most GAN papers'
  FIDs. It differs from torchvision's Inception v3 in its pooling: the average-pool
  branches leave padding out of the mean, and the last block max-pools. Inputs are
  resized to 299 x 299 (bilinear on tensors), as pytorch-fid does.
- ``stargan-v2``: torchvision's ImageNet Inception v3 (``inception_v3_google-0cc3c7bd.pth``),
  which StarGAN v2's published FIDs use (its ``metrics/fid.py``): images saved as PNG
  (uint8), read back, resized to 299 x 299 by PIL (bilinear), normalised with ImageNet's
  mean and deviation, and passed through the blocks without torchvision's input transform.

:func:`load_inception` tells the two files apart by their tensors; :func:`published`
says whether a file is the one its protocol publishes. Both files are released under
torch.hub's naming convention, ``NAME-<first digits of the file's SHA-256>.pth``, so the
digits in their names are the published check: a file with Inception's layout but other
weights (random ones measure an FID near 0) is told apart by its hash, not its layout.
torchvision has released its Inception twice, ``inception_v3_google-1a9a5a14.pth`` (the
file of StarGAN v2's time) and ``-0cc3c7bd.pth``; either is accepted.
"""

from __future__ import annotations

import hashlib
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mdt.errors import MdtError


def _average_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


def _block_a(self, x, pool=_average_pool):
    b5 = self.branch5x5_2(self.branch5x5_1(x))
    b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
    return [self.branch1x1(x), b5, b3, self.branch_pool(pool(x))]


def _block_c(self, x, pool=_average_pool):
    b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
    d = self.branch7x7dbl_1(x)
    for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
        d = layer(d)
    return [self.branch1x1(x), b7, d, self.branch_pool(pool(x))]


def _block_e(self, x, pool=_average_pool):
    b3 = self.branch3x3_1(x)
    b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
    d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
    return [self.branch1x1(x), b3, d, self.branch_pool(pool(x))]


def _block_e_max(self, x):
    return _block_e(self, x, pool=_max_pool)


def pooled_features(n, x: torch.Tensor) -> torch.Tensor:
    """Inception v3's blocks without its input transform, average-pooled: (B, 2048)."""
    x = F.max_pool2d(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
    x = F.max_pool2d(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
    for block in (
        n.Mixed_5b,
        n.Mixed_5c,
        n.Mixed_5d,
        n.Mixed_6a,
        n.Mixed_6b,
        n.Mixed_6c,
        n.Mixed_6d,
        n.Mixed_6e,
        n.Mixed_7a,
        n.Mixed_7b,
        n.Mixed_7c,
    ):
        x = block(x)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


class FidInception(torch.nn.Module):
    """Images in [-1, 1] -> (B, 2048) pool3 features of FID's Inception."""

    protocol = "pytorch-fid"
    feature_space = "inception (pool3, 2048)"

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        net = inception_v3(weights=None, aux_logits=False, init_weights=False, num_classes=1008)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d"):
            getattr(net, name)._forward = types.MethodType(_block_a, getattr(net, name))
        for name in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"):
            getattr(net, name)._forward = types.MethodType(_block_c, getattr(net, name))
        net.Mixed_7b._forward = types.MethodType(_block_e, net.Mixed_7b)
        net.Mixed_7c._forward = types.MethodType(_block_e_max, net.Mixed_7c)
        self.net = net

    @classmethod
    def from_file(cls, path: str | Path) -> FidInception:
        from mdt.foreign import load_foreign

        model = cls()
        state = load_foreign(path, "FID Inception weights")
        own = model.net.state_dict()
        if not isinstance(state, dict) or set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            raise MdtError(f"'{path}' is not the FID Inception weights (pt_inception-2015-12-05-6726825d.pth of pytorch-fid)")
        model.net.load_state_dict(state)
        return model

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        return pooled_features(self.net, x)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def png_quantised(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8, as saving a PNG does (torchvision's save_image rounds half up)."""
    return ((images.detach().float().cpu() + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8)


def pil_resized(images: torch.Tensor, size: int = 299) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> (B, 3, size, size) floats in [0, 1], each resized by PIL (bilinear)."""
    out = []
    for image in images:
        pil = Image.fromarray(image.permute(1, 2, 0).numpy())
        out.append(
            torch.from_numpy(np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255).permute(2, 0, 1)
        )
    return torch.stack(out)


class ImageNetInception(torch.nn.Module):
    """Images in [-1, 1] -> (B, 2048) pooled features of torchvision's ImageNet Inception v3,
    the way StarGAN v2 measures FID (see the module's docstring)."""

    protocol = "stargan-v2"
    feature_space = "torchvision inception v3 (pool, 2048; uint8 images, PIL resize)"
    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        self.net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = ((pil_resized(png_quantised(images)).to(self.mean.device)) - self.mean) / self.std
        return pooled_features(self.net, x)


def load_inception(path: str | Path) -> FidInception | ImageNetInception:
    """The network whose weights ``path`` holds: pytorch-fid's or torchvision's Inception."""
    from mdt.foreign import load_foreign

    state = load_foreign(path, "Inception weights")
    for network in (FidInception(), ImageNetInception()):
        own = network.net.state_dict()
        if isinstance(state, dict) and set(state) == set(own) and all(state[k].shape == own[k].shape for k in own):
            network.net.load_state_dict(state)
            return network
    raise MdtError(
        f"'{path}' holds neither pytorch-fid's Inception (pt_inception-2015-12-05-6726825d.pth) "
        "nor torchvision's Inception v3 (inception_v3_google-0cc3c7bd.pth)"
    )


PUBLISHED_SHA256 = {  # the hash prefixes in the released file names
    "pytorch-fid": ("6726825d",),
    "stargan-v2": ("0cc3c7bd", "1a9a5a14"),
}


def published(protocol: str, sha256: str) -> bool:
    """Is a file of this SHA-256 the protocol's published weights?"""
    return sha256.startswith(PUBLISHED_SHA256[protocol])


def published_names(protocol: str) -> str:
    """The published files' hash prefixes, for a message: ``6726825d…``."""
    return " or ".join(f"{prefix}…" for prefix in PUBLISHED_SHA256[protocol])


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
