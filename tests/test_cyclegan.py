"""CycleGAN as a plugin: its losses as the paper writes them, the pool of fakes, one model
per pair of domains, exact resume, translation, and StarGAN beside it in one report."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import REPO, shrunk
from mdt_cyclegan.losses import least_squares_discriminator, least_squares_generator, paired_l1
from mdt_cyclegan.method import ImagePool

from mdt import checkpoint as ckpt
from mdt.build import build
from mdt.engine import train
from mdt.recipe import load_recipe

QUICKSTART = REPO / "recipes" / "cyclegan_quickstart.toml"
TINY = (
    "datasets.faces.size=24",
    "datasets.faces.test_size=6",
    "classifier.steps=2",
    "classifier.batch_size=4",
    "metrics.accuracy.max_images=6",
)


def sets(*extra):
    args = shrunk(QUICKSTART, *TINY, *extra)
    return [a for a in args if a != "--set"]


def test_losses_are_the_papers():
    real_a, fake_a = torch.tensor([[0.5, 1.5]]), torch.tensor([[0.2, -0.2]])
    real_b, fake_b = torch.tensor([[1.0]]), torch.tensor([[1.0]])
    total, terms = least_squares_discriminator(real_a, fake_a, real_b, fake_b)
    # ½[((0.25 + 0.25) / 2) + ((0.04 + 0.04) / 2)] + ½[0 + 1]
    assert terms["a"].item() == pytest.approx(0.5 * (0.25 + 0.04)) and terms["b"].item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(0.645)
    total, _ = least_squares_generator(fake_a, fake_b)
    assert total.item() == pytest.approx((0.64 + 1.44) / 2 + 0.0)
    x, y = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    total, terms = paired_l1(x, x + 0.5, y, y - 2)
    assert terms["a"].item() == pytest.approx(0.5) and total.item() == pytest.approx(2.5)


def test_the_pool_shows_earlier_fakes_half_the_time_once_full():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: every fake shown as it is
    shown = torch.cat([pool.query(torch.full((1, 1, 1, 1), 10.0 + k)) for k in range(400)]).flatten()
    new = torch.tensor([10.0 + k for k in range(400)])
    share_new = (shown == new).float().mean().item()
    assert 0.4 < share_new < 0.6 and len(pool.images) == 4
    # A fake shown in place of the new one is an earlier one the pool kept, and the new one takes its place:
    # 400 queries on, the pool holds fakes of those queries, none of the first four.
    earlier = shown[shown != new]
    assert all(0 <= v < 4 or v in new[:k] for k, v in zip((shown != new).nonzero().flatten().tolist(), earlier.tolist(), strict=True))
    assert all(image.item() >= 10 for image in pool.images) and (earlier >= 10).any()
    again = ImagePool(4)
    again.load(pool.state(), torch.device("cpu"))
    assert all(torch.equal(a, b) for a, b in zip(again.images, pool.images, strict=True))
    assert torch.equal(ImagePool(0).query(first), first)  # no pool: the newest fakes


def test_every_pair_has_its_own_networks_and_translates_with_them(registry):
    recipe = load_recipe(QUICKSTART, sets(), registry)
    method = build(recipe, registry).method
    assert len(method.pairs) == 3 and len(method.networks()) == 12
    assert {"generator_ab.0-1", "discriminator_b.1-2"} <= set(method.networks())
    g01, g02 = method.pairs[0].generator_ab, method.pairs[1].generator_ab
    assert not torch.equal(next(g01.parameters()), next(g02.parameters()))  # built afresh for each pair
    translator = method.translator()
    images = torch.rand(3, 3, 32, 32) * 2 - 1
    base = torch.tensor([[1.0, 0, 0, 0, 1], [0, 0, 1, 1, 0], [0, 1, 0, 0, 0]])  # black, brown, blond hair
    wanted = torch.tensor([[0.0, 1, 0, 0, 1], [1, 0, 0, 1, 0], [0, 1, 0, 0, 0]])  # to blond, to black, stays
    out = translator.to_labels(images, wanted, 0, base=base)
    with torch.no_grad():
        assert torch.allclose(out[0], method.pairs[0].generator_ab(images[:1])[0])  # black -> blond: G_AB of (0, 1)
        assert torch.allclose(out[1], method.pairs[1].generator_ba(images[1:2])[0])  # brown -> black: G_BA of (0, 2)
    assert torch.equal(out[2], images[2])  # already there: left as it is
    assert translator.accepts(base, 0).tolist() == [True, True, True]
    assert [t[0] for t in translator.targets()] == ["Black_Hair", "Blond_Hair", "Brown_Hair"]


def test_resume_with_a_full_pool_is_exact(registry, tmp_path):
    extra = ("run.iterations=6", "run.checkpoint_every=3", "run.deterministic=true", "run.threads=1", "method.pool_size=3")

    def recipe():
        r = load_recipe(QUICKSTART, sets(*extra), registry)
        r.data.pop("metrics")
        return r

    train(recipe(), registry, tmp_path / "straight")
    train(recipe(), registry, tmp_path / "split")
    (tmp_path / "split" / "checkpoints" / "step_00000006.safetensors").unlink()
    train(recipe(), registry, tmp_path / "split", resume=True)
    a = ckpt.read(tmp_path / "straight" / "checkpoints" / "step_00000006.safetensors")
    b = ckpt.read(tmp_path / "split" / "checkpoints" / "step_00000006.safetensors")
    pools = [k for k in a.tensors if k.startswith("state/")]
    assert pools, "the pools are saved"
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        torch.testing.assert_close(a.tensors[name], b.tensors[name], rtol=1e-5, atol=1e-6, msg=name)


def test_domains_are_checked(cli, tmp_path):
    from test_recipe_errors import one_line_error

    line = one_line_error(cli("run", QUICKSTART, "--out", "x", "--set", 'method.domains=["Black_Hair", "Purple_Hair"]'))
    assert "'Purple_Hair' is not a label of dataset" in line
    line = one_line_error(cli("run", QUICKSTART, "--out", "x", "--set", 'method.domains=["Black_Hair"]'))
    assert "cyclegan needs at least two domains" in line
    # An image can be both black-haired and smiling: the two streams would share images.
    line = one_line_error(cli("run", QUICKSTART, "--out", "x", "--set", 'method.domains=["Black_Hair", "Smiling"]'))
    assert "cyclegan domains 'Black_Hair' and 'Smiling' can both hold one image" in line
    line = one_line_error(cli("run", QUICKSTART, "--out", "x", "--set", 'method.domains=["Smiling=1", "Smiling"]'))
    assert "cyclegan domains 'Smiling=1' and 'Smiling' can both hold one image" in line
    # A 0/1 label set to 2 matches no image: named as the domain's fault, not the batch size's.
    line = one_line_error(cli("run", QUICKSTART, "--out", "x", "--set", 'method.domains=["Glasses=2", "Glasses=0"]'))
    assert line.endswith("cyclegan domain 'Glasses=2' sets 'Glasses' to 2, but the labels of 'faces' are 0 or 1"), line
    assert not (tmp_path / "x").exists()
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", "networks.generator_ab.type=stargan"))
    assert "type 'stargan' takes (images, labels), but method 'cyclegan' gives its generator_ab (images)" in line
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", "losses.cycle.type=cycle_l1"))
    assert "loss 'cycle_l1' reads 'real', which method 'cyclegan' does not offer in its generator phase" in line


def test_a_resumed_run_keeps_its_domains(cli, tmp_path):
    """A run's generators are trained between its domains in their order: a resume with
    fewer domains is refused naming the networks, and with the same ones reordered (which
    would turn each pair's generators around) naming both orders."""
    from test_recipe_errors import one_line_error

    assert cli("run", QUICKSTART, "--out", "run", *shrunk(QUICKSTART, *TINY)).exit_code == 0
    line = one_line_error(
        cli(
            "run",
            QUICKSTART,
            "--resume",
            "run",
            *shrunk(QUICKSTART, *TINY, "run.iterations=3"),
            "--set",
            'method.domains=["Black_Hair", "Blond_Hair"]',
        )
    )
    assert "the run has no network 'generator_ab' (its networks: discriminator_a.0-1," in line
    assert "the recipe builds other networks than the run did" in line
    line = one_line_error(
        cli(
            "run",
            QUICKSTART,
            "--resume",
            "run",
            *shrunk(QUICKSTART, *TINY, "run.iterations=3"),
            "--set",
            'method.domains=["Blond_Hair", "Black_Hair", "Brown_Hair"]',
        )
    )
    assert (
        "the run was trained between the domains Black_Hair, Blond_Hair, Brown_Hair in this order, "
        "but the recipe gives Blond_Hair, Black_Hair, Brown_Hair"
    ) in line
    assert ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")[-1].name == "step_00000002.safetensors"  # nothing trained


def test_translate_and_compare_with_stargan_in_one_report(cli, tmp_path):
    from conftest import random_image
    from PIL import Image

    from mdt.inference import load_translator

    assert cli("run", QUICKSTART, "--out", "cyclegan", *shrunk(QUICKSTART, *TINY)).exit_code == 0
    stargan_recipe = REPO / "recipes" / "quickstart.toml"
    assert cli("run", stargan_recipe, "--out", "stargan", *shrunk(stargan_recipe, *TINY)).exit_code == 0
    photo = random_image(tmp_path / "face.png", 40, 40, seed=2)
    result = cli(
        "translate", "--checkpoint", "cyclegan", "--input", photo, "--output", "blond.png", "--to", "Blond_Hair", "--from", "Black_Hair"
    )
    assert result.exit_code == 0, result.output
    translator = load_translator(tmp_path / "cyclegan")
    expected = translator(Image.open(photo), to="Blond_Hair", origin="Black_Hair")
    assert Image.open(tmp_path / "blond.png").tobytes() == expected.tobytes()
    result = cli("translate", "--checkpoint", "cyclegan", "--input", photo, "--output", "x.png", "--to", "Blond_Hair")
    assert result.exit_code == 2 and "cannot tell an input's; give its domain with --from" in result.output
    assert (
        cli("translate", "--checkpoint", "cyclegan", "--input", photo, "--output", "grid.png", "--grid", "--from", "Brown_Hair").exit_code
        == 0
    )
    assert Image.open(tmp_path / "grid.png").width == 4 * 34 + 2  # the input and its three hair colours
    result = cli("translate", "--checkpoint", "cyclegan", "--input", photo, "--output", "nofrom.png", "--grid")
    assert result.exit_code == 2 and "give --from (the input's domain" in result.output and "a grid needs it" in result.output
    # The model card's example command runs as written (a grid names the input's domain).
    assert cli("save-pretrained", "cyclegan", "shared", "--license", "mit").exit_code == 0
    card = (tmp_path / "shared" / "README.md").read_text()
    example = next(line for line in card.splitlines() if line.startswith("mdt translate"))
    assert example.endswith("--grid --from Black_Hair"), example
    random_image(tmp_path / "photo.jpg", 40, 40, seed=3)
    result = cli(*example.split()[1:])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").width == 4 * 34 + 2
    result = cli(
        "eval", "--checkpoint", "stargan", "--compare", "cyclegan", "--out", "report", "--metric", "accuracy", "--metric", "cycle_error"
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "report" / "metrics.json").read_text())
    ours, theirs = data["metrics"], data["compared"]["cyclegan"]["metrics"]
    for target in ("Black_Hair", "Blond_Hair", "Brown_Hair"):
        assert 0 <= theirs[f"accuracy/target/{target}"] <= 1 and theirs[f"cycle_error/l1/{target}"] > 0
    assert "accuracy/target/Glasses" in ours and "accuracy/target/Glasses" not in theirs  # no CycleGAN of glasses
    assert theirs["accuracy/real_accuracy"] == ours["accuracy/real_accuracy"]  # one judge, one set of held-out images
    assert "models side by side" in (tmp_path / "report" / "report.html").read_text()
    # Its own report draws grids of held-out images (their labels say each one's domain),
    # and its generators export (a grid asks for a domain: the first is taken). Measured
    # alone by the same judge on the same held-out images, its numbers are those it got
    # beside StarGAN.
    result = cli(
        "eval",
        "--checkpoint",
        "cyclegan",
        "--out",
        "own",
        "--classifier",
        tmp_path / "stargan" / "classifier",
        "--metric",
        "accuracy",
        "--metric",
        "cycle_error",
    )
    assert result.exit_code == 0, result.output
    alone = json.loads((tmp_path / "own" / "metrics.json").read_text())["metrics"]
    assert "cycle_error/l1/Blond_Hair" in alone
    assert alone.keys() == theirs.keys()
    for key, value in alone.items():
        assert theirs[key] == pytest.approx(value, abs=1e-9), key
    result = cli("export", "--checkpoint", "cyclegan", "--format", "torchscript", "--out", "exported")
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "exported").iterdir())
    pairs = ("0-1", "0-2", "1-2")  # each pair's two generators (a to b, b to a)
    assert files == [f"generator_{d}.{p}.pt" for d in ("ab", "ba") for p in pairs], files
    import torch

    exported = torch.jit.load(str(tmp_path / "exported" / "generator_ab.0-1.pt"))  # Black_Hair -> Blond_Hair
    picture = torch.rand(2, 3, 32, 32) * 2 - 1
    by_translator = translator.translator.translate(picture, to="Blond_Hair", origin="Black_Hair")
    assert torch.allclose(exported(picture), by_translator, atol=1e-5)
