"""Samples other than RGB squares: a dataset declares its samples (mdt/samples.py), and the
whole chain (recipe check, training, sample grids, checkpoints, translate) follows them.

The data is a folder-per-domain dataset of grey pictures written as real PNG files, 80 x 48
(wide), trained as 1-channel 40 x 24 samples: dark and light domains, each picture a
horizontal gradient, so the right answer of every crop and resize is computable by hand.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mdt.samples import SampleSpec, sample_problem

HEIGHT, WIDTH = 24, 40


def write_grey_domains(root: Path, per_domain: int = 3) -> Path:
    """train/<dark|light>/*.png and val/<dark|light>/*.png, each 80 x 48 grey (mode L)."""
    for split in ("train", "val"):
        for domain, base in (("dark", 30), ("light", 200)):
            for k in range(per_domain):
                ramp = np.linspace(0, 40, 80)[None, :] + np.zeros((48, 1)) + base + k
                path = root / split / domain / f"{domain}_{k}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(ramp.clip(0, 255).astype(np.uint8), mode="L").save(path)
    return root


def recipe_text(root: Path, layers: int = 3) -> str:
    return f"""
[run]
iterations = 2
batch_size = 2
image_size = 32
sample_every = 2
sample_count = 2
checkpoint_every = 2
log_every = 1
precision = "fp32"

[datasets.grey]
type = "domain_folders"
root = "{root}"
channels = 1
height = {HEIGHT}
width = {WIDTH}

[labels]
type = "one_hot"

[augmentation]
type = "standard"

[networks.generator]
type = "stargan"
conv_dim = 8
residual_blocks = 1

[networks.discriminator]
type = "stargan"
conv_dim = 8
layers = {layers}

[losses.adversarial]
type = "wgan"
weight = 1.0

[losses.gradient_penalty]
type = "gradient_penalty"
weight = 10.0

[losses.classification]
type = "domain_classification"
weight = 1.0

[losses.reconstruction]
type = "cycle_l1"
weight = 10.0

[method]
type = "stargan"
"""


@pytest.fixture
def grey_recipe(tmp_path: Path) -> Path:
    root = write_grey_domains(tmp_path / "grey")
    path = tmp_path / "grey.toml"
    path.write_text(recipe_text(root))
    return path


def test_a_grey_wide_dataset_trains_samples_and_translates(cli, grey_recipe: Path, tmp_path: Path) -> None:
    assert tomllib.loads(grey_recipe.read_text())["datasets"]["grey"]["channels"] == 1
    result = cli("recipe", "check", grey_recipe)
    assert result.exit_code == 0, result.output
    assert "networks not run" not in result.output  # the data is here: every network ran on (1, 24, 40)

    run = tmp_path / "run"
    result = cli("run", grey_recipe, "--out", run)
    assert result.exit_code == 0, result.output

    # the sample grid: rows of 24 px cells, columns of 40 px cells (input, then one per
    # domain), grey: every pixel's three channels equal
    grid = np.asarray(Image.open(run / "samples" / "step_00000002.png").convert("RGB")).astype(int)
    assert np.array_equal(grid[..., 0], grid[..., 1]) and np.array_equal(grid[..., 1], grid[..., 2])
    rows = 2  # sample_count
    pad = 2
    assert grid.shape[0] >= rows * (HEIGHT + pad) + pad and grid.shape[0] < rows * (WIDTH + pad) + pad + 40

    # translate one picture: a grey PNG of the model's shape comes out
    source = next((tmp_path / "grey" / "val" / "dark").glob("*.png"))
    out = tmp_path / "out.png"
    result = cli("translate", "--checkpoint", run, "--input", source, "--output", out, "--to", "light")
    assert result.exit_code == 0, result.output
    with Image.open(out) as picture:
        assert picture.size == (WIDTH, HEIGHT)
        values = np.asarray(picture.convert("RGB")).astype(int)
    assert np.array_equal(values[..., 0], values[..., 2])

    # the Python API takes tensors of the model's shape and names the shape it expects
    from mdt.errors import MdtError
    from mdt.inference import load_translator

    translator = load_translator(run, device="cpu")
    assert translator.sample == SampleSpec(1, HEIGHT, WIDTH)
    batch = torch.full((3, 1, HEIGHT, WIDTH), -0.5)
    assert translator(batch, to={"light": 1}).shape == (3, 1, HEIGHT, WIDTH)
    with pytest.raises(MdtError, match=r"expected a tensor \(B, 1, 24, 40\)"):
        translator(torch.zeros(3, 3, HEIGHT, WIDTH), to={"light": 1})


def test_an_onnx_generator_takes_other_heights_and_widths(cli, grey_recipe: Path, tmp_path: Path) -> None:
    """Export keeps the sample's height and width dynamic where the network allows: the
    fully convolutional generator runs in onnxruntime on 48 x 80 samples and agrees with
    the same weights in torch; the file says what its samples are."""
    import json

    import onnxruntime

    from mdt.inference import load_translator

    run = tmp_path / "run"
    assert cli("run", grey_recipe, "--out", run).exit_code == 0
    result = cli("export", "--checkpoint", run, "--format", "onnx", "--out", tmp_path / "onnx")
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "generator.onnx"))
    metadata = session.get_modelmeta().custom_metadata_map
    assert json.loads(metadata["mdt.sample"])["channels"] == 1
    assert "(B, 1, 24, 40)" in metadata["mdt.input"]
    generator = load_translator(run, device="cpu").components.method.networks()["generator"].eval()
    torch.manual_seed(1)
    images, labels = torch.rand(2, 1, 48, 80) * 2 - 1, torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    names = [i.name for i in session.get_inputs()]
    (ours,) = session.run(None, dict(zip(names, (images.numpy(), labels.numpy()), strict=True)))
    with torch.no_grad():
        theirs = generator(images, labels)
    assert ours.shape == (2, 1, 48, 80)
    assert np.abs(ours - theirs.numpy()).max() < 1e-4


def test_the_datasets_pictures_are_cropped_to_the_declared_shape(grey_recipe: Path) -> None:
    """An 80 x 48 picture is 5:3, a 40 x 24 sample too: the whole picture, halved."""
    from mdt.build import build_datasets
    from mdt.plugins import get_registry
    from mdt.recipe import load_recipe
    from mdt.samples import declared_samples

    registry = get_registry()
    recipe = load_recipe(grey_recipe, registry=registry)
    spec = declared_samples(recipe, registry)
    assert spec == SampleSpec(channels=1, height=HEIGHT, width=WIDTH)
    train = build_datasets(recipe, registry, spec)[0][0]
    item = train[0]
    assert sample_problem(item["image"], spec) is None
    with Image.open(train.files[0]) as picture:
        halved = np.asarray(picture.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR))
    assert np.abs(item["image"][0].numpy().astype(int) - halved.astype(int)).max() <= 1


def test_recipe_check_names_a_network_that_cannot_take_the_samples(cli, tmp_path: Path) -> None:
    """24 is not divisible by 2**4: StarGAN's discriminator with 4 layers would leave a
    map its classifier's kernel cannot cover. One line, the table named, exit 2."""
    root = write_grey_domains(tmp_path / "grey")
    path = tmp_path / "deep.toml"
    path.write_text(recipe_text(root, layers=4))
    result = cli("recipe", "check", path)
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "[networks.discriminator]" in line and "24 x 40" in line and "height 24 must be divisible by 2**layers = 16" in line


def test_a_network_made_for_rgb_squares_is_refused_for_other_samples(tmp_path: Path) -> None:
    """A plugin's network that takes only image_size (written before samples could be
    declared) is made for RGB squares: refused in one line naming its table and the
    samples, before anything is built."""
    import types

    from mdt_stargan.networks import StarGANDiscriminator

    import mdt
    from mdt.errors import MdtError
    from mdt.plugins import load_plugins
    from mdt.recipe import load_recipe

    class SquareCritic(StarGANDiscriminator):
        def __init__(self, image_size: int, num_classes: int, conv_dim: int = 64, layers: int = 6) -> None:
            super().__init__(image_size, num_classes, conv_dim, layers)

    module = types.ModuleType("old_plugin")
    module.register_components = mdt.hookimpl(lambda register: register("discriminator", "square_critic", SquareCritic))
    registry = load_plugins(extra={"old_plugin": module}).registry
    path = tmp_path / "square.toml"
    path.write_text(
        recipe_text(write_grey_domains(tmp_path / "grey")).replace(
            '[networks.discriminator]\ntype = "stargan"', '[networks.discriminator]\ntype = "square_critic"'
        )
    )
    with pytest.raises(MdtError) as caught:
        load_recipe(path, registry=registry)
    line = str(caught.value)
    assert "\n" not in line
    assert "[networks.discriminator] type 'square_critic' takes RGB images of [run] image_size (32 x 32)" in line
    assert "image samples uint8 (1, 24, 40), 0 to 255" in line


def test_the_probe_runs_a_network_on_the_declared_samples() -> None:
    """What recipe check runs: a first layer made for three channels, given one, fails on
    the meta device with torch's own reason; the right one runs."""
    from mdt.interfaces import Network
    from mdt.probe import known_inputs, run_problem

    class ThreeChannels(Network):
        inputs = ("images",)
        outputs = ("image",)

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, images):
            return self.conv(images)

    with torch.device("meta"):
        network = ThreeChannels()
    assert run_problem(network, known_inputs(SampleSpec(3, 24, 40), label_dim=2)) is None
    problem = run_problem(network, known_inputs(SampleSpec(1, 24, 40), label_dim=2))
    assert problem is not None and "channel" in problem.lower()


def test_sample_spec_scales_its_range_to_minus_one_one() -> None:
    spec = SampleSpec(channels=1, height=2, width=2, dtype="float32", low=-4.0, high=4.0, modality="speech")
    stored = torch.tensor([[[-4.0, 0.0], [2.0, 4.0]]])
    assert torch.allclose(spec.to_unit(stored), torch.tensor([[[-1.0, 0.0], [0.5, 1.0]]]))
    assert torch.allclose(spec.from_unit(spec.to_unit(stored)), stored)
    assert spec.describe() == "float32 (1, 2, 2), -4 to 4"
    assert SampleSpec.from_json(spec.to_json()) == spec
    image = SampleSpec(3, 2, 2)
    assert image.from_unit(torch.tensor([-1.0, 0.0, 1.0])).tolist() == [0, 128, 255]  # 127.5 rounds half to even: 128
    assert sample_problem(torch.zeros(1, 2, 2), spec) is None
    assert "declares float32 (1, 2, 2)" in (sample_problem(torch.zeros(1, 2, 3), spec) or "")
    with pytest.raises(ValueError, match="range"):
        SampleSpec(low=1, high=1)
