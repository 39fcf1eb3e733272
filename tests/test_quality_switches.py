"""Switches for what translations keep (issue 14's candidates, measured by
benchmarks/quality.py): a residual generator output, spectral normalisation of StarGAN's
discriminator, and StarGAN trained with the non-saturating loss and R1 instead of WGAN-GP;
issue 43's shifts and cutout of the discriminator's inputs."""

from __future__ import annotations

import tomllib

import pytest
import torch
from conftest import REPO
from mdt_ganimation.networks import AttentionGenerator
from mdt_stargan.input_augment import InputAugment
from mdt_stargan.networks import StarGANDiscriminator, StarGANGenerator

from mdt.data import Batch
from mdt.toml_text import dump_toml


def _shifted_by_hand(image: torch.Tensor, down: int, right: int) -> torch.Tensor:
    """image (C, H, W) moved down and right by whole pixels, zeros coming in."""
    out = torch.zeros_like(image)
    rows, columns = image.shape[1:]
    for i in range(rows):
        for j in range(columns):
            if 0 <= i - down < rows and 0 <= j - right < columns:
                out[:, i, j] = image[:, i - down, j - right]
    return out


def test_d_input_shift_moves_each_image_by_whole_pixels_within_the_fraction():
    """shift 0.25 on 8x8 images: every image is its input moved by (down, right) in
    [-2, 2]^2 with zeros coming in, and over 400 images each of the 25 moves occurs."""
    torch.manual_seed(0)
    images = (torch.arange(400 * 2 * 8 * 8, dtype=torch.float32) + 1).view(400, 2, 8, 8)
    out = InputAugment(shift=0.25)(images)
    moves = set()
    for image, moved in zip(images, out, strict=True):
        found = [(d, r) for d in range(-2, 3) for r in range(-2, 3) if torch.equal(moved, _shifted_by_hand(image, d, r))]
        assert len(found) == 1, found
        moves.add(found[0])
    assert len(moves) == 25


def test_d_input_cutout_blanks_one_square_centred_at_a_pixel():
    """cutout 0.5 on 8x8 images: each image equals its input but for a 4x4 square (cut at
    the border) centred at some pixel, set to 0; the gradient is 1 outside it, 0 inside."""
    torch.manual_seed(0)
    images = (torch.rand(300, 3, 8, 8) + 0.5).requires_grad_(True)
    out = InputAugment(cutout=0.5)(images)
    (gradient,) = torch.autograd.grad(out.sum(), images)
    centres = set()
    for image, cut, grad in zip(images.detach(), out.detach(), gradient, strict=True):
        kept = torch.ones(8, 8)
        matches = []
        for row in range(8):
            for column in range(8):
                kept.fill_(1)
                kept[max(0, row - 2) : row + 2, max(0, column - 2) : column + 2] = 0
                if torch.equal(cut, image * kept):
                    matches.append((row, column))
                    assert torch.equal(grad, kept.expand_as(grad))
        assert len(matches) == 1, matches
        centres.add(matches[0])
    assert len(centres) > 50  # the centre is drawn over the whole image, not fixed


def test_d_input_augment_is_training_only_and_adds_no_weights():
    """In eval mode (reading labels at translation, export) and with both fractions 0, D
    reads its input as it is; the switch adds nothing to a checkpoint."""
    torch.manual_seed(0)
    plain = StarGANDiscriminator(32, 5, conv_dim=8, layers=3)
    augmented = StarGANDiscriminator(32, 5, conv_dim=8, layers=3, augment_shift=0.125, augment_cutout=0.5)
    assert plain.state_dict().keys() == augmented.state_dict().keys()
    augmented.load_state_dict(plain.state_dict())
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    for a, b in zip(plain.eval()(images), augmented.eval()(images), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(plain.train()(images), augmented.train()(images), strict=True):
        assert not torch.allclose(a, b)
    assert torch.equal(InputAugment().train()(images), images)


def test_a_residual_output_is_the_input_plus_the_networks_output():
    torch.manual_seed(0)
    plain = StarGANGenerator(5, conv_dim=8, residual_blocks=1)
    residual = StarGANGenerator(5, conv_dim=8, residual_blocks=1, residual_output=True)
    residual.load_state_dict(plain.state_dict())  # the same tensors: checkpoints do not change
    images, condition = torch.rand(3, 3, 16, 16) * 2 - 1, torch.eye(5)[:3]
    expected = (images + plain(images, condition)).clamp(-1, 1)
    assert torch.equal(residual(images, condition), expected)


@pytest.mark.parametrize("network", [StarGANGenerator, AttentionGenerator])
@pytest.mark.parametrize("upsampling", ["transposed", "resize"])
def test_resize_upsampling_prints_no_checkerboard(upsampling, network):
    """A flat feature map through the generator's first upsampling layer: the resize and
    3x3 convolution gives a flat map inside its border; the paper's transposed convolution
    (overlapping 4x4 kernels of stride 2) a pattern with a period of 2 pixels."""
    torch.manual_seed(0)
    generator = network(5, conv_dim=8, residual_blocks=1, upsampling=upsampling)
    layers = list(generator.layers)
    first = next(i for i, layer in enumerate(layers) if isinstance(layer, (torch.nn.Upsample, torch.nn.ConvTranspose2d)))
    upsample = torch.nn.Sequential(*layers[first : first + (2 if upsampling == "resize" else 1)])
    with torch.no_grad():
        out = upsample(torch.ones(1, 32, 8, 8))[:, :, 2:-2, 2:-2]
    assert out.shape[1] == 16 and out.shape[-1] == 12
    spread = (out - out.mean(dim=(2, 3), keepdim=True)).abs().amax().item()
    if upsampling == "resize":
        assert spread < 1e-5
        assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in generator.modules())
    else:
        assert spread > 1e-2
        assert torch.allclose(out[..., 0::2, 0::2], out[..., 2::2, 2::2][..., :1, :1].expand_as(out[..., 0::2, 0::2]), atol=1e-5)


def test_an_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="resise"):
        StarGANGenerator(5, conv_dim=8, residual_blocks=1, upsampling="resise")  # type: ignore[arg-type]


def test_spectral_norm_divides_each_weight_by_its_largest_singular_value():
    torch.manual_seed(0)
    critic = StarGANDiscriminator(32, 5, conv_dim=8, layers=3, spectral_norm=True).train()
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        for _ in range(300):  # one power iteration per training forward
            critic(images[:1])
    convolutions = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convolutions) == 5
    for conv in convolutions:
        raw = conv.parametrizations.weight.original
        sigma = torch.linalg.matrix_norm(raw.flatten(1), ord=2)
        torch.testing.assert_close(conv.weight, raw / sigma, rtol=2e-3, atol=1e-6)
        assert abs(sigma.item() - 1) > 0.05  # the raw weights were not normalised already
    # the state loads into a fresh critic and gives the same outputs in eval mode
    again = StarGANDiscriminator(32, 5, conv_dim=8, layers=3, spectral_norm=True)
    again.load_state_dict(critic.state_dict())
    critic.eval(), again.eval()
    for a, b in zip(critic(images), again(images), strict=True):
        assert torch.equal(a, b)


def test_stargan_trains_with_the_nonsaturating_loss_and_r1(registry, tmp_path):
    """The v2 plugin's ``nonsaturating`` and ``r1`` losses fit StarGAN's step state; R1's
    value is half the mean squared norm of D's input gradient on the real images."""
    from mdt_stargan.method import StepState

    from mdt.build import build
    from mdt.recipe import load_recipe

    recipe = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    recipe["losses"]["adversarial"]["type"] = "nonsaturating"
    del recipe["losses"]["gradient_penalty"]
    recipe["losses"]["r1"] = {"type": "r1", "weight": 1.0}
    path = tmp_path / "ns_r1.toml"
    path.write_text(dump_toml(recipe))
    overrides = [
        "run.image_size=32",
        "generator.conv_dim=8",
        "generator.residual_blocks=1",
        "discriminator.conv_dim=8",
        "discriminator.layers=3",
        "datasets.faces.size=8",
        "datasets.faces.test_size=2",
        "run.precision=fp32",
    ]
    torch.manual_seed(0)
    method = build(load_recipe(path, overrides, registry), registry).method
    torch.manual_seed(1)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    state = StepState("discriminator", method, Batch(real, labels, 0), labels.flip(0))
    value, _ = method.losses["r1"]("discriminator", state)

    leaf = real.clone().requires_grad_(True)
    scores, _ = method.discriminator(leaf)
    (grad,) = torch.autograd.grad(scores.sum(), leaf)
    expected = 0.5 * grad.pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(state.real_scores, scores.detach(), rtol=1e-5, atol=1e-6)
    adversarial, _ = method.losses["adversarial"]("discriminator", state)
    independent = torch.nn.functional.softplus(-scores).mean() + torch.nn.functional.softplus(state.fake_scores).mean()
    torch.testing.assert_close(adversarial, independent.detach(), rtol=1e-5, atol=1e-6)

    # without R1 the real images carry no gradient: D's first layer computes none for them
    plain = StepState(
        "discriminator",
        build(load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry), registry).method,
        Batch(real, labels, 0),
        labels.flip(0),
    )
    assert plain.real_scores.requires_grad and not plain.real.requires_grad and "real_input" not in plain.__dict__


def test_stargans_moving_average_generator_follows_each_generator_step(registry, tmp_path):
    """``ema_decay`` d: after each G update the average becomes d * average + (1 - d) * G,
    and translations use the average; without it nothing changes (no extra network)."""
    from test_components import batches_of

    from mdt.build import build
    from mdt.recipe import load_recipe

    overrides = [
        "run.image_size=32",
        "generator.conv_dim=8",
        "generator.residual_blocks=1",
        "discriminator.conv_dim=8",
        "discriminator.layers=3",
        "datasets.faces.size=32",
        "datasets.faces.test_size=2",
        "run.precision=fp32",
    ]
    plain = build(load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry), registry).method
    assert set(plain.networks()) == {"generator", "discriminator"} and plain.translator().generator is plain.generator

    components = build(
        load_recipe(REPO / "recipes" / "quickstart.toml", [*overrides, "method.ema_decay=0.9", "method.d_steps_per_g=2"], registry),
        registry,
    )
    method = components.method
    assert method.d_steps_per_g == 2
    snapshots = [[p.detach().clone() for p in method.generator.parameters()]]
    for step in range(4):  # G updates after steps 1 and 3
        method.train_step(batches_of(components, step), step)
        snapshots.append([p.detach().clone() for p in method.generator.parameters()])
    w0, w1, w3 = snapshots[0], snapshots[2], snapshots[4]
    for average, a, b, c in zip(method.generator_ema.parameters(), w0, w1, w3, strict=True):
        expected = 0.9 * (0.9 * a + 0.1 * b) + 0.1 * c
        torch.testing.assert_close(average, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(w3[0], w0[0])
    assert "generator_ema" in method.networks() and method.translator().generator is method.generator_ema
    assert method.inference_networks == ("generator_ema",)


def test_the_average_of_a_compiled_network_runs_its_own_weights():
    """compile_generator compiles G in place; its moving average must not call G's forward."""
    from mdt.ema import moving_average

    torch.manual_seed(0)
    network = torch.nn.Conv2d(3, 4, 3, padding=1)
    network.compile()
    average = moving_average(network)
    with torch.no_grad():
        for p in average.parameters():
            p.zero_()
    images = torch.rand(2, 3, 8, 8)
    assert torch.count_nonzero(network(images)) > 0
    assert torch.count_nonzero(average(images)) == 0
    assert not any(p.requires_grad for p in average.parameters())


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("method.ema_decay=1", "key 'ema_decay' = 1: expected a number of at least 0 and below 1"),
        ("discriminator.spectral_norm=2", "key 'spectral_norm' = 2: expected true or false"),
        ("generator.residual_output=yes", """key 'residual_output' = "yes": expected true or false"""),
        ("generator.upsampling=bilinear", """key 'upsampling' = "bilinear": expected one of"""),
        ("discriminator.augment_cutout=1.5", "key 'augment_cutout' = 1.5: expected a number from 0 to 1"),
        ("discriminator.augment_shift=-0.1", "key 'augment_shift' = -0.1: expected a number from 0 to 1"),
    ],
)
def test_a_switch_out_of_range_is_one_line(cli, setting, expected):
    from test_recipe_errors import one_line_error

    line = one_line_error(cli("recipe", "check", REPO / "recipes" / "stargan_celeba.toml", "--set", setting))
    assert f"--set {setting.split('=')[0]}" in line and expected in line


@pytest.mark.parametrize("data", ["synthetic_faces", "synthetic_celeba"])
def test_every_benchmark_candidate_is_a_recipe_on_the_benchmarks_data(data, registry, tmp_path):
    """benchmarks/quality.py writes each candidate's recipe: the recipe check accepts it, and
    it trains on the benchmark's faces at the benchmark's sizes (a candidate whose recipe
    extends another included)."""
    import argparse
    import importlib.util

    from mdt.recipe import parse_recipe

    spec = importlib.util.spec_from_file_location("quality", REPO / "benchmarks" / "quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    args = argparse.Namespace(
        data=data, out=tmp_path, faces=6000, eval_images=256, iterations=[500, 1000], size=64, threads=2, precision="fp32",
        g_dim=32, g_blocks=4, d_dim=32, d_layers=5,
    )  # fmt: skip
    for name in quality.CANDIDATES:
        recipe = parse_recipe(dump_toml(quality.benchmark_recipe(name, 0, args)), f"{name}.toml", registry=registry)
        (table,) = [t for t in recipe.tables() if t.kind == "dataset"]
        assert (table.type, table.values["size"], table.values["test_size"]) == (data, 6000, 256), name
        if data == "synthetic_celeba":  # the recipe's own CelebA table, pointed at the drawn faces
            assert table.values["attributes"] == ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"], name
        run = recipe.data["run"]
        assert (run["iterations"], run["image_size"], run["seed"], run["batch_size"]) == (1000, 64, 0, 16), name
