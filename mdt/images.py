"""Reading image files into the uint8 tensors image datasets yield, and tensors back into pictures."""

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


Size = int | tuple[int, int]  # a square's side, or (height, width)


def load_image(path: str | Path, crop_size: int, size: Size, channels: int = 3) -> torch.Tensor:
    """Decode, centre-crop (:func:`crop_and_resize`) and resize to ``size``; returns uint8
    (channels, height, width): RGB, or grey for one channel."""
    return crop_and_resize(read_rgb(path), crop_size, size, str(path), channels)


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


def check_crop(width: int, height: int, crop_size: int, name: str = "") -> int:
    """The side of the centre crop, or :class:`ImageProblem` naming the file it does not fit."""
    side = crop_size or min(width, height)
    if width < side or height < side:
        raise ImageProblem(f"{f'image {name!r}' if name else 'the image'} is {width}x{height}, smaller than the {side}x{side} centre crop")
    return side


def crop_and_resize(rgb: Image.Image, crop_size: int, size: Size, name: str = "", channels: int = 3) -> torch.Tensor:
    """The centred ``crop_size`` square of ``rgb`` (0: the largest centred region of the
    output's shape, a square for a square) resized to ``size``, as uint8 (channels, H, W):
    RGB for three channels, grey (PIL's luma) for one."""
    out_height, out_width = (size, size) if isinstance(size, int) else size
    if channels not in (1, 3):
        raise ImageProblem(f"an image has 1 (grey) or 3 (RGB) channels, not {channels}")
    width, height = rgb.size
    if crop_size or out_height == out_width:
        crop_width = crop_height = check_crop(width, height, crop_size, name)
    else:  # the largest centred region of the output's aspect
        scale = min(width / out_width, height / out_height)
        crop_width, crop_height = max(1, round(out_width * scale)), max(1, round(out_height * scale))
    # Same rounding as torchvision's CenterCrop, so crops match the official code.
    left = round((width - crop_width) / 2.0)
    top = round((height - crop_height) / 2.0)
    rgb = rgb.crop((left, top, left + crop_width, top + crop_height))
    if (crop_width, crop_height) != (out_width, out_height):
        rgb = rgb.resize((out_width, out_height), Image.Resampling.BILINEAR)
    if channels == 1:
        return torch.from_numpy(np.asarray(rgb.convert("L"), dtype=np.uint8).copy())[None]
    array = np.asarray(rgb, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def to_pil(image: torch.Tensor) -> Image.Image:
    """A (C, H, W) tensor in [-1, 1] as an RGB PIL image: three channels as colour, any
    other number as grey (one channel itself; several, their mean)."""
    values = image.detach().float().cpu().clamp(-1, 1)
    if values.shape[0] != 3:
        values = values.mean(0, keepdim=True).expand(3, -1, -1)
    array = ((values + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).contiguous().numpy())


def from_pil(img: Image.Image, size: Size, crop_size: int = 0, channels: int = 3) -> torch.Tensor:
    """A PIL image as a (channels, H, W) tensor in [-1, 1], centre-cropped and resized."""
    uint8 = crop_and_resize(img.convert("RGB"), crop_size, size, channels=channels)
    return uint8.float() / 127.5 - 1.0
