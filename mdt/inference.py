"""Using a trained model: the Python API behind ``mdt translate``.

    from mdt.inference import load_translator
    translator = load_translator("runs/quickstart")
    out = translator(pil_image, to={"Blond_Hair": 1})         # PIL in, PIL out
    batch = translator(images, to={"Smiling": 0})              # (B, 3, S, S) in [-1, 1]
    grid = translator.grid(pil_image)                          # input x every target
    translator.options                                         # what this model may be asked

Each method's translator says what it takes (:mod:`mdt.options`). StarGAN: ``to`` names
target labels (others keep the source's, read by the discriminator's classifier) and
``known`` gives known labels of the inputs. StarGAN v2: ``domain`` names the target and
``seed`` picks a style from noise, or ``ref`` (a PIL image or tensor) gives a reference
whose style to use::

    cats = [translator(dog, domain="cat", seed=s) for s in range(4)]   # four styles
    out = translator(dog, domain="cat", ref=cat_picture)              # reference-guided
    grid = translator.grid(dogs, domain="cat", num=8)                 # inputs x 8 styles
    grid = translator.grid(dogs, domain="cat", ref=cat_pictures)      # inputs x references
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from mdt import checkpoint as ckpt
from mdt.build import build, pick_device
from mdt.errors import MdtError
from mdt.grids import grid_image
from mdt.hub import local
from mdt.options import Option, check_request
from mdt.plugins import get_registry
from mdt.recipe import parse_recipe
from mdt.recipe_layout import Recipe
from mdt.registry import Registry
from mdt.samples import SampleSpec
from mdt.weights import check_network, load_network

if TYPE_CHECKING:
    from mdt.interfaces import Modality


class ResizeNotice(UserWarning):
    """Inputs of another size than the model's were cropped and resized to it (said once)."""


class RangeNotice(UserWarning):
    """Input tensors all in [0, 1], where the model takes [-1, 1] (said once)."""


class ImageTranslator:
    """A trained model ready to translate PIL images or tensors; requests are checked
    against the translator's own options."""

    recipe: Recipe  # what built it, set by load_translator: mdt serve builds its datasets for sample images

    def __init__(self, components, checkpoint_path: Path, step: int, missing: frozenset[str] = frozenset()) -> None:
        self.components = components
        self.checkpoint_path = checkpoint_path
        self.step = step
        self.translator = components.method.translator()
        self.translator.missing_networks = missing
        self.sample: SampleSpec = components.sample  # what the model takes and gives
        self.modality: Modality = components.modality  # reads its inputs, makes its outputs (a PIL image for images)
        self.image_size = components.settings.image_size
        self.device = components.device
        self.label_names = [s.names for s in components.schemas]
        self.resized = False  # whether an input was resized (said once, as a ResizeNotice)
        self._range_said = False

    @property
    def options(self) -> tuple[Option, ...]:
        return tuple(self.translator.options)

    def _tensor(self, images: Any, crop_size: int, made: bool = False) -> tuple[torch.Tensor, bool]:
        """A batch on the device, and whether it was given as the modality's inputs (PIL
        images) rather than tensors; with ``made``, tensors the modality made
        (:meth:`samples_of`), taken as they are (a recording keeps its length)."""
        if isinstance(images, torch.Tensor) and made:
            return images.to(self.device), False
        if isinstance(images, torch.Tensor):
            return self._checked(images.unsqueeze(0) if images.dim() == 3 else images), False
        samples = self.samples_of(images if isinstance(images, (list, tuple)) else [images], crop_size)
        if not isinstance(samples, torch.Tensor):
            raise MdtError("the inputs make samples of different shapes (recordings of different lengths); give one at a time")
        return samples, True

    def samples_of(self, given: Sequence[Any], crop_size: int = 0) -> torch.Tensor | list[torch.Tensor]:
        """The modality's inputs (PIL images for images) as a batch of samples on the
        device, or a list of samples where their shapes differ (recordings of different
        lengths); pictures resized to the model's size are said once (ResizeNotice)."""
        if all(isinstance(img, Image.Image) for img in given):
            self._say_resized([img.size for img in given], crop_size)
        samples = [self.modality.to_sample(img, crop_size).to(self.device) for img in given]
        return torch.stack(samples) if len({tuple(s.shape) for s in samples}) == 1 else samples

    def _say_resized(self, sizes: list[tuple[int, int]], crop_size: int) -> None:
        """Warn once that pictures (``sizes``: width, height) are resized to the model's
        size after their centre crop (mdt.images.crop_and_resize)."""
        height, width = self.sample.height, self.sample.width

        def resized(w: int, h: int) -> bool:
            if crop_size or height == width:
                return (crop_size or min(w, h), crop_size or min(w, h)) != (height, width)
            return min(w / width, h / height) != 1

        other = any(resized(w, h) for w, h in sizes)
        if other and not self.resized:
            warnings.warn(
                f"inputs are centre-cropped and resized to the model's {width} x {height} px; so are its outputs", ResizeNotice, 4
            )
        self.resized |= other

    def _checked(self, images: torch.Tensor) -> torch.Tensor:
        """Tensor inputs as the networks take them, or a one-line error saying what was expected."""
        channels, height, width = self.sample.shape
        if images.dim() != 4 or images.shape[1] != channels:
            raise MdtError(
                f"images: expected a tensor (B, {channels}, {height}, {width}) or ({channels}, {height}, {width}), not {tuple(images.shape)}"
            )
        if tuple(images.shape[-2:]) != (height, width):
            raise MdtError(
                f"images are {images.shape[-1]} x {images.shape[-2]} px; this model takes {width} x {height} "
                "(PIL images are cropped and resized for you)"
            )
        if not images.is_floating_point():
            raise MdtError(f"images are {images.dtype}; this model takes floats in [-1, 1] (uint8 x: x / 127.5 - 1)")
        low, high = (float(v) for v in images.aminmax())
        if low < -1.001 or high > 1.001:
            raise MdtError(f"images range over [{low:.4g}, {high:.4g}]; this model takes [-1, 1] (x in [0, 1]: x * 2 - 1)")
        if low >= 0 and not self._range_said:
            self._range_said = True
            warnings.warn("images are all in [0, 1]; this model takes [-1, 1] (x * 2 - 1), so they read as bright", RangeNotice, 4)
        return images.to(self.device, torch.float32)

    def _request(self, request: dict[str, Any], crop_size: int, for_grid: bool) -> dict[str, Any]:
        """``request`` checked against the options, with image options as tensors like the inputs."""
        checked = check_request(self.options, request, for_grid)
        images = {o.name for o in self.options if o.type == "image"}
        return {k: self._tensor(v, crop_size)[0] if k in images and v is not None else v for k, v in checked.items()}

    def __call__(self, images, crop_size: int = 0, made: bool = False, **request: Any):
        """Translations: the modality's inputs in, its outputs out (PIL images for images;
        a list for a list); tensors in, tensors out (``made``: samples the modality made,
        :meth:`samples_of`, which are not checked against the model's shape)."""
        if isinstance(images, torch.Tensor):
            batch, _ = self._tensor(images, crop_size, made)
            return self.translator.translate(batch, **self._request(request, crop_size, for_grid=False))
        inputs = images if isinstance(images, (list, tuple)) else [images]
        samples = self.samples_of(inputs, crop_size)
        checked = self._request(request, crop_size, for_grid=False)
        if isinstance(samples, torch.Tensor):
            translated = list(self.translator.translate(samples, **checked))
        else:  # samples of different shapes (recordings of different lengths): one at a time
            translated = [self.translator.translate(one[None], **checked)[0] for one in samples]
        outputs = [self.modality.from_sample(out, source, request) for out, source in zip(translated, inputs, strict=True)]
        return outputs if isinstance(images, (list, tuple)) else outputs[0]

    def grid(
        self,
        images,
        crop_size: int = 0,
        num: int | None = None,
        batch_size: int | None = None,
        names: Sequence[str] | None = None,
        made: bool = False,
        **request: Any,
    ) -> Image.Image:
        """One row per input: the input, then its translation to every column (every
        target; with ``num``, that many outputs of the model's varying option).
        ``batch_size``: inputs per generator call, so a grid of a whole folder fits in memory.
        ``names``: one per input, written left of its row (which file a row is). ``made``:
        as for a call."""
        batch, _ = self._tensor(images, crop_size, made)
        request = self._request(request, crop_size, for_grid=True)
        if num is not None:
            if not self.translator.varies:
                raise MdtError("this model gives one output per target; a grid of several (num) needs a model whose outputs vary")
            if num < 1:
                raise MdtError(f"num = {num}: give at least 1")
            request["num"] = num
        step = batch_size or len(batch)
        rows, titles = self.translator.grid(batch[:step], **request)
        for start in range(step, len(batch), step):
            more, _ = self.translator.grid(batch[start : start + step], **request)
            rows += more[1:] if more and more[0][0] is None else more  # the column images head the grid once
        headed = 1 if rows and rows[0][0] is None else 0  # a row of references above the inputs
        row_titles = [None] * headed + list(names) if names is not None and len(names) == len(rows) - headed else None
        return grid_image(rows, ["input", *titles], row_titles=row_titles, picture=self.modality.preview)


def load_translator(path: str | Path, device: str = "auto", registry: Registry | None = None) -> ImageTranslator:
    """Load a checkpoint file (or the newest checkpoint of a run folder) for inference."""
    registry = registry or get_registry()
    file, saved = read_model(path)
    recipe = model_recipe(file, saved, registry)
    components = build(
        recipe,
        registry,
        schemas=saved.schemas,
        statistics=saved.statistics(),
        device=pick_device(device, "device"),
        check_network=weights_check(saved, file),
    )
    missing = load_networks(components, saved)
    translator = ImageTranslator(components, file, saved.step, missing)
    translator.recipe = recipe  # what built it: mdt serve builds its datasets for sample images
    return translator


def read_model(path: str | Path) -> tuple[Path, ckpt.Checkpoint]:
    """A model checkpoint (file, or a run folder's newest) without its training state."""
    return ckpt.read_newest(local(path), training=False, content=ckpt.MODEL)


def model_recipe(file: Path, saved: ckpt.Checkpoint, registry: Registry) -> Recipe:
    """The recipe a model checkpoint was saved with, to rebuild its model here. A
    third-party component it needs that is not installed is named with its package (a
    loss or logger need not be: the model is built without them)."""
    missing = saved.missing_plugin(lambda kind, name: kind in ("loss", "logger") or registry.has(kind, name))
    if missing:
        raise MdtError(f"'{file}': {missing}")
    return parse_recipe(saved.recipe_text, f"{file} (recipe)", registry=registry, model_only=True)


def weights_check(saved: ckpt.Checkpoint, file: Path) -> Callable[[str, torch.nn.Module], None]:
    """For build(): a network's tensors in ``saved`` against the recipe's network, on the
    meta device, so an embedded recipe edited to other sizes fails before it allocates."""

    def check(name: str, network: torch.nn.Module) -> None:
        state = saved.network(name)
        if state:  # one the file lacks is the method's to judge once built (load_networks)
            check_network(network, state, name, file)

    return check


def load_networks(components, saved: ckpt.Checkpoint) -> frozenset[str]:
    """Load a checkpoint's weights into built components, ready for inference; returns
    the networks it does not hold that the method can do without."""
    missing = set()
    for name, network in components.method.networks().items():
        state = saved.network(name)
        if not state and name not in components.method.inference_networks:
            missing.add(name)  # e.g. an imported generator without its discriminator
            continue
        load_network(network, state, name, saved.path)
        network.to(components.device).eval()
    return frozenset(missing)
