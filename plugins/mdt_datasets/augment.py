"""Augmentation on the training device with kornia: stored samples in, [-1, 1] floats out."""

from __future__ import annotations

from typing import Annotated

import torch
from kornia import augmentation as K
from kornia.geometry.transform import resize

from mdt.interfaces import Augmentation
from mdt.ranges import Above, Between
from mdt.samples import SampleSpec


class StandardAugmentation(Augmentation):
    """Random horizontal flip (and optional random resized crop of the samples' aspect),
    resize to the declared height and width, scale to [-1, 1]."""

    def __init__(self, sample: SampleSpec, flip: bool = True, crop_scale: Annotated[float, Above(0), Between(0, 1)] = 1.0) -> None:
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], not {crop_scale}")
        self.sample = sample
        self.size = (sample.height, sample.width)
        self.flip = K.RandomHorizontalFlip(p=0.5) if flip else None
        aspect = sample.width / sample.height
        self.crop = K.RandomResizedCrop(self.size, scale=(crop_scale, 1.0), ratio=(aspect, aspect)) if crop_scale < 1.0 else None

    def __call__(self, images: torch.Tensor, train: bool = True) -> torch.Tensor:
        low, high = self.sample.low, self.sample.high
        x = (images.float() - low).div_(high - low)  # kornia works in [0, 1]; for uint8 exactly x / 255 as before
        if tuple(x.shape[-2:]) != self.size:
            x = resize(x, self.size, antialias=True)
        if train and self.crop is not None:
            x = self.crop(x)
        if train and self.flip is not None:
            x = self.flip(x)
        return x.mul_(2.0).sub_(1.0)
