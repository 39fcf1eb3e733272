"""Every interface mdt calls on a plugin's components, declared in one place.

A component is registered as a class that subclasses its kind's base below (a plugin's
own kinds, which its method's roles name, are kinds of :class:`Network`). Each base lists
every hook mdt may call, with its default, so a plugin overrides what applies to it and
mdt calls the rest directly: nothing is looked up by name, nothing is optional in a way
only the source would tell. The registry refuses a class that does not subclass its
kind's base (:data:`KIND_BASES`), naming the base.

Every base derives from :class:`mdt.component.Component`: ``requires`` (the Python
packages it needs) and ``arguments_problem(values)`` (arguments that cannot work
together), asked before anything is built.

==============  ==============================================  ======================
kind            base                                            defined in
==============  ==============================================  ======================
dataset         :class:`Dataset`                                here
label_encoder   :class:`mdt.labels.LabelEncoder`                mdt/labels.py
augmentation    :class:`Augmentation`                           here
generator,      :class:`Network` (and every kind a plugin       here
discriminator   declares)
loss            :class:`mdt.loss.Loss`                          mdt/loss.py
method          :class:`mdt.method.Method` (and its             mdt/method.py
                :class:`~mdt.method.Translator`)
metric          :class:`Metric`                                 here
classifier      :class:`Classifier`                             here
sampler         :class:`Sampler`                                here
logger          :class:`mdt.loggers.Logger`                     mdt/loggers.py
modality        :class:`Modality`                               here
==============  ==============================================  ======================

``importer`` (a click command) and ``landmarks`` (a detector class called with a
weights file, then with a picture) are called, never inspected, and have no base.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
from PIL import Image

from mdt.component import Component
from mdt.labels import LabelEncoder, LabelSchema
from mdt.loggers import Logger
from mdt.loss import Loss
from mdt.method import Method, Role, Translator
from mdt.samples import SampleSpec, square_images

if TYPE_CHECKING:
    from mdt.align import FacePoints
    from mdt.evaluation import Evaluation

__all__ = [
    "KIND_BASES",
    "NETWORK_BASE",
    "Augmentation",
    "Classifier",
    "Component",
    "Dataset",
    "LabelEncoder",
    "Logger",
    "Loss",
    "Method",
    "Metric",
    "Modality",
    "Network",
    "Role",
    "Sampler",
    "Translator",
    "base_of",
]


class Network(torch.nn.Module, Component):
    """A network a method's role builds. ``inputs`` and ``outputs`` name what its forward
    takes and returns, in order (``("images", "labels")``, ``("image", "mask", "color")``):
    ``mdt recipe check`` compares them with what the method gives and reads, export names
    the files' inputs and outputs after them, and a method reads an output by its name
    (:func:`mdt.method.output`). None: not declared (a method that names what it gives
    refuses such a network)."""

    inputs: ClassVar[tuple[str, ...] | None] = None
    outputs: ClassVar[tuple[str, ...] | None] = None

    #: What each input and output is, shape and range, in a phrase: exported files carry
    #: the entries of their own inputs and outputs (``mdt.meanings``) so that they can be
    #: called without mdt. A network adds its own: ``meanings = {**Network.meanings, ...}``.
    meanings: ClassVar[dict[str, str]] = {
        "images": "input samples (B, C, H, W) in [-1, 1]: RGB images unless the model's mdt.sample says otherwise",
        "image": "output samples (B, C, H, W) in [-1, 1], of the inputs' shape",
        "labels": "the condition (B, C) the generator is given: entry i is the target value of the label "
        "mdt.condition names at i (1 wanted, 0 not; a strength in [0, 1] for continuous labels)",
    }

    def example_inputs(self, known: Mapping[str, torch.Tensor]) -> tuple[Any, ...] | None:
        """Inputs to run it once on, for ``mdt recipe check`` and before a run allocates
        weights: ``known`` holds what mdt can make of the recipe (``images``: a batch of
        the datasets' samples; ``labels``: conditions; ``domains``: class indices), on
        torch's meta device. Default: those named by :attr:`inputs`, in order; None (not
        run) when an input is not among them. A network with inputs of its own (a style
        vector) overrides this and adds them, on ``known``'s device."""
        names = self.inputs or ()
        if not names or any(name not in known for name in names):
            return None
        return tuple(known[name] for name in names)


class Dataset(Component):
    """Samples and labels: ``dataset[i]`` is ``{"image": sample, "label": float (n,)}``,
    the sample as :meth:`samples` declares it (uint8 RGB (3, S, S) unless the dataset says
    otherwise; the key is "image" whatever the modality), or ``{"error": message}`` for a
    file that cannot be used (mdt/data.py)."""

    #: The labels' names and structure; the engine renames its ``dataset`` to the recipe's table name.
    schema: LabelSchema

    #: Whether ``dataset[i]`` is the same image each time (files, drawings from a fixed
    #: seed): only then may a run keep decoded images in its cache (mdt/cache.py).
    deterministic_items: ClassVar[bool] = False

    #: The data's terms of use in a sentence (its licence; who may use it, for what), for
    #: the model cards of models trained on it. Empty: the plugin cannot know them (a
    #: user's own folders), and the card asks the reader to check them.
    terms: ClassVar[str] = ""

    #: Whether its images are photographs of real people: model cards then add a note on
    #: misuse (impersonation, consent).
    shows_people: ClassVar[bool] = False

    #: Every item's labels (N, n) without decoding an image, where the dataset can tell
    #: them up front: class-balanced samplers and the image cache need them. None: unknown.
    labels: torch.Tensor | None = None

    @classmethod
    def samples(cls, arguments: Mapping[str, Any], image_size: int) -> SampleSpec:
        """What its items' samples are, from its recipe table's ``arguments`` (defaults
        filled in) and ``[run] image_size``, without reading any data: ``mdt recipe check``
        and ``mdt translate`` ask it where no data is. Default: RGB images of that side."""
        return square_images(image_size)

    def statistics(self) -> dict[str, torch.Tensor]:
        """Tensors a model keeps of its training data, to translate without it (speech's
        per-speaker feature statistics), asked of the training split: saved in every
        checkpoint as ``<dataset>/<key>`` and given to the modality. Default: none."""
        return {}

    @staticmethod
    def framing(table: Mapping[str, Any]) -> FacePoints | None:
        """Where this dataset's images put the eyes and mouth (``mdt align`` frames photos
        the same way), from its recipe ``table``; None: it has no faces to frame."""
        return None

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        raise NotImplementedError


class Augmentation(Component):
    """uint8 batches (B, 3, S, S) on the device -> float batches in [-1, 1]; random
    only when ``train``."""

    def __call__(self, images: torch.Tensor, train: bool = True) -> torch.Tensor:
        raise NotImplementedError


class Sampler(Component):
    """The order of a dataset's items: an iterable of batches of indices, starting from
    batch ``start`` so that a resumed run goes on where it stopped. Built as
    ``Sampler(dataset, batch_size, seed, start, rank, world_size, **options)``."""

    #: Whether a batch is a unit that must not be cut (StarGAN v2's reference pairs):
    #: then an unreadable file leaves its batch out rather than making it short.
    whole_batches: bool = False

    def __iter__(self) -> Iterator[list[int]]:
        raise NotImplementedError


class Metric(Component):
    """A measurement of ``mdt eval`` (and of a recipe's ``[metrics]``): ``{name: value}``
    from an :class:`mdt.evaluation.Evaluation`."""

    #: What its values are, for the report and model cards: by value name ("fid_mean") or
    #: by a part of one ("fid" for "fid/Black_Hair", "pair" for "pair/a->b"), whether a
    #: higher or lower value is better ("" for neither: a count, a name) and what it means
    #: in a line.
    meanings: ClassVar[dict[str, tuple[str, str]]] = {}

    #: Where its values are explained at length (a section of mdt's docs/evaluation.md).
    docs: ClassVar[str] = ""

    @classmethod
    def describe(cls, key: str) -> tuple[str, str]:
        """(better, meaning) of one of its values: the whole name's entry in
        :attr:`meanings`, else the first of its parts that has one; ("", "") for none."""
        for candidate in (key, *key.split("/")):
            if candidate in cls.meanings:
                return cls.meanings[candidate]
        return "", ""

    def prepare(self, evaluation: Evaluation) -> None:
        """Load what it needs (a weights file) before any metric runs, so that a bad file
        is reported before minutes of work."""

    def applies(self, translator: Translator) -> bool:
        """Whether it measures this translator's translations (diversity needs styles)."""
        return True

    def __call__(self, evaluation: Evaluation) -> dict[str, Any]:
        raise NotImplementedError


class Classifier(Component):
    """The judge of translations (``[classifier]``): trained on the real training images,
    it reads labels off images and gives features for FID where no Inception is given."""

    #: What its features are, named beside every number measured in them.
    feature_space: str = ""

    #: Training steps (per dataset), said when it trains.
    steps: int = 0

    def images_problem(self, image_size: int) -> str | None:
        """Why it cannot train on images of this size, or None (checked before a run trains)."""
        return None

    def fit(self, datasets: Sequence[Any], augmentation: Augmentation, device: torch.device) -> None:
        raise NotImplementedError

    def predict(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """Labels (B, n) of ``dataset`` read off images in [-1, 1]."""
        raise NotImplementedError

    def features(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """(B, F) features of images in [-1, 1]."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        raise NotImplementedError

    def to(self, device: torch.device) -> Classifier:
        raise NotImplementedError


class Modality(Component):
    """How files and people meet one kind of sample: the ``modality`` a dataset's samples
    name (:class:`mdt.samples.SampleSpec`; ``image`` is built in). ``mdt translate``
    reads its inputs and writes its outputs through it, and sample grids, reports and
    ``mdt serve`` show its samples with :meth:`preview`. Built with no arguments.

    What a file holds (``given``: a PIL image, a waveform with what its synthesis needs)
    is the modality's own business; mdt only passes it from :meth:`read` to
    :meth:`to_sample` and on to :meth:`from_sample`, which makes the output of a
    translated sample (speech keeps its input's aperiodicity, say)."""

    def __init__(self, sample: SampleSpec, statistics: Mapping[str, torch.Tensor] | None = None) -> None:
        """``sample``: the model's samples; ``statistics``: what the training datasets kept
        for translation (:meth:`Dataset.statistics`), by ``<dataset>/<key>``; from the
        checkpoint when a model translates."""
        self.sample = sample
        self.statistics = dict(statistics or {})

    #: File suffixes ``mdt translate`` reads (lower case, with the dot).
    suffixes: ClassVar[tuple[str, ...]] = ()

    #: The suffix of the files it writes.
    output_suffix: ClassVar[str] = ""

    #: What a file of it is, in a word or two, for messages ("image", "recording").
    noun: ClassVar[str] = "file"

    #: What its models do, as a Hugging Face pipeline tag ("image-to-image",
    #: "audio-to-audio"), for model cards.
    task: ClassVar[str] = ""

    #: How ``mdt serve``'s page takes an input and shows an output: ``"image"`` (a picture
    #: upload) or ``"audio"`` (an uploaded or recorded clip, and a player).
    page: ClassVar[Literal["image", "audio"]] = "image"

    def read(self, path: Path) -> Any:
        """A file as what :meth:`to_sample` takes; :class:`mdt.errors.MdtError` naming the
        file when it cannot be read."""
        raise NotImplementedError

    def to_sample(self, given: Any, crop_size: int = 0) -> torch.Tensor:
        """What :meth:`read` gave as a (C, H, W) float tensor in [-1, 1] of the model's
        samples' channels (and height and width, where a modality's inputs have a fixed
        size: a picture is cropped and resized to them; speech keeps its length)
        (``crop_size``: a centred crop of that side first, where the modality has one)."""
        raise NotImplementedError

    def from_sample(self, values: torch.Tensor, given: Any, request: Mapping[str, Any]) -> Any:
        """A translated sample (C, H, W) in [-1, 1] as what :meth:`write` writes, made with
        what the input it came from (``given``) holds besides its sample; ``request`` is
        what the translation was asked for (the translator's options: a speaker's voice
        takes that speaker's pitch)."""
        raise NotImplementedError

    def write(self, output: Any, path: Path, replace: bool = True) -> None:
        """Write an output of :meth:`from_sample`, whole or not at all (:mod:`mdt.writing`);
        with ``replace`` False, never over a file another process put there meanwhile."""
        raise NotImplementedError

    def preview(self, values: torch.Tensor) -> Image.Image:
        """A sample (C, H, W) in [-1, 1] as a picture for grids and reports: three channels
        as colour, any other number as grey."""
        from mdt.images import to_pil

        return to_pil(values)


#: The base a registered class of each kind subclasses.
KIND_BASES: dict[str, type] = {
    "dataset": Dataset,
    "label_encoder": LabelEncoder,
    "augmentation": Augmentation,
    "generator": Network,
    "discriminator": Network,
    "loss": Loss,
    "method": Method,
    "metric": Metric,
    "classifier": Classifier,
    "sampler": Sampler,
    "logger": Logger,
    "modality": Modality,
}
#: The base of a kind a plugin declares: its method's roles build networks of it.
NETWORK_BASE = Network
UNINSPECTED = ("importer", "landmarks")  # called, never inspected: any callable


def base_of(kind: str) -> type | None:
    """The base class a component of ``kind`` subclasses; None for a kind mdt only calls."""
    if kind in UNINSPECTED:
        return None
    return KIND_BASES.get(kind, NETWORK_BASE)
