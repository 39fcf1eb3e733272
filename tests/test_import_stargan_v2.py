"""``mdt import stargan-v2``: official *_nets_ema.ckpt layout in, identical translations out."""

from __future__ import annotations

import official_stargan_v2 as official
import pytest
import torch
from mdt_stargan_v2.networks import MappingNetwork, StarGANv2Generator, StyleEncoder

from mdt.inference import load_translator

# Names the official code gives some tensors of the AFHQ model (256 px, 3 domains).
OFFICIAL_NAMES = {
    "generator": [
        "from_rgb.weight",
        "encode.0.conv1x1.weight",
        "encode.0.norm1.weight",
        "decode.0.norm1.fc.weight",
        "decode.5.conv1x1.weight",
        "to_rgb.0.weight",
        "to_rgb.2.weight",
    ],
    "mapping_network": ["shared.0.weight", "shared.6.weight", "unshared.2.0.weight", "unshared.2.6.weight"],
    "style_encoder": ["shared.0.weight", "shared.1.conv1x1.weight", "shared.8.weight", "unshared.2.weight"],
}


def test_state_dicts_use_the_official_names():
    networks = {
        "generator": StarGANv2Generator(image_size=256),
        "mapping_network": MappingNetwork(num_classes=3),
        "style_encoder": StyleEncoder(image_size=256, num_classes=3),
    }
    for name, keys in OFFICIAL_NAMES.items():
        state = networks[name].state_dict()
        assert all(k in state for k in keys), [k for k in keys if k not in state]
    assert "high_pass_kernel" not in networks["generator"].state_dict()  # not a tensor of the official files


def official_file(tmp_path, prefix: str = "", high_pass: float = 0.0, filter_buffer: bool = False):
    """A small model saved as the official code saves one, its networks built by
    tests/official_stargan_v2.py (not by mdt)."""
    torch.manual_seed(0)
    networks = {
        "generator": official.Generator(32, style_dim=8, max_width=16, high_pass=high_pass, first_width=8),
        "mapping_network": official.MappingNetwork(latent_dim=4, style_dim=8, domains=3, hidden=16),
        "style_encoder": official.StyleEncoder(32, style_dim=8, domains=3, max_width=16, first_width=8),
    }
    for network in networks.values():  # the norms' affine parameters away from their 1 and 0 start
        for name, tensor in network.state_dict().items():
            if "norm" in name or "to_rgb.0" in name:
                tensor.copy_(torch.randn_like(tensor) * 0.3 + (1.0 if name.endswith("weight") else 0.0))
    saved = {name: {prefix + k: v for k, v in n.state_dict().items()} for name, n in networks.items()}
    if filter_buffer:  # the official code's later versions keep the high-pass filter as a buffer
        saved["generator"][prefix + "hpf.filter"] = torch.tensor([[-1.0, -1, -1], [-1, 8, -1], [-1, -1, -1]]) / high_pass
    path = tmp_path / "100000_nets_ema.ckpt"
    torch.save(saved, path)
    return path, networks


@pytest.mark.parametrize("high_pass", [0.0, 1.0])
def test_mdt_networks_have_the_official_tensors_at_full_size(high_pass):
    ours = {
        "generator": StarGANv2Generator(image_size=256, high_pass=high_pass),
        "mapping_network": MappingNetwork(num_classes=3),
        "style_encoder": StyleEncoder(image_size=256, num_classes=3),
    }
    theirs = {
        "generator": official.Generator(256, style_dim=64, max_width=512, high_pass=high_pass),
        "mapping_network": official.MappingNetwork(latent_dim=16, style_dim=64, domains=3),
        "style_encoder": official.StyleEncoder(256, style_dim=64, domains=3, max_width=512),
    }
    for name, network in ours.items():
        mine = {k: tuple(v.shape) for k, v in network.state_dict().items()}
        official_shapes = {k: tuple(v.shape) for k, v in theirs[name].state_dict().items()}
        assert mine == official_shapes, name


def test_round_trip_gives_the_same_translations(cli, tmp_path, registry):
    path, nets = official_file(tmp_path, prefix="module.")  # as saved from DataParallel
    result = cli("import", "stargan-v2", path, "--out", "imported", "--image-size", "32")
    assert result.exit_code == 0, result.output
    translator = load_translator(tmp_path / "imported", registry=registry)
    assert translator.step == 100000 and translator.label_names == [("cat", "dog", "wild")]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    for network in nets.values():
        network.eval()
    with torch.no_grad():
        z = torch.randn(4, generator=torch.Generator().manual_seed(7))[None]
        expected = nets["generator"](images, nets["mapping_network"](z, torch.tensor([1])).expand(2, -1))
        assert torch.allclose(translator(images, domain="dog", seed=7), expected, atol=1e-5)
        reference = images[1:]
        expected = nets["generator"](images, nets["style_encoder"](reference, torch.tensor([2])).expand(2, -1))
        assert torch.allclose(translator(images, domain="wild", ref=reference), expected, atol=1e-5)


def test_imports_name_domains_and_refuse_bad_files(cli, tmp_path):
    path, _ = official_file(tmp_path)
    result = cli("import", "stargan-v2", path, "--out", "a", "--image-size", "32", "--domains", "x,y")
    assert result.exit_code == 2 and "has 3 domains, but --domains names 2" in result.output
    assert cli("import", "stargan-v2", path, "--out", "a", "--image-size", "32", "--domains", "x,y,z").exit_code == 0
    named = load_translator(tmp_path / "a")
    assert named.label_names == [("x", "y", "z")] and named.translator.domain_names == ("x", "y", "z")
    again = cli("import", "stargan-v2", path, "--out", "a", "--image-size", "32")
    assert again.exit_code == 2 and "exists" in again.output  # never overwritten

    missing = cli("import", "stargan-v2", tmp_path / "nope.ckpt", "--out", "b")
    assert missing.exit_code == 2 and "does not exist" in missing.output

    torch.save({"generator": {}}, tmp_path / "partial.ckpt")
    partial = cli("import", "stargan-v2", tmp_path / "partial.ckpt", "--out", "b")
    assert partial.exit_code == 2 and "expected generator, mapping_network, style_encoder" in partial.output

    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    with open(tmp_path / "pickled.ckpt", "wb") as f:
        pickle.dump({"generator": Boom()}, f)
    pickled = cli("import", "stargan-v2", tmp_path / "pickled.ckpt", "--out", "b")
    assert pickled.exit_code == 2 and "cannot read" in pickled.output and not (tmp_path / "pwned").exists()

    saved = torch.load(path, weights_only=True)
    saved["generator"]["to_rgb.2.weight"] = torch.zeros(3, 5, 1, 1)
    torch.save(saved, tmp_path / "shape.ckpt")
    shape = cli("import", "stargan-v2", tmp_path / "shape.ckpt", "--out", "c", "--image-size", "32")
    assert shape.exit_code == 2 and "to_rgb.2.weight" in shape.output


def test_a_landmark_model_needs_the_landmark_network_and_works_with_it(cli, tmp_path, registry):
    from test_landmarks import random_landmark_file

    path, _ = official_file(tmp_path, high_pass=1.0)
    assert cli("import", "stargan-v2", path, "--out", "celeba", "--image-size", "32", "--domains", "female,male,other").exit_code == 0
    source = tmp_path / "face.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (120, 90, 60)).save(source)
    result = cli("translate", "--checkpoint", "celeba", "--input", source, "--output", "out.png", "--domain", "male")
    assert result.exit_code == 2 and "face-landmark masks" in result.output and "wing.ckpt" in result.output
    wing = random_landmark_file(tmp_path / "wing.ckpt")
    assert (
        cli(
            "import", "stargan-v2", path, "--out", "with_fan", "--image-size", "32", "--domains", "female,male,other", "--landmarks", wing
        ).exit_code
        == 0
    )
    result = cli("translate", "--checkpoint", "with_fan", "--input", source, "--output", "out.png", "--domain", "male")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.png").is_file()
    # What the Python API gives for the same request (the default style seed, 0).
    expected = load_translator(tmp_path / "with_fan", registry=registry)(Image.open(source), domain="male", seed=0)
    assert Image.open(tmp_path / "out.png").convert("RGB").tobytes() == expected.tobytes()
    bad = cli("import", "stargan-v2", path, "--out", "bad", "--image-size", "32", "--landmarks", path)
    assert bad.exit_code == 2 and "not the FAN landmark network" in bad.output
    (tmp_path / "plain").mkdir()
    plain, _ = official_file(tmp_path / "plain")
    unneeded = cli("import", "stargan-v2", plain, "--out", "plain", "--image-size", "32", "--landmarks", wing)
    assert unneeded.exit_code == 2 and "needs no landmark network" in unneeded.output


def test_the_high_pass_filter_buffer_of_later_official_files_is_read(cli, tmp_path, registry):
    path, _ = official_file(tmp_path, high_pass=2.0, filter_buffer=True)
    result = cli("import", "stargan-v2", path, "--out", "celeba", "--image-size", "32")
    assert result.exit_code == 0, result.output
    assert "high_pass = 2.0" in (tmp_path / "celeba" / "recipe.toml").read_text()
