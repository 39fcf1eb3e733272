"""Reading image files into the uint8 tensors every dataset yields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")  # a GIF: its first frame


class ImageProblem(Exception):
    """A file that cannot become a training image; the message names the file."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def load_image(path: str | Path, crop_size: int, image_size: int) -> torch.Tensor:
    """Decode, centre-crop to ``crop_size`` (0: the largest centred square) and resize
    to ``image_size``; returns uint8 (3, image_size, image_size)."""
    return crop_and_resize(read_rgb(path), crop_size, image_size, str(path))


def read_rgb(path: str | Path) -> Image.Image:
    """An image file as 8-bit RGB, the way it is meant to be seen: turned upright by its
    EXIF orientation (as a phone photo is shown) and, when its samples are 16-bit, scaled
    to 8 bits rather than clipped. Any file that cannot be decoded, a header claiming
    more pixels than PIL's decompression-bomb limit included, is an :class:`ImageProblem`."""
    try:
        with Image.open(path) as img:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            upright: Image.Image = img
            if upright.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                upright = Image.fromarray((np.asarray(upright, dtype=np.uint16) >> 8).astype(np.uint8))
            return upright.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc) or type(exc).__name__
        raise ImageProblem(f"cannot read image '{path}': {reason}") from None


def check_crop(width: int, height: int, crop_size: int, name: str) -> int:
    """The side of the centre crop, or :class:`ImageProblem` naming the file it does not fit."""
    side = crop_size or min(width, height)
    if width < side or height < side:
        raise ImageProblem(f"image '{name}' is {width}x{height}, smaller than the {side}x{side} centre crop")
    return side


def crop_and_resize(rgb: Image.Image, crop_size: int, image_size: int, name: str = "image") -> torch.Tensor:
    width, height = rgb.size
    side = check_crop(width, height, crop_size, name)
    # Same rounding as torchvision's CenterCrop, so crops match the official code.
    left = round((width - side) / 2.0)
    top = round((height - side) / 2.0)
    rgb = rgb.crop((left, top, left + side, top + side))
    if side != image_size:
        rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [-1, 1] as a PIL image."""
    array = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).numpy())


def from_pil(img: Image.Image, image_size: int, crop_size: int = 0) -> torch.Tensor:
    """A PIL image as a (3, S, S) tensor in [-1, 1], centre-cropped and resized."""
    uint8 = crop_and_resize(img.convert("RGB"), crop_size, image_size)
    return uint8.float() / 127.5 - 1.0
