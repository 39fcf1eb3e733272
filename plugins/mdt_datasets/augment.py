"""Augmentation on the training device with kornia: uint8 batches in, [-1, 1] floats out."""

from __future__ import annotations

from typing import Annotated

import torch
from kornia import augmentation as K
from kornia.geometry.transform import resize

from mdt.interfaces import Augmentation
from mdt.ranges import Above, Between


class StandardAugmentation(Augmentation):
    """Random horizontal flip (and optional random resized crop), resize, scale to [-1, 1]."""

    def __init__(self, image_size: int, flip: bool = True, crop_scale: Annotated[float, Above(0), Between(0, 1)] = 1.0) -> None:
        if not 0.0 < crop_scale <= 1.0:
            raise ValueError(f"crop_scale must be in (0, 1], not {crop_scale}")
        self.image_size = image_size
        self.flip = K.RandomHorizontalFlip(p=0.5) if flip else None
        self.crop = K.RandomResizedCrop((image_size, image_size), scale=(crop_scale, 1.0), ratio=(1.0, 1.0)) if crop_scale < 1.0 else None

    def __call__(self, images: torch.Tensor, train: bool = True) -> torch.Tensor:
        x = images.float().div_(255.0)
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = resize(x, (self.image_size, self.image_size), antialias=True)
        if train and self.crop is not None:
            x = self.crop(x)
        if train and self.flip is not None:
            x = self.flip(x)
        return x.mul_(2.0).sub_(1.0)
