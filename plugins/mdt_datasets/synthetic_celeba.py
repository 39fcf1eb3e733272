"""Harder synthetic faces, written in CelebA's layout, whose true translations are known.

The first synthetic set (``synthetic_faces``) changes hair colour, glasses and a smile:
local, high-contrast changes that an attention mask can confine. These faces carry the
paper's own CelebA attributes instead, two of them global and subtle:

- three exclusive hair colours (``Black_Hair``, ``Blond_Hair``, ``Brown_Hair``);
- ``Male``: a wider, squarer jaw and neck, thick eyebrows, sideburns and stubble over the
  lower face, paler lips;
- ``Young`` (or not): smooth skin with a blush, against wrinkled forehead, crow's feet,
  folds from nose to mouth, bags under the eyes, a heavier jaw, duller skin, greying hair.

Each face also varies in what no attribute names: position, scale, roll and yaw, skin
tone, eye size, long or short hair, a shirt, and a background of random stripes and plaids. Everything is
drawn from a per-face seed *before* the attributes are applied, so the same face with
other attributes (its counterfactual) is exactly the same picture wherever the
attributes do not reach.

The faces are written once into ``root`` as CelebA publishes its aligned set
(``img_align_celeba/000001.png``, 178x218; ``list_attr_celeba.txt``;
``list_landmarks_align_celeba.txt``), PNG rather than JPEG so that the files hold exactly
what was drawn, and read back by the ``celeba`` loader's own code: ``stargan_celeba.toml``
trains on the folder with only its ``root`` changed.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mdt.align import FacePoints
from mdt.errors import MdtError
from mdt.images import crop_and_resize
from mdt.labels import LabelSchema
from mdt.ranges import Count, Positive
from mdt.writing import remove_stale_scratch, scratch_folder, staged_as, swap_in
from mdt_datasets.celeba import ALIGNED_SIZE, DEFAULT_ATTRIBUTES, LANDMARK_FILE, CelebA, celeba_framing
from mdt_datasets.files import Split

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
ATTRIBUTES = (*HAIR, "Male", "Young")
HAIR_RGB = torch.tensor([[0.09, 0.07, 0.06], [0.93, 0.80, 0.42], [0.42, 0.24, 0.11]])
DRAWING = 2  # the drawing's version: a folder drawn by another version is not these faces
EXPRESSION_DRAWING = 1  # the expressions' (neutral is DRAWING's): synthetic_rafd's folders record it
MANIFEST = "synthetic_celeba.json"
IMAGES, ATTRIBUTE_FILE = "img_align_celeba", "list_attr_celeba.txt"
WIDTH, HEIGHT = ALIGNED_SIZE
EYE, NOSE, MOUTH = (0.24, -0.08), (0.0, 0.2), (0.11, 0.45)  # in the face's own frame (x right, y down)


@dataclass(frozen=True)
class Expression:
    """How an expression moves the features, in the face's own frame; all zero (one for
    ``eyes``) is the neutral face, drawn exactly as a face without an expression."""

    brow_lift: float = 0.0  # eyebrows up (> 0) or down
    brow_slant: float = 0.0  # their inner ends up (> 0: worry, sadness) or down (< 0: anger)
    eyes: float = 1.0  # the eyes' opening, times the neutral one
    smile: float = 0.0  # the mouth's corners up (> 0) or down
    mouth_open: float = 0.0  # half the height of the open mouth
    mouth_width: float = 0.0  # wider (> 0) or pressed narrower
    smirk: float = 0.0  # one corner (the face's right) raised: contempt
    nose_wrinkle: bool = False  # lines across the bridge of the nose: disgust


# RaFD's eight expressions (the official StarGAN's folder names), drawn on these faces so
# that a CelebA face given a RaFD expression has a true translation (joint training).
EXPRESSIONS = {
    "angry": Expression(brow_lift=-0.03, brow_slant=-0.07, eyes=0.8, smile=-0.5, mouth_width=-0.05),
    "contemptuous": Expression(smirk=0.06),
    "disgusted": Expression(brow_lift=-0.02, brow_slant=-0.03, eyes=0.75, smile=-0.9, mouth_open=0.015, nose_wrinkle=True),
    "fearful": Expression(brow_lift=0.04, brow_slant=0.05, eyes=1.35, smile=-0.6, mouth_open=0.03, mouth_width=0.04),
    "happy": Expression(eyes=0.85, smile=2.2, mouth_open=0.025, mouth_width=0.05),
    "neutral": Expression(),
    "sad": Expression(brow_slant=0.05, eyes=0.9, smile=-1.6),
    "surprised": Expression(brow_lift=0.07, eyes=1.4, mouth_open=0.075, mouth_width=-0.06),
}


def draw_parameters(seed: int) -> dict[str, torch.Tensor]:
    """Everything about one face that no attribute decides, from its seed, in a fixed order."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float, shape=()) -> torch.Tensor:
        return low + (high - low) * torch.rand(shape, generator=generator)

    return {
        "centre": uniform(-0.09, 0.09, (2,)),
        "scale": uniform(0.84, 1.06),
        "roll": uniform(-0.24, 0.24),  # radians: about 14 degrees either way
        "yaw": uniform(-0.3, 0.3),
        "tone": uniform(0.0, 1.0),
        "brightness": uniform(0.9, 1.05),
        "hair_gain": uniform(0.85, 1.1),
        "fringe": uniform(-0.06, 0.08),
        "long_hair": uniform(0.0, 1.0) < 0.5,
        "eye_size": uniform(0.85, 1.15),
        "iris": uniform(0.0, 1.0, (3,)) * torch.tensor([0.35, 0.3, 0.35]),
        "shirt": uniform(0.1, 0.9, (3,)),
        "background": uniform(0.15, 0.85, (3,)),
        "waves": uniform(0.0, 1.0, (3, 4)),  # per wave: frequency, angle, phase, strength
        "wave_colours": uniform(-1.0, 1.0, (3, 3)),
        "wrinkles": uniform(-0.02, 0.02, (4,)),
        "stubble": torch.randn((1, 1, 24, 20), generator=generator),
    }


def _grid(parameters: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Canvas coordinates (x, y: half the width is 1, y down) and the face's own frame."""
    columns = (torch.arange(WIDTH) + 0.5 - WIDTH / 2) / (WIDTH / 2)
    rows = (torch.arange(HEIGHT) + 0.5 - HEIGHT / 2) / (WIDTH / 2)
    y, x = torch.meshgrid(rows, columns, indexing="ij")
    u, v = x - parameters["centre"][0], y - parameters["centre"][1]
    cos, sin = math.cos(float(parameters["roll"])), math.sin(float(parameters["roll"]))
    scale = float(parameters["scale"])
    return x, y, (u * cos + v * sin) / scale, (-u * sin + v * cos) / scale


def _paint(image: torch.Tensor, where: torch.Tensor, colour: torch.Tensor, opacity: float | torch.Tensor = 1.0) -> None:
    image.mul_(1 - where * opacity).add_(where * opacity * colour.view(3, 1, 1))


def _band(distance: torch.Tensor, half_width: float) -> torch.Tensor:
    return (distance.abs() < half_width).float()


@dataclass
class _Face:
    """One face being drawn: its frames, colours and attributes."""

    parameters: dict[str, torch.Tensor]
    male: bool
    young: bool
    X: torch.Tensor  # the canvas
    Y: torch.Tensor
    x: torch.Tensor  # the face's own frame
    y: torch.Tensor
    fx: torch.Tensor  # x for the eyes, nose and mouth: they turn further than the outline
    ox: torch.Tensor  # x for the outline, hair and neck
    skin: torch.Tensor
    hair: torch.Tensor
    half_width: float
    expression: Expression


def _face(hair: int, male: bool, young: bool, parameters: dict[str, torch.Tensor], expression: str) -> _Face:
    X, Y, x, y = _grid(parameters)
    yaw = float(parameters["yaw"])
    light, dark = torch.tensor([0.96, 0.80, 0.68]), torch.tensor([0.47, 0.31, 0.21])
    skin = torch.lerp(light, dark, parameters["tone"]) * parameters["brightness"]
    hair_rgb = HAIR_RGB[hair] * parameters["hair_gain"]
    if not young:  # duller, a little darker skin; greying hair
        skin = 0.93 * (0.8 * skin + 0.2 * skin.mean())
        hair_rgb = 0.75 * hair_rgb + 0.25 * torch.tensor([0.62, 0.62, 0.62])
    ox = (x - 0.06 * yaw) / (1 - 0.15 * abs(yaw))
    half_width = 0.63 if male else 0.56
    return _Face(parameters, male, young, X, Y, x, y, x - 0.18 * yaw, ox, skin, hair_rgb.clamp(0, 1), half_width, EXPRESSIONS[expression])


def _background(face: _Face) -> torch.Tensor:
    """A plain colour under three sine gratings of random frequency, angle and colour:
    stripes and plaids."""
    image = face.parameters["background"].view(3, 1, 1).expand(3, HEIGHT, WIDTH).clone()
    for (frequency, angle, phase, strength), colour in zip(face.parameters["waves"], face.parameters["wave_colours"], strict=True):
        theta = float(angle) * math.pi
        along = face.X * math.cos(theta) + face.Y * math.sin(theta)
        wave = torch.sin(math.pi * (1.5 + 7 * float(frequency)) * along + 2 * math.pi * float(phase))
        image += (0.04 + 0.12 * float(strength)) * wave * colour.view(3, 1, 1)
    return image.clamp_(0, 1)


def _head(image: torch.Tensor, face: _Face) -> torch.Tensor:
    """Long hair (for half the faces, whatever their sex), shoulders, neck and the face's skin; returns the face's mask.
    A man's jaw is wider and squarer, an older face's lower half heavier."""
    y, ox = face.y, face.ox
    jaw_width = face.half_width + (0.0 if face.young else 0.04)
    chin = (0.84 if face.male else 0.8) + (0.0 if face.young else 0.03)
    power = 3.2 if face.male else 2.0
    upper = (ox / face.half_width) ** 2 + (y / 0.74) ** 2
    lower = (ox / jaw_width).abs() ** power + (y / chin).abs() ** power
    skin = (torch.where(y < 0, upper, lower) < 1).float()
    if face.parameters["long_hair"]:  # behind the face and falling past it
        _paint(image, ((((ox / 0.8) ** 2 + ((y - 0.05) / 1.05) ** 2) < 1) & (y < 0.95)).float(), face.hair)
    _paint(image, (((face.x / 1.35) ** 2 + ((y - 1.62) / 0.62) ** 2) < 1).float(), face.parameters["shirt"])
    _paint(image, ((ox.abs() < (0.31 if face.male else 0.24)) & (y > 0.3) & (y < 1.2)).float(), face.skin * 0.88)
    _paint(image, skin, face.skin)
    return skin


def _age(image: torch.Tensor, face: _Face, skin: torch.Tensor) -> None:
    """A young face's blush, or an older one's wrinkles: forehead lines, crow's feet, folds
    from nose to mouth, bags under the eyes."""
    y, fx = face.y, face.fx
    if face.young:
        blush = torch.exp(-(((fx.abs() - 0.3) / 0.1) ** 2 + ((y - 0.18) / 0.07) ** 2))
        _paint(image, skin * blush, torch.tensor([0.9, 0.45, 0.45]), 0.25)
        return
    jitter = face.parameters["wrinkles"]
    forehead = sum(_band(y + 0.5 - 0.09 * k - 0.12 * fx**2 - jitter[k], 0.016) for k in range(3)) * (fx.abs() < 0.36).float()
    corners = (fx.abs() - 0.4).clamp(min=0)
    crows_feet = sum(_band(y + 0.08 - (k - 1) * 3.0 * corners, 0.014) for k in range(3)) * ((fx.abs() > 0.38) & (fx.abs() < 0.48)).float()
    fold = _band(fx.abs() - 0.13 - 0.35 * (y - 0.16) - jitter[3], 0.016) * ((y > 0.16) & (y < 0.46)).float()
    bags = _band(((fx.abs() - EYE[0]) / 0.11) ** 2 + (y / 0.04) ** 2 - 1, 0.35) * (y > 0.0).float()
    _paint(image, (forehead + crows_feet + fold + bags).clamp(max=1) * skin, face.skin * 0.6, 0.8)


def _stubble(image: torch.Tensor, face: _Face, skin: torch.Tensor) -> None:
    """A man's stubble over the jaw, chin and upper lip, of a density that varies smoothly."""
    density = torch.nn.functional.interpolate(face.parameters["stubble"], size=(HEIGHT, WIDTH), mode="bilinear", align_corners=False)[0, 0]
    lower = ((face.y > 0.2) | ((face.y > 0.34) & (face.fx.abs() < 0.2))).float() * skin
    _paint(image, lower, face.hair * 0.6 + 0.1, (0.25 + 0.05 * density).clamp(0, 1))


def _features(image: torch.Tensor, face: _Face, skin: torch.Tensor) -> None:
    """Eyes (larger when young), eyebrows (thicker for a man), nose and lips (paler for a
    man), as the face's expression moves them."""
    y, fx, expression = face.y, face.fx, face.expression
    eye_size = float(face.parameters["eye_size"]) * (1.1 if face.young else 0.95)
    whites = (((fx.abs() - EYE[0]) / (0.1 * eye_size)) ** 2 + ((y - EYE[1]) / (0.045 * eye_size * expression.eyes)) ** 2 < 1).float()
    iris = (((fx.abs() - EYE[0]) ** 2 + (y - EYE[1]) ** 2) < (0.034 * eye_size) ** 2).float()
    if expression.eyes < 1:  # lids lowered over the iris
        iris = iris * whites
    _paint(image, whites * skin, torch.tensor([0.95, 0.95, 0.93]))
    _paint(image, iris * skin, face.parameters["iris"])
    brow_height = EYE[1] - 0.12 + (0.02 if face.male else 0.0) - expression.brow_lift
    along = fx.abs() - EYE[0]  # < 0 towards the nose
    arch = y - brow_height + along**2 - expression.brow_slant * along / 0.12
    brow = _band(arch, 0.035 if face.male else 0.018) * (along.abs() < 0.12).float()
    _paint(image, brow * skin, face.hair * 0.7)
    nose = _band(fx - 0.03, 0.012) * ((y > NOSE[1] - 0.22) & (y < NOSE[1] + 0.03)).float()
    nostrils = _band(((fx.abs() - 0.05) / 0.035) ** 2 + ((y - NOSE[1] - 0.04) / 0.02) ** 2 - 1, 0.6)
    _paint(image, (nose + nostrils).clamp(max=1) * skin, face.skin * 0.7)
    if expression.nose_wrinkle:
        lines = sum(_band(y - NOSE[1] + 0.2 - 0.035 * k, 0.008) for k in range(3)) * ((fx - 0.03).abs() < 0.07).float()
        _paint(image, lines * skin, face.skin * 0.6)
    curve = y - MOUTH[1] + (0.6 + expression.smile) * fx**2 + expression.smirk * (fx.clamp(min=0) / 0.2) ** 2
    lips = _band(curve, 0.035 if face.male else 0.05) * (fx.abs() < 0.2 + expression.mouth_width).float()
    _paint(image, lips * skin, torch.tensor([0.62, 0.36, 0.34]) if face.male else torch.tensor([0.8, 0.22, 0.3]))
    if expression.mouth_open > 0:
        inside = ((fx / (0.15 + expression.mouth_width)) ** 2 + (curve / expression.mouth_open) ** 2 < 1).float()
        _paint(image, inside * skin, torch.tensor([0.3, 0.08, 0.1]))


def _hair_on_top(image: torch.Tensor, face: _Face) -> None:
    """The hair over the forehead, with strands; a man's sideburns."""
    y, ox = face.y, face.ox
    cap = ((((ox / (face.half_width + 0.1)) ** 2 + ((y + 0.08) / 0.86) ** 2) < 1) & (y < -0.42 + face.parameters["fringe"])).float()
    _paint(image, cap, face.hair)
    image.mul_(1 - cap * (1 - (1 + 0.08 * torch.sin(60 * ox + 6 * y))))
    if face.male:
        sideburns = (ox.abs() > face.half_width - 0.07) & (ox.abs() < face.half_width + 0.02) & (y > -0.45) & (y < -0.05)
        _paint(image, sideburns.float(), face.hair)


def draw_celeba_face(hair: int, male: bool, young: bool, parameters: dict[str, torch.Tensor], expression: str = "neutral") -> torch.Tensor:
    """A (3, 218, 178) float image in [0, 1]: the face of ``parameters`` with these
    attributes and one of :data:`EXPRESSIONS`."""
    face = _face(hair, male, young, parameters, expression)
    image = _background(face)
    skin = _head(image, face)
    _age(image, face, skin)
    if male:
        _stubble(image, face, skin)
    _features(image, face, skin)
    _hair_on_top(image, face)
    return image.clamp(0, 1)


def landmarks(parameters: dict[str, torch.Tensor]) -> list[float]:
    """Eyes, nose and mouth corners of the face in pixels of the 178x218 picture (CelebA's
    landmark order: left eye, right eye, nose, left mouth corner, right mouth corner)."""
    yaw, scale = float(parameters["yaw"]), float(parameters["scale"])
    cos, sin = math.cos(float(parameters["roll"])), math.sin(float(parameters["roll"]))
    points = []
    for fx, fy in ((-EYE[0], EYE[1]), (EYE[0], EYE[1]), NOSE, (-MOUTH[0], MOUTH[1]), (MOUTH[0], MOUTH[1])):
        u, v = (fx + 0.18 * yaw) * scale, fy * scale
        x, y = u * cos - v * sin + float(parameters["centre"][0]), u * sin + v * cos + float(parameters["centre"][1])
        points += [x * WIDTH / 2 + WIDTH / 2 - 0.5, y * WIDTH / 2 + HEIGHT / 2 - 0.5]
    return points


def face_seed(seed: int, number: int) -> int:
    return seed * 10_000_019 + number


def face_attributes(seed: int, number: int) -> tuple[int, bool, bool]:
    """Hair colour (index into HAIR), male, young: drawn apart from the face's parameters."""
    generator = torch.Generator().manual_seed(face_seed(seed, number) + 7_777_777)
    hair = int(torch.randint(0, 3, (), generator=generator))
    male, young = (bool(v < 0.5) for v in torch.rand(2, generator=generator))
    return hair, male, young


LABELS = (*ATTRIBUTES, *EXPRESSIONS)  # every label a face of this model can be drawn with


@dataclass(frozen=True)
class FaceLabels:
    """What labels decide of a face: its hair colour (index into HAIR), sex, age and expression."""

    hair: int
    male: bool
    young: bool
    expression: str = "neutral"

    def draw(self, parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        return draw_celeba_face(self.hair, self.male, self.young, parameters, self.expression)

    def with_labels(self, names: Sequence[str], values: torch.Tensor) -> FaceLabels:
        """These labels (1 wanted, 0 not; names from :data:`LABELS`) set, the rest kept: a
        hair colour or an expression named 1 replaces the face's own."""
        wanted = dict(zip(names, (float(v) > 0.5 for v in values), strict=True))
        hair = [i for i, name in enumerate(HAIR) if wanted.get(name)]
        expression = [name for name in EXPRESSIONS if wanted.get(name)]
        return FaceLabels(
            hair[0] if hair else self.hair,
            wanted.get("Male", self.male),
            wanted.get("Young", self.young),
            expression[0] if expression else self.expression,
        )


def redrawn(stored: Path, own: FaceLabels, other: FaceLabels, parameters: dict[str, torch.Tensor]) -> Image.Image:
    """The face stored at ``stored`` (drawn with ``own``) as ``other`` draws it: the stored
    file wherever the two drawings agree, so that the face's own labels give back the very
    file even where another machine's arithmetic would draw an edge a pixel over."""
    with Image.open(stored) as opened:
        kept = np.asarray(opened.convert("RGB"))
    if other == own:
        return Image.fromarray(kept)
    before, after = as_uint8(own.draw(parameters)), as_uint8(other.draw(parameters))
    return Image.fromarray(np.where((before == after).all(axis=2, keepdims=True), kept, after))


def as_uint8(image: torch.Tensor) -> np.ndarray:
    return (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def file_name(number: int) -> str:
    return f"{number + 1:06d}.png"


def write_drawn_folder(root: Path, manifest: str, about: dict, fill: Callable[[Path], None]) -> None:
    """A folder of drawn files at ``root``: ``fill`` writes them into a scratch folder
    beside it, which is put in place in one step with its manifest ``about``, so that a
    kill leaves no half-written set."""
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(root, lambda line: None)
    ready = scratch_folder(root)
    try:
        with staged_as(ready, root):
            fill(ready)
            (ready / manifest).write_text(json.dumps(about) + "\n", encoding="utf-8")
        swap_in(ready, root, replace=False)
    finally:
        shutil.rmtree(ready, ignore_errors=True)


def ensure_drawn(root: Path, manifest: str, about: dict, fill: Callable[[Path], None], kind: str) -> None:
    """The folder ``about`` describes at ``root``, drawn there by ``fill`` first if it is
    not; a folder that holds anything else is refused, never overwritten."""
    remove_stale_scratch(root, lambda line: None)  # a drawing killed while another finished
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        with contextlib.suppress(MdtError):  # another process drew it meanwhile: checked below like any folder
            write_drawn_folder(root, manifest, about, fill)
    path = root / manifest
    if not path.is_file():
        raise MdtError(f"root '{root}' is not a folder of {kind} faces (it has no {manifest}); give a new or empty folder")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MdtError(f"cannot read '{path}': {exc}") from None
    if not isinstance(found, dict):
        raise MdtError(f"'{path}' is not a {kind} manifest (a JSON object); give another root")
    if found != about:
        held = ", ".join(f"{key} {found.get(key)}" for key in about)
        asked = ", ".join(f"{key} {value}" for key, value in about.items())
        raise MdtError(f"'{root}' holds faces of {held}; this recipe asks for {asked}: give another root")


def _fill_celeba_layout(count: int, seed: int) -> Callable[[Path], None]:
    """What writes ``count`` faces in CelebA's layout into a folder."""

    def fill(ready: Path) -> None:
        (ready / IMAGES).mkdir()
        rows, points = [], []
        for number in range(count):
            hair, male, young = face_attributes(seed, number)
            parameters = draw_parameters(face_seed(seed, number))
            picture = Image.fromarray(as_uint8(draw_celeba_face(hair, male, young, parameters)))
            picture.save(ready / IMAGES / file_name(number), compress_level=3)
            values = [i == hair for i in range(3)] + [male, young]
            rows.append(f"{file_name(number)} " + " ".join(" 1" if v else "-1" for v in values))
            points.append(f"{file_name(number)} " + " ".join(f"{round(p)}" for p in landmarks(parameters)))
        (ready / ATTRIBUTE_FILE).write_text(f"{count}\n{' '.join(ATTRIBUTES)}\n" + "\n".join(rows) + "\n", encoding="utf-8")
        header = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
        (ready / LANDMARK_FILE).write_text(f"{count}\n{header}\n" + "\n".join(points) + "\n", encoding="utf-8")

    return fill


def write_celeba_layout(root: Path, count: int, seed: int) -> None:
    """``count`` faces into ``root`` in CelebA's layout (see :func:`write_drawn_folder`)."""
    write_drawn_folder(root, MANIFEST, {"drawing": DRAWING, "seed": seed, "count": count}, _fill_celeba_layout(count, seed))


def ensure_faces(root: Path, count: int, seed: int) -> None:
    """The folder of ``count`` faces of ``seed`` at ``root`` (see :func:`ensure_drawn`)."""
    about = {"drawing": DRAWING, "seed": seed, "count": count}
    ensure_drawn(root, MANIFEST, about, _fill_celeba_layout(count, seed), "synthetic_celeba")


def synthetic_celeba_framing(table) -> FacePoints:
    return celeba_framing({"root": SyntheticCelebA.default_root, **table})


class OnFaceModel:
    """A dataset drawn on this module's face model (``synthetic_celeba``, ``synthetic_rafd``):
    its faces can be drawn with the labels of any other such dataset (a RaFD expression on
    a CelebA face), which no other dataset's labels promise even where their names agree."""

    def draws(self, other: object) -> bool:
        """Whether ``counterfactual(index, label, names)`` can draw ``other``'s labels here."""
        return isinstance(other, OnFaceModel)


class SyntheticCelebA(OnFaceModel, CelebA):
    """Synthetic faces with CelebA's hair colours, Male and Young, in CelebA's layout (drawn into ``root`` on first use)."""

    default_root = "data/synthetic_celeba"
    terms = "drawn by mdt: no third party's terms"
    shows_people = False
    framing = staticmethod(synthetic_celeba_framing)  # for mdt align

    def __init__(
        self,
        split: Split,
        image_size: int,
        root: str = default_root,
        attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
        size: Positive = 6000,
        test_size: Positive = 256,
        seed: Count = 0,
        crop_size: Count = 178,
    ) -> None:
        named = [name for name in attributes if name in HAIR]
        if len(named) == 1:  # a lone hair colour is flipped: taken away, which colour would the face get?
            raise MdtError(f"attributes name one hair colour ({named[0]}); name two or all three of {', '.join(HAIR)}, or none")
        ensure_faces(Path(root), size + test_size, seed)
        self.seed = seed
        super().__init__(root, split, image_size, attributes, crop_size, test_size)
        self.attributes = tuple(attributes)
        if set(self.attributes) == set(HAIR):  # every face has one of the three: one domain per image (StarGAN v2)
            self.schema = LabelSchema("celeba", self.attributes, (), categorical=True)

    def counterfactual(self, index: int, label: torch.Tensor, names: Sequence[str] | None = None) -> torch.Tensor:
        """Item ``index`` as it would be drawn with ``label`` (in this dataset's attribute
        order, or of ``names``: another dataset's labels this face model draws, as a RaFD
        expression): the same face, pose and background, other attributes; cropped and
        resized as the item is. Its true translation, for the counterfactual metric."""
        number = int(self.files[index].stem) - 1
        own = FaceLabels(*face_attributes(self.seed, number))
        other = own.with_labels(self.attributes if names is None else names, label)
        drawn = redrawn(self.files[index], own, other, draw_parameters(face_seed(self.seed, number)))
        return crop_and_resize(drawn, self.crop_size, (self.sample.height, self.sample.width), channels=self.sample.channels)
