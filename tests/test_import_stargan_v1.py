"""`mdt import stargan-v1`: official-layout weights give the official network's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_image
from PIL import Image
from torch import nn

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def official_generator(labels: int, width: int = 16, blocks: int = 2) -> nn.Module:
    """StarGAN's generator in the official key layout (``main.N``), built from the paper's table."""

    def norm(c):
        return nn.InstanceNorm2d(c, affine=True, track_running_stats=True)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.main = nn.Sequential(
                nn.Conv2d(c, c, 3, 1, 1, bias=False), norm(c), nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False), norm(c)
            )

        def forward(self, x):
            return x + self.main(x)

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [nn.Conv2d(3 + labels, width, 7, 1, 3, bias=False), norm(width), nn.ReLU()], width
            for _ in range(2):
                layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), norm(2 * c), nn.ReLU()]
                c *= 2
            layers += [Block(c) for _ in range(blocks)]
            for _ in range(2):
                layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), norm(c // 2), nn.ReLU()]
                c //= 2
            layers += [nn.Conv2d(c, 3, 7, 1, 3, bias=False), nn.Tanh()]
            self.main = nn.Sequential(*layers)

        def forward(self, x, c):
            return self.main(torch.cat([x, c[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1))

    return Generator()


def official_discriminator(labels: int, size: int, width: int = 8, repeat: int = 4) -> nn.Module:
    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.01)], width
            for _ in range(1, repeat):
                layers += [nn.Conv2d(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.01)]
                c *= 2
            self.main = nn.Sequential(*layers)
            self.conv1 = nn.Conv2d(c, 1, 3, 1, 1, bias=False)
            self.conv2 = nn.Conv2d(c, labels, size // 2**repeat, bias=False)

        def forward(self, x):
            h = self.main(x)
            return self.conv1(h), self.conv2(h).flatten(1)

    return Discriminator()


@pytest.fixture
def official(tmp_path):
    torch.manual_seed(0)
    generator, discriminator = official_generator(len(ATTRS)), official_discriminator(len(ATTRS), 64)
    generator.train()
    with torch.no_grad():  # non-trivial running statistics and affine parameters, as after training
        for module in generator.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    torch.save(generator.state_dict(), tmp_path / "200000-G.ckpt")
    torch.save(discriminator.state_dict(), tmp_path / "200000-D.ckpt")
    return generator, discriminator, tmp_path


def test_imported_weights_reproduce_the_official_outputs(official, cli, tmp_path):
    generator, discriminator, folder = official
    result = cli(
        "import",
        "stargan-v1",
        "--generator",
        folder / "200000-G.ckpt",
        "--discriminator",
        folder / "200000-D.ckpt",
        "--attrs",
        ",".join(ATTRS),
        "--image-size",
        "64",
        "--out",
        "imported",
    )
    assert result.exit_code == 0, result.output
    from mdt.inference import load_translator

    translator = load_translator(tmp_path / "imported")
    assert translator.step == 200000
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    # The official test loop never calls G.eval(): instance statistics are used.
    target = torch.tensor([[0.0, 1, 0, 1, 1]] * 3)
    with torch.no_grad():
        expected = generator(x, target)
        ours = translator(x, to={"Blond_Hair": 1}, known={"Black_Hair": 1, "Male": 1, "Young": 1})
    assert (ours - expected).abs().max().item() <= 1e-5
    with torch.no_grad():
        reference_logits = discriminator(x)[1]
        labels = translator.translator.read_labels(x, 0)
    # D's reading: independent attributes by sign; the hair colours keep only the most likely one.
    assert labels[:, 3:].tolist() == (reference_logits[:, 3:] > 0).float().tolist()
    hair = reference_logits[:, :3]
    expected_hair = torch.nn.functional.one_hot(hair.argmax(1), 3).float() * (hair.max(1, keepdim=True).values > 0)
    assert labels[:, :3].tolist() == expected_hair.tolist()


def test_translate_cli_with_imported_weights_matches_the_official_pipeline(official, cli, tmp_path):
    generator, _, folder = official
    cli(
        "import",
        "stargan-v1",
        "--generator",
        folder / "200000-G.ckpt",
        "--attrs",
        ",".join(ATTRS),
        "--image-size",
        "64",
        "--out",
        "imported",
    )
    photo = random_image(tmp_path / "face.png", 90, 110, seed=5)
    result = cli(
        "translate",
        "--checkpoint",
        "imported",
        "--input",
        photo,
        "--output",
        "out.png",
        "--crop",
        "80",
        "--to",
        "Blond_Hair",
        "--from",
        "Black_Hair,Male=0,Young",
    )
    assert result.exit_code == 0, result.output
    # The official pipeline: centre crop, bilinear resize, [-1, 1]; then denormalise to 8 bits.
    picture = Image.open(photo).convert("RGB")
    left, top = round((90 - 80) / 2), round((110 - 80) / 2)
    picture = picture.crop((left, top, left + 80, top + 80)).resize((64, 64), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float()[None] / 127.5 - 1
    with torch.no_grad():
        expected = generator(x, torch.tensor([[0.0, 1, 0, 0, 1]]))[0]
    expected = ((expected.clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    ours = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).astype(np.float64)
    assert np.abs(ours - expected).max() <= 1  # 8-bit rounding only


def test_without_discriminator_the_source_labels_must_be_given(official, cli, tmp_path):
    _, _, folder = official
    cli(
        "import",
        "stargan-v1",
        "--generator",
        folder / "200000-G.ckpt",
        "--attrs",
        ",".join(ATTRS),
        "--image-size",
        "64",
        "--out",
        "imported",
    )
    photo = random_image(tmp_path / "face.png", 64, 64, seed=1)
    result = cli("translate", "--checkpoint", "imported", "--input", photo, "--output", "o.png", "--to", "Male")
    assert result.exit_code == 2 and "no discriminator" in result.output and "--from" in result.output


@pytest.mark.parametrize(
    "damage,expected",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "cannot read generator checkpoint"),
        (lambda p: p.write_text("hello"), "it is not a file that torch.save writes"),
        (lambda p: Image.new("RGB", (4, 4)).save(p, format="PNG"), "it is not a file that torch.save writes"),
        (lambda p: torch.save({"conv.weight": torch.zeros(1)}, p), "not an official StarGAN generator"),
        (lambda p: p.unlink(), "does not exist"),
    ],
    ids=["truncated", "not-torch", "an-image", "wrong-layout", "missing"],
)
def test_a_wrong_or_truncated_file_is_one_line(official, cli, damage, expected):
    _, _, folder = official
    damage(folder / "200000-G.ckpt")
    result = cli("import", "stargan-v1", "--generator", folder / "200000-G.ckpt", "--attrs", ",".join(ATTRS), "--out", "imported")
    assert result.exit_code == 2 and expected in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_pickled_object_is_refused_without_running_it(tmp_path, cli):
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with open(tmp_path / "evil-G.ckpt", "wb") as f:
        pickle.dump({"main.0.weight": Boom()}, f)
    result = cli("import", "stargan-v1", "--generator", tmp_path / "evil-G.ckpt", "--attrs", "A", "--out", "x")
    assert result.exit_code == 2 and not (tmp_path / "pwned").exists()


def test_label_count_mismatch(official, cli):
    _, _, folder = official
    result = cli("import", "stargan-v1", "--generator", folder / "200000-G.ckpt", "--attrs", "Male,Young", "--out", "imported")
    assert result.exit_code == 2 and "trained with 5 labels, but --attrs names 2" in result.output
