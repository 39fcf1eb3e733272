"""An mdt plugin adding one generator, ``tiny_unet``: a two-level U-Net conditioned on labels."""

import torch
from torch import nn

import mdt
from mdt.ranges import Positive


class TinyUNet(mdt.Network):
    """A small U-Net: the label is tiled over the input, skip connections keep detail.

    ``label_dim`` is passed in by mdt (it comes from the recipe's label encoder), so a
    recipe only sets ``width``. ``inputs`` and ``outputs`` say what it takes and returns,
    so ``mdt recipe check`` can tell which methods can use it.
    """

    inputs = ("images", "labels")
    outputs = ("image",)

    def __init__(self, label_dim: int, width: Positive = 32) -> None:
        super().__init__()
        self.down1 = nn.Sequential(nn.Conv2d(3 + label_dim, width, 3, 1, 1), nn.InstanceNorm2d(width, affine=True), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(width, width * 2, 4, 2, 1), nn.InstanceNorm2d(width * 2, affine=True), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(width * 2, width, 4, 2, 1), nn.InstanceNorm2d(width, affine=True), nn.ReLU())
        self.out = nn.Sequential(nn.Conv2d(width * 2, 3, 3, 1, 1), nn.Tanh())

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        tiled = condition.view(*condition.shape, 1, 1).expand(-1, -1, *images.shape[2:])
        skip = self.down1(torch.cat([images, tiled], dim=1))
        return self.out(torch.cat([self.up(self.down2(skip)), skip], dim=1))


@mdt.hookimpl
def register_components(register):
    register("generator", "tiny_unet", TinyUNet)
