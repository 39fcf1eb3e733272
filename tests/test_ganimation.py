"""GANimation as a plugin: the attention-mask generator, its losses read through the
method's contract, continuous targets and their data, --strength and the page's slider."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import REPO, random_image, shrunk
from mdt_ganimation.datasets import CSVIntensities, SyntheticExpressions
from mdt_ganimation.labels import Continuous
from mdt_ganimation.losses import mask_mean, total_variation
from mdt_ganimation.networks import AttentionGenerator
from PIL import Image
from test_recipe_errors import one_line_error

from mdt.errors import MdtError
from mdt.labels import LabelSchema

QUICKSTART = REPO / "recipes" / "ganimation_quickstart.toml"
TINY = (
    "datasets.faces.size=24",
    "datasets.faces.test_size=6",
    "classifier.steps=2",
    "classifier.batch_size=4",
    "metrics.accuracy.max_images=6",
)


def test_the_generator_paints_through_its_mask():
    torch.manual_seed(0)
    generator = AttentionGenerator(label_dim=3, conv_dim=8, residual_blocks=1)
    images, condition = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3)
    out = generator(images, condition)
    assert out.mask.shape == (2, 1, 32, 32) and out.color.shape == images.shape
    assert out.mask.min() >= 0 and out.mask.max() <= 1 and out.color.min() >= -1 and out.color.max() <= 1
    torch.testing.assert_close(out.image, out.mask * images + (1 - out.mask) * out.color)
    assert out[0] is out.image  # the main output first


@pytest.mark.parametrize("training", [True, False])
def test_each_head_is_its_own_convolution(training):
    """The two heads run as one convolution; each must still be GANimation's own head:
    a 7x7 convolution of the body's features with that head's weights, then tanh or sigmoid."""
    torch.manual_seed(1)
    generator = AttentionGenerator(label_dim=3, conv_dim=8, residual_blocks=1).train(training)
    images, condition = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3)
    with torch.no_grad():
        out = generator(images, condition)
        tiled = condition[:, :, None, None].expand(-1, -1, 16, 16)
        features = generator.layers(torch.cat([images, tiled], dim=1))
        color = torch.tanh(torch.nn.functional.conv2d(features, generator.color_head[0].weight, padding=3))
        mask = torch.sigmoid(torch.nn.functional.conv2d(features, generator.attention_head[0].weight, padding=3))
    torch.testing.assert_close(out.color, color, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.mask, mask, atol=1e-5, rtol=0)


def test_a_residual_colour_is_the_input_plus_the_colour_heads_change():
    """residual_color: C = clamp(x + tanh(head(features)), -1, 1), from the same weights as
    the plain generator's C (checkpoints keep their tensors)."""
    torch.manual_seed(2)
    plain = AttentionGenerator(label_dim=3, conv_dim=8, residual_blocks=1).eval()
    residual = AttentionGenerator(label_dim=3, conv_dim=8, residual_blocks=1, residual_color=True).eval()
    residual.load_state_dict(plain.state_dict())
    images, condition = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3)
    with torch.no_grad():
        before, after = plain(images, condition), residual(images, condition)
    color = (images + before.color).clamp(-1, 1)
    torch.testing.assert_close(after.color, color)
    torch.testing.assert_close(after.mask, before.mask)
    torch.testing.assert_close(after.image, before.mask * images + (1 - before.mask) * color)


def test_attention_losses():
    mask = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])
    assert mask_mean(mask, torch.ones(1, 1, 2, 2))[0].item() == pytest.approx(0.75 + 1.0)
    # Horizontal steps |1-0| + |1-1|, vertical |1-0| + |1-1|.
    assert total_variation(mask)[0].item() == pytest.approx(2.0)
    assert total_variation(torch.ones(2, 1, 4, 4))[0].item() == 0.0


def test_continuous_targets_stay_in_range_near_other_images_labels():
    schema = LabelSchema("faces", ("smile", "brow_raise"), continuous=True)
    encoder = Continuous([schema], noise=0.1)
    labels = torch.tensor([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    targets = encoder.sample_targets(labels, 0, torch.Generator().manual_seed(1))
    assert targets.min() >= 0 and targets.max() <= 1
    # Each target is some image's labels, moved by at most the noise.
    assert all(min((t - label).abs().max().item() for label in labels) <= 0.1 + 1e-6 for t in targets)
    assert torch.equal(encoder.encode(labels, 0), labels) and encoder.condition_dim == 2
    with pytest.raises(MdtError, match="continuous needs labels in \\[0, 1\\]"):
        Continuous([LabelSchema("celeba", ("Male",))])


def test_synthetic_expressions_know_their_strengths():
    data = SyntheticExpressions("train", 32, size=8)
    assert data.schema.continuous and data.schema.names == ("smile", "brow_raise", "eyes_closed")
    items = [data[i] for i in range(8)]
    assert torch.equal(data.labels, torch.stack([item["label"] for item in items]))  # known without drawing
    assert items[0]["image"].shape == (3, 32, 32) and items[0]["image"].dtype == torch.uint8
    assert data.labels.min() >= 0 and data.labels.max() <= 1 and data.labels.std() > 0.1


def test_synthetic_expressions_draw_their_counterfactuals():
    """The item's own label redraws the item; another smile changes the mouth and nothing
    far from it; a smile half way lies between none and full where the mouth is drawn."""
    data = SyntheticExpressions("test", 64, expressions=("smile",), size=4, test_size=6, seed=1)
    for i in range(len(data)):
        assert torch.equal(data.counterfactual(i, data[i]["label"]), data[i]["image"])
    item = data[0]
    changed = (data.counterfactual(0, torch.tensor([1.0 - float(item["label"][0])])).int() - item["image"].int()).abs().amax(dim=0) > 0
    rows = changed.any(dim=1).nonzero().flatten()
    assert changed.any() and rows.min() >= 32 + 8  # the mouth: in the lower half, below the eyes (y > 0.25)
    none, half, full = (data.counterfactual(0, torch.tensor([v])) for v in (0.0, 0.5, 1.0))
    assert not torch.equal(half, none) and not torch.equal(half, full)


def test_openface_intensities_in_a_csv(tmp_path):
    rows = ["file, AU01_r, AU12_r"]
    for i in range(5):
        random_image(tmp_path / "imgs" / f"f{i}.jpg", 40, 40, i)
        rows.append(f"f{i}.jpg, {i * 0.5}, {5 - i}")
    (tmp_path / "imgs" / "aus.csv").write_text("\n".join(rows) + "\n")
    data = CSVIntensities(str(tmp_path / "imgs"), "aus.csv", "train", 32, columns=["AU12_r"], test_size=1)
    test = CSVIntensities(str(tmp_path / "imgs"), "aus.csv", "test", 32, columns=["AU12_r"], test_size=1)
    assert len(data) == 4 and len(test) == 1 and data.schema.continuous and data.schema.names == ("AU12_r",)
    every = sorted(v for d in (data, test) for v in d.labels.flatten().tolist())
    assert every == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])  # 1..5 of 5 -> [0, 1]
    rows[3] = "f2.jpg, 1.0, 7.5"
    (tmp_path / "imgs" / "aus.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(MdtError, match="line 4 has an intensity outside \\[0, 5\\]"):
        CSVIntensities(str(tmp_path / "imgs"), "aus.csv", "train", 32)
    with pytest.raises(MdtError, match=r"column 'AU13_r' is not in .* \(did you mean 'AU12_r'\?\)"):
        CSVIntensities(str(tmp_path / "imgs"), "aus.csv", "train", 32, columns=["AU13_r"])


def test_a_mask_loss_needs_a_generator_that_returns_a_mask(cli):
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", "networks.generator.type=stargan"))
    assert line.endswith(
        "[losses.attention] loss 'attention_mean' reads 'fake_mask', which method 'ganimation' offers only when its "
        "generator returns 'mask'; the chosen generator returns (image)"
    )
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", "method.type=stargan"))
    assert "[losses.attention] loss 'attention_mean' reads 'fake_mask', which method 'stargan' does not offer" in line


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from click.testing import CliRunner

    from mdt.cli import main

    folder = tmp_path_factory.mktemp("ganimation")
    args = ["run", str(QUICKSTART), "--out", str(folder / "run"), *shrunk(QUICKSTART, *TINY)]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_strength_goes_part_of_the_way(trained, cli, tmp_path):
    from mdt.inference import load_translator

    translator = load_translator(trained)
    inner = translator.translator
    seen = []
    encode = inner.encoder.encode
    inner.encoder.encode = lambda labels, source: seen.append(labels.clone()) or encode(labels, source)
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    known = {"smile": 0.2, "brow_raise": 0.4, "eyes_closed": 0.0}
    translator(images, to={"smile": 1.0, "eyes_closed": 1}, known=known, strength=0.25)
    torch.testing.assert_close(seen[-1], torch.tensor([[0.4, 0.4, 0.25]] * 2))  # 0.2 + 0.25 * 0.8, 0.4 kept, 0 + 0.25 * 1
    with pytest.raises(MdtError, match=r"--strength = 1.5 must be in \[0, 1\]"):
        translator(images, to={"smile": 1.0}, strength=1.5)
    photo = random_image(tmp_path / "face.png", 40, 40, seed=4)
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "half.png", "--to", "smile=1", "--strength", "0.5")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "half.png").tobytes() == translator(Image.open(photo), to={"smile": 1}, strength=0.5).tobytes()
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "x.png", "--to", "smile=1.5")
    assert result.exit_code == 2 and "label 'smile' must be set to a value in [0, 1], not 1.5" in result.output
    result = cli("translate", "--checkpoint", trained, "--input", photo, "--output", "grid.png", "--grid")
    assert result.exit_code == 0 and Image.open(tmp_path / "grid.png").width == 10 * 34 + 2  # each label at 0, 0.5, 1


def test_the_page_has_a_strength_slider_and_continuous_labels(trained, tmp_path):
    gr = pytest.importorskip("gradio")
    from mdt.inference import load_translator
    from mdt.serve import build_app

    translator = load_translator(trained, "cpu")
    app = build_app(translator)
    sliders = [b for b in app.blocks.values() if isinstance(b, gr.Slider)]
    strength = [s for s in sliders if s.elem_id == "strength"]
    assert len(strength) == 1 and (strength[0].minimum, strength[0].maximum) == (0, 1)
    assert {s.elem_id for s in sliders} >= {"to-0-value", "to-1-value", "to-2-value"}  # one per continuous label
    translate = next(f.fn for f in app.fns.values() if f.fn is not None and f.fn.__name__ == "translate")
    face = Image.open(random_image(tmp_path / "face.png", 40, 40, seed=1)).convert("RGB")
    # Widgets in order: input, keep/set per label, a value per label, strength.
    full, _ = translate(face, "set", "keep", "keep", 1.0, 0.5, 0.5, 1.0)
    none, _ = translate(face, "set", "keep", "keep", 1.0, 0.5, 0.5, 0.0)
    assert full.tobytes() != none.tobytes()

    def same(a: Image.Image, b: Image.Image) -> bool:
        return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max() <= 1

    # what the Python API gives for the same request: smile set to 1, the other labels kept
    assert same(full, translator(face, to={"smile": 1.0}, strength=1.0))
    assert same(none, translator(face, to={"smile": 1.0}, strength=0.0))
    # a set label takes its slider's value; a kept label's slider is not read
    partway, _ = translate(face, "keep", "set", "keep", 0.9, 0.3, 0.6, 0.5)
    assert same(partway, translator(face, to={"brow_raise": 0.3}, strength=0.5))
    assert not same(partway, translator(face, to={"brow_raise": 1.0}, strength=0.5))


def test_a_third_party_mask_generator_returning_a_plain_tuple_trains(tmp_path):
    """The method reads the mask by its place in the generator's declared outputs, as the
    plugin guide says, not by an attribute of the built-in generator's named tuple."""
    from conftest import plugin_module

    from mdt import checkpoint as ckpt
    from mdt.engine import train
    from mdt.plugins import load_plugins
    from mdt.recipe import load_recipe

    class PlainTuple(AttentionGenerator):
        """Returns (image, mask) as a plain tuple."""

        outputs = ("image", "mask")

        def forward(self, images, condition):
            out = super().forward(images, condition)
            return out.image, out.mask

    registry = load_plugins(extra={"plain_tuple": plugin_module("plain_tuple", ("generator", "plain_tuple", PlainTuple))}).registry

    def trained_with(generator: str) -> tuple[list[dict], dict[str, torch.Tensor]]:
        sets = [*(s for s in shrunk(QUICKSTART)[1::2]), *TINY, f"networks.generator.type={generator}", "run.iterations=2"]
        recipe = load_recipe(QUICKSTART, [s for s in sets if not s.startswith(("metrics.", "classifier."))], registry)
        recipe.data.pop("metrics", None)
        recipe.data.pop("classifier", None)
        result = train(recipe, registry, tmp_path / generator)
        assert result.step == 2
        lines = (tmp_path / generator / "log.jsonl").read_text().splitlines()
        records = [{k: v for k, v in r.items() if k not in ("time", "it_per_s")} for r in map(json.loads, lines) if r["event"] == "train"]
        return records, ckpt.read(tmp_path / generator / "checkpoints" / "step_00000002.safetensors").network("generator")

    (plain, plain_weights), (built_in, built_in_weights) = trained_with("plain_tuple"), trained_with("ganimation")
    # The mask losses read its mask: with the same weights (both built from the recipe's seed) every
    # logged value, the mask losses' included, is the built-in generator's, and so is the generator its
    # update (d_steps_per_g = 2: G steps at step 2) leaves.
    assert [r["step"] for r in plain] == [r["step"] for r in built_in] == [1, 2]
    assert {"G/attention", "G/attention_smoothness"} <= set(plain[1]) and plain[1]["G/attention"] > 0
    assert plain == built_in
    assert plain_weights.keys() == built_in_weights.keys()
    for key, value in plain_weights.items():
        assert torch.equal(value, built_in_weights[key]), key


def test_a_method_reads_a_networks_output_by_its_declared_name():
    from mdt.method import output

    class Declares(torch.nn.Module):
        outputs = ("image", "mask")

    image, mask = torch.zeros(1), torch.ones(1)
    assert output((image, mask), Declares(), "mask") is mask and output(image, Declares(), "image") is image
    with pytest.raises(MdtError) as caught:
        output((image, mask), Declares(), "color")
    assert str(caught.value) == "network Declares declares no output 'color' (its outputs: image, mask)"
    with pytest.raises(MdtError) as caught:
        output(image, Declares(), "mask")
    assert str(caught.value) == "network Declares declares the outputs (image, mask) but returned one tensor"
