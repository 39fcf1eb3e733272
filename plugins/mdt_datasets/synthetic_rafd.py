"""Synthetic people in RaFD's eight expressions, on ``synthetic_celeba``'s face model.

StarGAN's joint training (CelebA + RaFD, the mask vector) applies RaFD's expressions to
CelebA's faces. With both sets drawn from one face model, such a translation has a true
answer: the CelebA face drawn with that expression (``synthetic_celeba``'s
``counterfactual`` with RaFD's labels), and a RaFD face given a CelebA hair colour is the
same person drawn with it.

Like RaFD, every person is photographed in every expression, facing the camera in front
of a plain light backdrop; people's hair, sex and age vary as CelebA's do but are not
labelled. The pictures are written once into ``root`` in the layout the ``rafd`` loader
reads (``train/<expression>/`` and ``test/<expression>/``, held-out people apart from
the training ones), named ``<person>_<expression>.png``, PNG so that the files hold
exactly what was drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from mdt.errors import MdtError
from mdt.images import crop_and_resize
from mdt.ranges import Count, Positive
from mdt_datasets.files import Split
from mdt_datasets.folders import RAFD_EXPRESSIONS, DomainFolders
from mdt_datasets.synthetic_celeba import (
    DRAWING,
    EXPRESSION_DRAWING,
    FaceLabels,
    OnFaceModel,
    as_uint8,
    draw_parameters,
    ensure_drawn,
    face_attributes,
    face_seed,
    redrawn,
)

MANIFEST = "synthetic_rafd.json"
FIRST_PERSON = 5_000_000  # people are drawn from face numbers apart from synthetic_celeba's
BACKDROP = 0.93
STUDIO = 1  # the version of studio_parameters: a folder drawn by another is not these people


def studio_parameters(seed: int, person: int) -> dict[str, torch.Tensor]:
    """A person's face as RaFD photographs it: the face model's own drawing, turned to face
    the camera, upright and centred, in front of a plain light backdrop."""
    parameters = draw_parameters(face_seed(seed, FIRST_PERSON + person))
    parameters["centre"] = parameters["centre"] * 0.25
    parameters["roll"] = torch.tensor(0.0)
    parameters["yaw"] = torch.tensor(0.0)
    parameters["background"] = torch.full((3,), BACKDROP)
    parameters["wave_colours"] = torch.zeros(3, 3)  # no stripes or plaids
    return parameters


def person_labels(seed: int, person: int, expression: str) -> FaceLabels:
    return FaceLabels(*face_attributes(seed, FIRST_PERSON + person), expression)


def file_name(person: int, expression: str) -> str:
    return f"{person + 1:05d}_{expression}.png"


def _fill_rafd_layout(people: int, test_people: int, seed: int) -> Callable[[Path], None]:
    """What writes every person in every expression, the last ``test_people`` under test/."""

    def fill(ready: Path) -> None:
        for person in range(people + test_people):
            split = "train" if person < people else "test"
            parameters = studio_parameters(seed, person)
            for expression in RAFD_EXPRESSIONS:
                folder = ready / split / expression
                folder.mkdir(parents=True, exist_ok=True)
                picture = Image.fromarray(as_uint8(person_labels(seed, person, expression).draw(parameters)))
                picture.save(folder / file_name(person, expression), compress_level=3)

    return fill


class SyntheticRaFD(OnFaceModel, DomainFolders):
    """Synthetic people in RaFD's eight expressions, in RaFD's layout (drawn into ``root``
    on first use), on the face model of ``synthetic_celeba``."""

    default_name = "rafd"
    default_root = "data/synthetic_rafd"
    terms = "drawn by mdt: no third party's terms"
    shows_people = False

    def __init__(
        self,
        split: Split,
        image_size: int,
        root: str = default_root,
        expressions: Sequence[str] = RAFD_EXPRESSIONS,
        people: Positive = 600,
        test_people: Positive = 32,
        seed: Count = 0,
        crop_size: Count = 178,
    ) -> None:
        unknown = [e for e in expressions if e not in RAFD_EXPRESSIONS]
        if unknown:
            raise MdtError(f"expression '{unknown[0]}' is not one of RaFD's: {', '.join(RAFD_EXPRESSIONS)}")
        about = {
            "drawing": DRAWING,
            "expressions": EXPRESSION_DRAWING,
            "studio": STUDIO,
            "seed": seed,
            "people": people,
            "test_people": test_people,
        }
        ensure_drawn(Path(root), MANIFEST, about, _fill_rafd_layout(people, test_people, seed), "synthetic_rafd")
        self.seed = seed
        super().__init__(root, split, image_size, expressions, crop_size)

    def counterfactual(self, index: int, label: torch.Tensor, names: Sequence[str] | None = None) -> torch.Tensor:
        """Item ``index`` as it would be drawn with ``label`` (this dataset's expressions, or
        ``names``: another dataset's labels this face model draws, as CelebA's hair
        colours): the same person, another expression or look; cropped and resized as the
        item is. Its true translation, for the counterfactual metric."""
        path = self.files[index]
        number, expression = path.stem.split("_", 1)
        person = int(number) - 1
        own = person_labels(self.seed, person, expression)
        other = own.with_labels(self.schema.names if names is None else names, label)
        drawn = redrawn(path, own, other, studio_parameters(self.seed, person))
        return crop_and_resize(drawn, self.crop_size, (self.sample.height, self.sample.width), channels=self.sample.channels)
