"""StarGAN v2: networks, the four-update step, the moving averages, the decaying
diversity weight across a resume, reference-pair sampling, translation and import."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import REPO, small, text_pixels, write_domain_folders
from mdt_datasets.samplers import BalancedOrder, BalancedPairs, domains_of
from mdt_stargan_v2.losses import DiversitySensitive
from mdt_stargan_v2.networks import MappingNetwork, StarGANv2Discriminator, StarGANv2Generator, StyleEncoder
from test_recipe_errors import one_line_error

from mdt.build import build
from mdt.data import Batch, BatchStream
from mdt.errors import MdtError
from mdt.recipe import load_recipe
from mdt.streams import to_batch

QUICKSTART = REPO / "recipes" / "stargan_v2_quickstart.toml"
TINY = [
    "datasets.faces.size=24",
    "datasets.faces.test_size=6",
    "classifier.steps=1",
    "metrics.accuracy.max_images=2",
    "metrics.diversity.samples=2",
    "metrics.diversity.max_images=2",
]


def overrides(*extra: str) -> list[str]:
    args = small(*TINY, *extra, v2=True)
    return [a for a in args if a != "--set"]


def built(registry, *extra: str):
    recipe = load_recipe(QUICKSTART, overrides("run.batch_size=4", *extra), registry=registry)
    return build(recipe, registry)


def batches(components, step: int = 0) -> list[Batch]:
    size = components.settings.batch_size
    data = components.train_sets[0]
    source = BatchStream(data, BalancedOrder(data, size, 0, start=step), consumed=step)
    pairs = BatchStream(data, BalancedPairs(data, size, 1, start=step), consumed=step)
    return [to_batch(next(source), 0, components, role="source"), to_batch(next(pairs), 0, components, role="reference")]


def test_paper_sizes_and_shapes():
    """The paper's defaults at 256 px: 16 -> 64 through the mapping network, 4x4 trunks."""
    mapping = MappingNetwork(num_classes=3)
    z = torch.randn(2, 16)
    assert mapping(z, torch.tensor([0, 2])).shape == (2, 64)
    encoder = StyleEncoder(image_size=256, num_classes=3)
    discriminator = StarGANv2Discriminator(image_size=256, num_classes=3)
    generator = StarGANv2Generator(image_size=256)
    # Widths double from 64 to the cap of 512; the generator's bottleneck is 16x16 at 256 px.
    assert [b.conv2.out_channels for b in generator.encode] == [128, 256, 512, 512, 512, 512]
    assert discriminator.main[-1].out_channels == 3 and len(encoder.unshared) == 3
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    small_g = StarGANv2Generator(image_size=64, base_channels=8, max_channels=32, style_dim=8)
    assert small_g(image, torch.randn(1, 8)).shape == image.shape
    # Each domain head of the mapping network gives that domain's style.
    heads = torch.stack([head(mapping.shared(z)) for head in mapping.unshared], 1)
    assert torch.equal(mapping(z, torch.tensor([1, 1])), heads[:, 1])


def test_high_pass_generator_needs_masks_and_uses_them():
    generator = StarGANv2Generator(image_size=64, base_channels=8, max_channels=16, style_dim=4, high_pass=1.0)
    image, style = torch.rand(1, 3, 64, 64), torch.randn(1, 4)
    with pytest.raises(ValueError, match="needs face-landmark masks"):
        generator(image, style)
    zeros = (torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))
    ones = (torch.ones(1, 1, 64, 64), torch.ones(1, 1, 64, 64))
    assert not torch.allclose(generator(image, style, zeros), generator(image, style, ones))
    # One more downsampling than without the skips, as the official CelebA-HQ model.
    assert len(generator.encode) == len(StarGANv2Generator(image_size=64).encode) + 1


class Labelled:
    """A dataset as samplers see it: labels up front."""

    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)


def test_balanced_pairs_share_a_domain_and_balance_domains():
    domains = torch.tensor([0] * 90 + [1] * 8 + [2] * 2)  # very unbalanced
    data = Labelled(torch.nn.functional.one_hot(domains).float())
    order = iter(BalancedOrder(data, 16, seed=3, pairs=True))
    counts = torch.zeros(3)
    for _ in range(200):
        batch = next(order)
        first, second = torch.tensor(batch[:16]), torch.tensor(batch[16:])
        assert torch.equal(domains[first], domains[second])
        counts += torch.bincount(domains[first], minlength=3)
    assert (counts / counts.sum() - 1 / 3).abs().max() < 0.05
    # A resumed order continues with exactly the batches it would have drawn.
    resumed = iter(BalancedOrder(data, 16, seed=3, start=5, pairs=True))
    fresh = iter(BalancedOrder(data, 16, seed=3, pairs=True))
    for _ in range(5):
        next(fresh)
    assert next(resumed) == next(fresh)


def test_balanced_sampling_needs_labels_up_front():
    class NoLabels:
        def __len__(self):
            return 4

    with pytest.raises(MdtError, match="has no 'labels'"):
        domains_of(NoLabels())


def test_every_network_learns_and_the_averages_follow(registry):
    torch.manual_seed(0)
    components = built(registry, "run.batch_size=8")
    method = components.method
    trained = ("generator", "mapping_network", "style_encoder", "discriminator")
    before = {name: {k: v.clone() for k, v in method.networks()[name].state_dict().items()} for name in method.networks()}
    values = method.train_step(batches(components), 0)
    for name in trained:
        for key, value in method.networks()[name].state_dict().items():
            assert not torch.equal(value, before[name][key]), f"{name}.{key} did not change"
    # Each average moved (1 - decay) of the way from the initial weights to the updated ones.
    share = 1 - method.ema_decay
    assert share == pytest.approx(0.01)  # the quickstart's ema_decay
    for name in ("generator", "mapping_network", "style_encoder"):
        for key, value in method.networks()[f"{name}_ema"].state_dict().items():
            start, now = before[f"{name}_ema"][key], method.networks()[name].state_dict()[key]
            assert not torch.equal(value, start) and torch.allclose(value, start + share * (now - start), atol=1e-7), key
    for update in ("D/latent", "D/reference", "G/latent", "G/reference"):
        assert f"{update}/total" in values
    assert values["D/latent/r1"] > 0 and values["G/latent/diversity/distance"] > 0


def test_reference_update_steps_the_generator_only(registry):
    """Update 4 of the paper's step (G with reference styles) must not move F or E."""
    torch.manual_seed(0)
    components = built(registry)
    method = components.method
    data = batches(components)
    source = data[0]
    pairs = data[1]
    half = pairs.images.shape[0] // 2
    targets = pairs.labels[:half].argmax(1)
    style_before = [p.clone() for p in method.style_encoder.parameters()]
    generator_before = [p.clone() for p in method.generator.parameters()]
    method.update_phase("generator", "reference", source, targets, (pairs.images[:half], pairs.images[half:]))
    assert all(torch.equal(a, b) for a, b in zip(style_before, method.style_encoder.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(generator_before, method.generator.parameters(), strict=True))


def test_diversity_weight_decays_linearly_to_zero():
    loss = DiversitySensitive(weight=2.0, decay_iterations=100)
    assert [loss.weight_at(s) for s in (0, 50, 100, 150)] == [2.0, 1.0, 0.0, 0.0]
    assert DiversitySensitive(weight=2.0, decay_iterations=0).weight_at(10**6) == 2.0


def test_diversity_weight_continues_after_resume(cli, tmp_path):
    args = ["run", QUICKSTART, "--out", "run", *small(*TINY, "losses.diversity.decay_iterations=10", v2=True)]
    assert cli(*args).exit_code == 0
    resumed = [a if a != "run.iterations=2" else "run.iterations=4" for a in args[4:]]
    result = cli("run", QUICKSTART, "--resume", "run", *resumed)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    weights = {r["step"]: r["weight/diversity"] for r in records}
    # Logged at the end of step k (1-based) is the weight its update used: 1 - (k-1)/10.
    assert weights == pytest.approx({1: 1.0, 2: 0.9, 3: 0.8, 4: 0.7})


def test_a_stargan_v2_method_needs_its_networks(cli, tmp_path):
    text = QUICKSTART.read_text().replace('[networks.mapping_network]\ntype = "stargan_v2"', "[networks.unused_mapping]\ntype = 'x'")
    (tmp_path / "r.toml").write_text(text)
    result = cli("recipe", "check", "r.toml")
    assert result.exit_code == 2 and "method 'stargan_v2' needs a [networks.mapping_network] table" in result.output
    text = QUICKSTART.read_text()
    start = text.index("[networks.mapping_network]")
    end = text.index("[networks.style_encoder]")
    (tmp_path / "r.toml").write_text(text[:start] + text[end:])
    result = cli("recipe", "check", "r.toml")
    assert result.exit_code == 2 and "needs a [networks.mapping_network] table (registered mapping_networks: stargan_v2)" in result.output


def test_stargan_v2_needs_one_domain_per_image(cli, tmp_path):
    text = QUICKSTART.read_text().replace(
        'attributes = ["Black_Hair", "Blond_Hair", "Brown_Hair"]', 'attributes = ["Black_Hair", "Smiling"]'
    )
    (tmp_path / "r.toml").write_text(text.replace('type = "one_hot"', 'type = "multi_hot"'))
    line = one_line_error(cli("recipe", "check", "r.toml"))  # the check knows it: the encoder and the method say so
    assert line == (
        "error: r.toml: [labels] type 'multi_hot' gives independent attributes (a multi-hot condition), but method "
        "'stargan_v2' needs one class per image (a one-hot condition); use a type that gives it, such as 'one_hot'"
    ), line
    result = cli("run", "r.toml", *small(*TINY, v2=True))
    assert result.exit_code == 2 and "needs one class per image" in result.output and not (tmp_path / "runs").exists()


def test_translations_from_folders_in_the_afhq_layout(cli, tmp_path):
    """A 2-iteration run on AFHQ-layout folders, then every way of translating with it."""
    root = write_domain_folders(tmp_path / "afhq")
    recipe = REPO / "recipes" / "stargan_v2_afhq.toml"
    assert (
        cli(
            "run",
            recipe,
            "--out",
            "run",
            *small(
                f"datasets.afhq.root={root}", "metrics.diversity.samples=2", "classifier.steps=1", "metrics.diversity.max_images=2", v2=True
            ),
        ).exit_code
        == 0
    )
    source = root / "val" / "dog" / "val_dog_0000.jpg"
    common = ["translate", "--checkpoint", "run", "--input", source]
    result = cli(*common, "--output", "cats", "--domain", "cat", "--seed", "5", "--num", "3")
    assert result.exit_code == 0, result.output
    outputs = sorted((tmp_path / "cats").iterdir())
    assert [p.name for p in outputs] == ["val_dog_0000_cat_5.png", "val_dog_0000_cat_6.png", "val_dog_0000_cat_7.png"]
    import numpy as np
    from PIL import Image

    from mdt.inference import load_translator

    translator = load_translator(tmp_path / "run")
    dog = Image.open(source).convert("RGB")
    pixels = [np.asarray(Image.open(p), dtype=np.int16) for p in outputs]
    for seed, got in zip((5, 6, 7), pixels, strict=True):  # each file is the API's translation with its seed
        assert np.abs(got - np.asarray(translator(dog, domain="cat", seed=seed), dtype=np.int16)).max() <= 1, seed
    assert np.abs(pixels[0] - pixels[1]).max() > 1  # another seed, another style
    # The same seed gives the same image again.
    assert cli(*common, "--output", "again.png", "--domain", "cat", "--seed", "6").exit_code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "again.png"), dtype=np.int16), pixels[1])
    # Reference-guided, and grids of inputs x references and inputs x styles.
    reference = root / "val" / "cat" / "val_cat_0001.jpg"
    assert cli(*common, "--output", "ref.png", "--domain", "cat", "--ref", reference).exit_code == 0
    with_ref = np.asarray(translator(dog, domain="cat", ref=Image.open(reference).convert("RGB")), dtype=np.int16)
    assert np.abs(np.asarray(Image.open(tmp_path / "ref.png"), dtype=np.int16) - with_ref).max() <= 1
    inputs = ["translate", "--checkpoint", "run", "--input", root / "val" / "dog"]
    assert cli(*inputs, "--output", "refs.png", "--grid", "--domain", "cat", "--ref", root / "val" / "cat").exit_code == 0
    assert (
        cli(*inputs, "--output", "refs2.png", "--grid", "--domain", "cat", "--ref", root / "val" / "cat", "--batch-size", "2").exit_code
        == 0
    )
    grid = Image.open(tmp_path / "refs.png")
    chunked = np.asarray(Image.open(tmp_path / "refs2.png"), dtype=np.int16)  # two generator calls, one grid
    assert chunked.shape == np.asarray(grid).shape and np.abs(chunked - np.asarray(grid, dtype=np.int16)).max() <= 1
    # the rows' file names ("val_dog_0000" wider than a margin's 60 px: cut to it; a 2 px pad each side), then the
    # input + 3 references of 32 px and a 2 px pad; titles "cat ref 1" in two lines of 12 px over a row of references + 3 inputs
    assert text_pixels("val_dog_0000") > 60
    margin = 60 + 2 * 2
    assert grid.size == (margin + 4 * 34 + 2, 24 + 4 * 34 + 2)
    dog_files = sorted((root / "val" / "dog").iterdir())
    dogs = [Image.open(p).convert("RGB") for p in dog_files]
    cats = [Image.open(p).convert("RGB") for p in sorted((root / "val" / "cat").iterdir())]
    api_grid = translator.grid(dogs, domain="cat", ref=cats, names=[p.stem for p in dog_files])
    assert np.abs(np.asarray(grid, dtype=np.int16) - np.asarray(api_grid, dtype=np.int16)).max() <= 1
    assert cli(*inputs, "--output", "styles.png", "--grid", "--domain", "wild", "--num", "4").exit_code == 0
    styles = Image.open(tmp_path / "styles.png")
    lines = 1 if text_pixels("wild s0") <= 32 else 2  # a title wraps only between words
    assert styles.size == (margin + 5 * 34 + 2, 12 * lines + 3 * 34 + 2)  # input + seeds 0..3; 3 inputs
    top = 12 * lines + 2 + 34  # the second dog's row
    cell = np.asarray(styles, dtype=np.int16)[top : top + 32, margin + 2 + 34 * 3 : margin + 34 + 34 * 3]  # the second dog, seed 2
    assert np.abs(cell - np.asarray(translator(dogs[1], domain="wild", seed=2), dtype=np.int16)).max() <= 1
    # Mistakes are one-line errors.
    bad = cli(*common, "--output", "x.png", "--domain", "lion")
    assert bad.exit_code == 2 and "--domain: 'lion' is not one of cat, dog, wild" in bad.output
    bad = cli(*common, "--output", "x.png", "--to", "cat")
    assert bad.exit_code == 2 and "no such option: --to; this model takes --domain, --seed, --ref" in bad.output
    bad = cli(*common, "--output", "x.png", "--domain", "cat", "--seed", "-1")
    assert bad.exit_code == 2 and "--seed = -1 must be at least 0" in bad.output
    bad = cli(*common, "--output", "x.png", "--domain", "cat", "--ref", "nope.jpg")  # the reference is named as one
    assert bad.exit_code == 2 and "error: --ref: input 'nope.jpg' does not exist" in bad.output and not (tmp_path / "x.png").exists()
    bad = cli(*common, "--output", "several.png", "--domain", "cat", "--num", "2")
    assert bad.exit_code == 2 and "must be a folder" in bad.output
    for extra, output in ((["--seed", "3"], "rs.png"), (["--num", "3"], "rn")):  # a reference's style takes no seed
        bad = cli(*common, "--output", output, "--domain", "cat", "--ref", reference, *extra)
        assert bad.exit_code == 2 and "--ref takes the place of --seed" in bad.output and not (tmp_path / output).exists()
    bad = cli(*inputs, "--output", "r2.png", "--grid", "--ref", root / "val" / "cat")
    assert bad.exit_code == 2 and "references' domain" in bad.output
    assert cli(*common, "--output", "again.png", "--domain", "cat").exit_code == 2  # never overwritten
    # An unreadable reference in a folder stops the grid, or with --skip-bad-files is named and left out.
    import shutil

    shutil.copytree(root / "val" / "cat", tmp_path / "refs")
    (tmp_path / "refs" / "broken.jpg").write_bytes(b"not a picture")
    bad = cli(*inputs, "--output", "rb.png", "--grid", "--domain", "cat", "--ref", "refs")
    assert bad.exit_code == 2 and "--ref: " in bad.output and "broken.jpg" in bad.output and "--skip-bad-files" in bad.output
    assert not (tmp_path / "rb.png").exists()
    result = cli(*inputs, "--output", "rb.png", "--grid", "--domain", "cat", "--ref", "refs", "--skip-bad-files")
    assert result.exit_code == 0, result.output
    assert "skipped: --ref: " in result.output and "broken.jpg" in result.output
    assert Image.open(tmp_path / "rb.png").size == grid.size  # the same references as refs.png
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "broken.jpg").write_bytes(b"not a picture")
    bad = cli(*inputs, "--output", "ru.png", "--grid", "--domain", "cat", "--ref", "unreadable", "--skip-bad-files")
    assert bad.exit_code == 2 and "error: --ref: none of its 1 images can be read" in bad.output and not (tmp_path / "ru.png").exists()


def test_python_api_latent_and_reference(registry, tmp_path, cli):
    import numpy as np
    from PIL import Image

    from mdt.images import from_pil, to_pil
    from mdt.inference import load_translator

    assert cli("run", QUICKSTART, "--out", "run", *small(*TINY, v2=True)).exit_code == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # The recipe's judge and diversity metrics are computed at the end (their values: tests/test_eval.py).
    assert {"accuracy/domain_accuracy", "diversity/latent/pixel_l1"} <= set(metrics)
    translator = load_translator(tmp_path / "run", registry=registry)
    m = translator.components.method
    blond = translator.translator.domain_names.index("Blond_Hair")

    @torch.no_grad()
    def by_seed(images: torch.Tensor, domain: int, seed: int) -> torch.Tensor:
        """G_ema(x, F_ema(z, y)) with z drawn from ``seed`` alone, as mdt_stargan_v2's translator promises."""
        z = torch.randn(m.latent_dim, generator=torch.Generator().manual_seed(seed))[None]
        style = m.mapping_network_ema(z, torch.tensor([domain]))
        return m.generator_ema(images, style.expand(images.shape[0], -1))

    @torch.no_grad()
    def by_reference(images: torch.Tensor, domain: int, references: torch.Tensor) -> torch.Tensor:
        style = m.style_encoder_ema(references, torch.full((references.shape[0],), domain))
        return m.generator_ema(images, style.expand(images.shape[0], -1))

    def pixels(picture: Image.Image) -> np.ndarray:
        return np.asarray(picture, dtype=np.int16)

    picture = Image.new("RGB", (40, 40), (200, 150, 120))
    x = from_pil(picture, 32)[None]
    out = translator(picture, domain="Blond_Hair", seed=1)
    assert isinstance(out, Image.Image) and out.size == (32, 32)
    assert np.abs(pixels(out) - pixels(to_pil(by_seed(x, blond, 1)[0]))).max() <= 1
    assert np.abs(pixels(out) - pixels(to_pil(by_seed(x, blond, 2)[0]))).max() > 1  # another seed, another style
    batch = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    one_ref = translator(batch, domain="Blond_Hair", ref=batch[:1])
    assert one_ref.shape == (2, 3, 32, 32)
    assert torch.allclose(one_ref, by_reference(batch, blond, batch[:1]), atol=1e-5)
    each_ref = translator(batch, domain="Blond_Hair", ref=batch.flip(0))  # one reference per input
    expected = torch.cat([by_reference(batch[i : i + 1], blond, batch[1 - i : 2 - i]) for i in range(2)])
    assert torch.allclose(each_ref, expected, atol=1e-5)
    assert (each_ref[0] - one_ref[0]).abs().max() > 1e-3  # the references' styles differ
    with pytest.raises(MdtError, match="one reference image, or one per input"):
        translator(batch, domain="Blond_Hair", ref=torch.cat([batch, batch]))
    grid = translator.grid([picture, picture], domain="Black_Hair", num=3)
    # input + seeds 0, 1, 2 of 32 px with a 2 px pad; "Black_Hair s0" in lines of 12 pixels above two rows:
    # "Black" over "Hair s0", or over "Hair" and "s0" where those two do not fit 32 px
    lines = 2 if text_pixels("Hair s0") <= 32 else 3
    assert grid.size == (4 * 34 + 2, 12 * lines + 2 * 34 + 2)
    black = translator.translator.domain_names.index("Black_Hair")
    cells = pixels(grid)
    for row in range(2):
        for seed in range(3):
            top = 12 * lines + 2 + 34 * row
            cell = cells[top : top + 32, 36 + 34 * seed : 68 + 34 * seed]
            assert np.abs(cell - pixels(to_pil(by_seed(x, black, seed)[0]))).max() <= 1, (row, seed)
    by_references = translator.grid([picture, picture], domain="Black_Hair", ref=[picture, picture, picture])
    # input + 3 references; a row of references + 2 inputs; "Black_Hair ref 1" in three lines of 12 pixels
    assert by_references.size == (4 * 34 + 2, 36 + 3 * 34 + 2)
    cell = pixels(by_references)[72:104, 36:68]  # the first input with the first reference's style
    assert np.abs(cell - pixels(to_pil(by_reference(x, black, x)[0]))).max() <= 1


def test_a_short_source_batch_uses_as_many_pairs(registry):
    """With run.skip_bad_files, an unreadable source image leaves its batch one short: the
    step pairs its 3 sources with the first 3 references of each half of the pairs batch,
    exactly as a step given those 3 + 3 pairs does."""
    import copy

    torch.manual_seed(0)
    components = built(registry)
    source, pairs = batches(components)
    short = Batch(source.images[:-1], source.labels[:-1], 0, "source")
    half = pairs.images.shape[0] // 2
    assert short.images.shape[0] == 3 and half == 4
    chosen = torch.cat([torch.arange(3), torch.arange(half, half + 3)])
    pairs_3 = Batch(pairs.images[chosen], pairs.labels[chosen], pairs.source, pairs.role)
    twin = copy.deepcopy(components.method)
    torch.manual_seed(1)
    values = components.method.train_step([short, pairs], 0)
    torch.manual_seed(1)
    expected = twin.train_step([short, pairs_3], 0)
    assert all(math.isfinite(v) for v in values.values())
    assert values == expected
    for name, network in components.method.networks().items():  # and so are the weights it leaves
        mine, theirs = network.state_dict(), twin.networks()[name].state_dict()
        assert mine.keys() == theirs.keys()
        for key, value in mine.items():
            assert torch.equal(value, theirs[key]), (name, key)


def test_style_sizes_must_agree_and_the_check_says_so(cli, tmp_path):
    """The roles declare style_dim shared: the check compares the written and default values."""
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", "mapping_network.style_dim=8"))
    assert line.endswith(
        "method 'stargan_v2' needs one style_dim in its networks, but they have generator 16, mapping_network 8, "
        "style_encoder 16; set [networks.<role>] style_dim the same in all 3"
    ), line
    text = QUICKSTART.read_text()
    start = text.index("[networks.style_encoder]")
    (tmp_path / "r.toml").write_text(text[:start] + text[start:].replace("style_dim = 16\n", "", 1))  # its default: 64
    line = one_line_error(cli("recipe", "check", "r.toml"))
    assert "but they have generator 16, mapping_network 16, style_encoder 64" in line, line
    result = cli("run", QUICKSTART, *small(*TINY, "mapping_network.style_dim=8", v2=True))
    assert result.exit_code == 2 and "needs one style_dim in its networks" in result.output


@pytest.mark.parametrize("size", [30, 8, 48])
def test_an_image_size_its_networks_cannot_halve_is_refused_by_the_check(cli, size):
    line = one_line_error(cli("recipe", "check", QUICKSTART, "--set", f"run.image_size={size}"))
    assert line.endswith(
        f"key 'image_size' = {size}: [networks.generator] type 'stargan_v2' takes an integer that is a power of two of at least 16"
    ), line


def test_a_learning_rate_changed_on_resume_takes_effect_and_the_change_is_announced(cli, tmp_path):
    """The checkpoint's optimizer state holds the old lr and betas; a recipe that changes
    [method] says so when resumed, and trains with the new values (it used to announce
    them and keep the old)."""
    from mdt import checkpoint

    args = ["run", QUICKSTART, "--out", "run", *small(*TINY, v2=True)]
    assert cli(*args).exit_code == 0
    resumed = [a if a != "run.iterations=2" else "run.iterations=3" for a in args[4:]]
    result = cli("run", QUICKSTART, "--resume", "run", *resumed, "--set", "method.lr=0.001", "--set", "method.beta2=0.9")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert (
        "the recipe differs from the checkpoint's (step 2) (method.beta2: 0.99 -> 0.9; method.lr: 0.0004 -> 0.001; "
        "run.iterations: 2 -> 3)" in said
    ), said
    saved = checkpoint.read(tmp_path / "run" / "checkpoints" / "step_00000003.safetensors").training_state()
    for name in ("generator", "style_encoder", "discriminator"):
        group = saved.optimizers[name]["param_groups"][0]
        assert group["lr"] == 0.001 and tuple(group["betas"])[1] == 0.9, (name, group)
    # resumed again without a change: the checkpoint's values stay (and the notice compares with its recipe)
    again = cli(
        "run",
        QUICKSTART,
        "--resume",
        "run",
        *[a if a != "run.iterations=3" else "run.iterations=4" for a in resumed],
        "--set",
        "method.lr=0.001",
        "--set",
        "method.beta2=0.9",
    )
    assert again.exit_code == 0, again.output
    assert "(run.iterations: 3 -> 4)" in " ".join(again.output.split())
