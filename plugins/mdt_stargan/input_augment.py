"""Random shifts and cutout of the discriminator's inputs, differentiable (Zhao et al. 2020).

Why: a discriminator trained from scratch for a short run reads each attribute off the
cues that are easiest for it, and a generator can reach its target by drawing a faint
version of just those cues. Shown every image (real, fake, mixed) shifted and with a
square blanked out, the discriminator must read an attribute from whatever part is left,
so the generator must draw it everywhere the real images show it. Real and fake images
are changed alike, so what D learns still tells real from fake; the changes are
differentiable, so G's gradient flows through them. Training only: in eval mode (reading
an input's labels at translation, export) the images pass unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class InputAugment(nn.Module):
    """Each image shifted by a random whole number of pixels up to ``shift`` of its side
    in each direction (zeros come in), then a square of ``cutout`` of its sides, centred
    at a random pixel (and so cut at the border), set to 0. Each 0 turns its part off."""

    def __init__(self, shift: float = 0.0, cutout: float = 0.0) -> None:
        super().__init__()
        for name, value in (("shift", shift), ("cutout", cutout)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], not {value}")
        self.shift = shift
        self.cutout = cutout

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return images
        if self.shift > 0:
            images = self._shifted(images)
        if self.cutout > 0:
            images = images * self._cutout_mask(images)
        return images

    def _shifted(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, rows, columns = images.shape
        pad_rows, pad_columns = int(rows * self.shift), int(columns * self.shift)
        if pad_rows == 0 and pad_columns == 0:
            return images
        padded = nn.functional.pad(images, (pad_columns, pad_columns, pad_rows, pad_rows))
        device = images.device
        down = torch.randint(-pad_rows, pad_rows + 1, (batch, 1, 1), device=device)
        right = torch.randint(-pad_columns, pad_columns + 1, (batch, 1, 1), device=device)
        # Output pixel (i, j) reads the input's (i - down, j - right): padded (i - down + pad).
        row_index = torch.arange(rows, device=device).view(1, rows, 1) - down + pad_rows
        column_index = torch.arange(columns, device=device).view(1, 1, columns) - right + pad_columns
        sample_index = torch.arange(batch, device=device).view(batch, 1, 1)
        picked = padded.permute(0, 2, 3, 1)[sample_index, row_index, column_index]  # (B, H, W, C)
        return picked.permute(0, 3, 1, 2)

    def _cutout_mask(self, images: torch.Tensor) -> torch.Tensor:
        batch, _, rows, columns = images.shape
        device = images.device
        height, width = max(1, round(rows * self.cutout)), max(1, round(columns * self.cutout))
        centre_row = torch.randint(0, rows, (batch, 1, 1), device=device)
        centre_column = torch.randint(0, columns, (batch, 1, 1), device=device)
        top, left = centre_row - height // 2, centre_column - width // 2
        row = torch.arange(rows, device=device).view(1, rows, 1)
        column = torch.arange(columns, device=device).view(1, 1, columns)
        inside = (row >= top) & (row < top + height) & (column >= left) & (column < left + width)
        return (~inside).to(images.dtype).unsqueeze(1)
