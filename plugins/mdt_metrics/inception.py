"""The Inception network of the standard FID, for files of its published weights.

FID numbers are comparable across papers only in one feature space: the 2048 pooled
features of TensorFlow's 2015 Inception graph, whose PyTorch port (pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth``) the user passes to ``mdt eval --inception``.
That graph differs from torchvision's Inception v3 in its pooling: the average-pool
branches leave padding out of the mean, and the last block max-pools. Inputs are
resized to 299 x 299 (bilinear), as pytorch-fid does.
"""

from __future__ import annotations

import types
from pathlib import Path

import torch
import torch.nn.functional as F

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


class FidInception(torch.nn.Module):
    """Images in [-1, 1] -> (B, 2048) pool3 features of FID's Inception."""

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
        from mdt.checkpoint import load_foreign

        model = cls()
        state = load_foreign(path, "FID Inception weights")
        own = model.net.state_dict()
        if not isinstance(state, dict) or set(state) != set(own) or any(state[k].shape != own[k].shape for k in own):
            raise MdtError(f"'{path}' is not the FID Inception weights (pt_inception-2015-12-05-6726825d.pth of pytorch-fid)")
        model.net.load_state_dict(state)
        return model

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n = self.net
        x = F.interpolate((images + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
        x = F.max_pool2d(n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x))), kernel_size=3, stride=2)
        x = F.max_pool2d(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), kernel_size=3, stride=2)
        for block in (n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a, n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e,
                      n.Mixed_7a, n.Mixed_7b, n.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
