"""Shared fixtures: a fresh plugin registry and tiny datasets in their real on-disk formats."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

# Only mdt's own plugins: whatever else is installed must not change the tests.
os.environ["MDT_DISABLE_PLUGIN_AUTOLOAD"] = "1"

import torch

from mdt.plugins import load_plugins

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parent.parent
CELEBA_NAMES = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
RAFD_EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")


@pytest.fixture(scope="session")
def registry():
    return load_plugins().registry


# Headless Chromium as the browser tests start it: no sandbox (root), no GPU, and none of the
# background connections that this machine's closed network refuses many times a second.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def text_pixels(text: str) -> int:
    """The width of ``text`` in PIL's default font (sample grids write with it), measured
    here rather than by mdt.grids."""
    import math

    from PIL import ImageFont

    return math.ceil(ImageFont.load_default().getlength(text))


def grid_width(titles: list[str], size: int = 32, pad: int = 2) -> int:
    """The width of a sample grid with these column titles: each column as wide as its
    image or as its title's longest word."""
    widest = [max(text_pixels(w) for w in title.replace("_", " ").split()) for title in titles]
    widths = [size if w <= size else w + 4 for w in widest]  # a widened column keeps its title 4 px from the next
    return sum(w + pad for w in widths) + pad


def random_image(path: Path, width: int, height: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(1, 1, 3))
    noise = rng.integers(-40, 40, size=(height, width, 3))
    array = np.clip(base + noise, 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_celeba(root: Path, count: int = 12) -> Path:
    """CelebA's layout: img_align_celeba/*.jpg (178x218) and list_attr_celeba.txt."""
    rng = np.random.default_rng(0)
    lines = [str(count), " ".join(CELEBA_NAMES)]
    for i in range(1, count + 1):
        name = f"{i:06d}.jpg"
        random_image(root / "img_align_celeba" / name, 178, 218, i)
        values = rng.choice([-1, 1], size=len(CELEBA_NAMES))
        hair = rng.integers(0, 3)
        for j, attr in enumerate(("Black_Hair", "Blond_Hair", "Brown_Hair")):
            values[CELEBA_NAMES.index(attr)] = 1 if j == hair else -1
        # The real file pads single-digit-width columns: one or two spaces between fields.
        cells = " ".join(f"{v:2d}" for v in values)
        lines.append(f"{name} {cells}")
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def write_rafd(root: Path, per_class: int = 2) -> Path:
    """The official StarGAN RaFD layout: train/<expression>/*.jpg and test/<expression>/*.jpg."""
    seed = 0
    for split in ("train", "test"):
        for expression in RAFD_EXPRESSIONS:
            for k in range(per_class):
                seed += 1
                random_image(root / split / expression / f"Rafd090_{k:02d}_{expression}.jpg", 256, 300, seed)
    return root


def write_domain_folders(root: Path, domains=("cat", "dog", "wild"), per_domain: int = 3, size: int = 40) -> Path:
    """AFHQ's and CelebA-HQ's layout: train/<domain>/*.jpg and val/<domain>/*.jpg."""
    seed = 100
    for split in ("train", "val"):
        for domain in domains:
            for k in range(per_domain):
                seed += 1
                random_image(root / split / domain / f"{split}_{domain}_{k:04d}.jpg", size, size, seed)
    return root


def write_intensities(root: Path, columns=("AU01_r", "AU12_r"), count: int = 8, csv_file: str = "aus_openface.csv") -> Path:
    """OpenFace's action-unit intensities as GANimation uses them: images and a CSV of
    ``file,AU01_r,...`` with values from 0 to 5."""
    rng = np.random.default_rng(3)
    rows = [",".join(["file", *columns])]
    for i in range(count):
        random_image(root / f"face_{i:03d}.jpg", 64, 64, 200 + i)
        rows.append(",".join([f"face_{i:03d}.jpg", *(f"{v:.2f}" for v in rng.uniform(0, 5, len(columns)))]))
    (root / csv_file).write_text("\n".join(rows) + "\n")
    return root


# Speech: harmonic tones written as real audio files (StarGAN-VC's datasets and tests).
RATE = 16000


def voice(f0: float, formant: float, seconds: float, seed: int) -> np.ndarray:
    """A voiced tone: harmonics of ``f0`` falling off as 1/k (as a glottal source does) and
    raised around one resonance at ``formant`` Hz, with a slow pitch wobble and a little
    noise, faded in and out."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.03 * np.sin(2 * math.pi * 3 * t))
    phase = 2 * math.pi * np.cumsum(pitch) / RATE
    wave = sum((1 / k + np.exp(-(((k * f0) - formant) ** 2) / (2 * 300.0**2))) * np.sin(k * phase) for k in range(1, 30))
    wave = wave / np.abs(wave).max() * 0.5 + 0.005 * rng.normal(size=t.shape)
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    return wave * fade


SPEAKERS = {"low": (110.0, 700.0), "high": (220.0, 1800.0)}


def write_speakers(root: Path, sentences: int = 4, suffix: str = ".wav", name=lambda speaker, k: f"{speaker}_{k:03d}") -> Path:
    import soundfile  # the audio extra's

    for s, (speaker, (f0, formant)) in enumerate(SPEAKERS.items()):
        folder = root / speaker
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(sentences):
            soundfile.write(str(folder / f"{name(speaker, k)}{suffix}"), voice(f0, formant, 0.6 + 0.05 * k, 10 * s + k), RATE)
    return root


def write_espeak_layout(root: Path) -> Path:
    """The espeak_speech corpus's layout with two tone speakers: sentences s001, s002 and
    the held-out s040, and sentences.txt (which marks the corpus as made)."""
    if not (root / "sentences.txt").is_file():
        write_speakers(root, sentences=3, name=lambda speaker, k: f"s{(1, 2, 40)[k]:03d}")
        (root / "sentences.txt").write_text("s001\tone\ns002\ttwo\ns040\tforty\n")
    return root


def write_vctk(root: Path) -> Path:
    """VCTK 0.92 as downloaded, two tone speakers, sentences 001-003 on two microphones."""
    if not (root / "speaker-info.txt").is_file():
        for mic in ("mic1", "mic2"):
            write_speakers(root / "wav48_silence_trimmed", sentences=3, suffix=".flac", name=lambda s, k, mic=mic: f"{s}_{k + 1:03d}_{mic}")
        (root / "speaker-info.txt").write_text(
            "ID  AGE  GENDER  ACCENTS  REGION COMMENTS\nlow  23  F  English  Southern\nhigh  22  M  Scottish  Fife\n"
        )
    return root


def measure_on(metric, items, translator, targets) -> dict:
    """``metric`` run on one held-out set ``items`` with ``translator``, the targets as the
    label encoder's ``(title, dataset, assignments)``, uint8 images read as [-1, 1]: a
    metric's arithmetic without a trained model."""
    from types import SimpleNamespace

    from mdt.evaluation import Evaluation

    components = SimpleNamespace(
        device=torch.device("cpu"),
        schemas=[items.schema],
        test_sets=[items],
        train_sets=[items],
        label_encoder=SimpleNamespace(targets=lambda: targets),
        augmentation=lambda x, train: x.float() / 127.5 - 1,
        method=SimpleNamespace(translator=lambda: translator),
    )
    return metric(Evaluation(components, make_classifier=None, classifier=object(), batch_size=4))


def install_package(package: Path, target: Path) -> dict[str, str]:
    """Install a plugin package for real (into ``target``, not the test's environment) and
    return the environment in which mdt finds it: third-party plugins autoloaded."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(package)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k != "MDT_DISABLE_PLUGIN_AUTOLOAD"}
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """A 2-iteration quickstart run with small networks and its judge, shared read-only
    by the tests that translate, export or share a trained model."""
    from mdt.cli import main

    root = tmp_path_factory.mktemp("quickstart")
    args = ["run", str(REPO / "recipes" / "quickstart.toml"), "--out", str(root / "run")]
    args += small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2")
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root / "run"


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    return write_celeba(tmp_path / "celeba")


@pytest.fixture
def rafd_root(tmp_path: Path) -> Path:
    return write_rafd(tmp_path / "RaFD")


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Invoke the ``mdt`` CLI in-process from inside a temporary folder."""
    from mdt.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)

    return invoke


# Reduced sizes that keep every recipe's structure: a few seconds per run on a CPU. The
# precision is named: "auto" settles by timing a convolution, which can go either way on
# a loaded machine, and two runs a test compares must compute alike (tests/test_speed_switches.py
# tests "auto" itself).
RUN = (
    "run.iterations=2",
    "run.batch_size=2",
    "run.image_size=32",
    "run.sample_every=1",
    "run.sample_count=2",
    "run.checkpoint_every=1",
    "run.log_every=1",
    "run.precision=fp32",
)
SMALL = (
    *RUN,
    "generator.conv_dim=8",
    "generator.residual_blocks=1",
    "discriminator.conv_dim=8",
    "discriminator.layers=3",
)


# The same for StarGAN v2 recipes (their networks have other knobs).
SMALL_V2 = (
    *RUN,
    "generator.base_channels=8",
    "generator.max_channels=16",
    "mapping_network.hidden=16",
    "style_encoder.base_channels=8",
    "style_encoder.max_channels=16",
    "discriminator.base_channels=8",
    "discriminator.max_channels=16",
)


def small(*extra: str, v2: bool = False) -> list[str]:
    args = []
    for item in (*(SMALL_V2 if v2 else SMALL), *extra):
        args += ["--set", item]
    return args


# What every network is made small with, by constructor argument: any plugin's network
# that names its widths and depths like these is shrunk too.
SMALL_NETWORKS = {"conv_dim": 8, "residual_blocks": 1, "layers": 3, "base_channels": 8, "max_channels": 16, "hidden": 16}


def shrunk(recipe_path, *extra: str, registry=None) -> list[str]:
    """``--set`` arguments that run ``recipe_path`` for two iterations at 32 px with small
    networks, whatever its method: its [networks.*] tables are read from the file."""
    from mdt.recipe import recipe_tables
    from mdt.signatures import parameters

    registry = registry or load_plugins().registry
    data = recipe_tables(recipe_path)  # with the recipe it extends
    roles = getattr(registry.get("method", data["method"]["type"]).factory, "roles", {})
    sets = list(RUN)
    for role, table in data.get("networks", {}).items():
        accepted = parameters(registry.get(roles[role].kind, table["type"]).factory)
        sets += [f"networks.{role}.{key}={value}" for key, value in SMALL_NETWORKS.items() if key in accepted]
    args = []
    for item in (*sets, *extra):
        args += ["--set", item]
    return args


def without_write_permission(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``python -m mdt.cli ARGS`` so that folder permissions bind it: root keeps its
    power to write anywhere unless that capability is dropped (setpriv, util-linux)."""
    import shutil
    import sys

    command = [sys.executable, "-m", "mdt.cli", *map(str, args)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: permissions cannot be made to bind")
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def plugin_module(name: str, *registrations: tuple):
    """A plugin module, as a third party writes one, whose hook makes ``registrations``:
    each a (kind, name, factory) given to ``register``. For ``load_plugins(extra=...)``."""
    import types

    import mdt

    module = types.ModuleType(name)

    @mdt.hookimpl
    def register_components(register):
        for kind, component, factory in registrations:
            register(kind, component, factory)

    module.register_components = register_components
    return module
