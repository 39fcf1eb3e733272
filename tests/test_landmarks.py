"""StarGAN v2's face-landmark masks: the FAN network's file layout and the masks' construction."""

from __future__ import annotations

import pytest
import torch
from mdt_stargan_v2.landmarks import FaceAlignmentNetwork, landmark_masks

from mdt.errors import MdtError

# Names of some tensors in StarGAN v2's wing.ckpt (its "state_dict").
WING_NAMES = [
    "conv1.conv.weight",
    "bn1.running_var",
    "conv2.downsample.2.weight",
    "m0.coordconv.conv.weight",
    "m0.b2_plus_1.conv3.weight",
    "m0.b3_4.bn1.weight",
    "top_m_0.conv1.weight",
    "conv_last0.bias",
    "bn_end0.weight",
    "l0.weight",
]


def random_landmark_file(path):
    torch.manual_seed(0)
    network = FaceAlignmentNetwork()
    torch.save({"state_dict": network.state_dict()}, path)
    return path


def test_the_network_has_the_published_layout_and_loads_its_file(tmp_path):
    network = FaceAlignmentNetwork()
    state = network.state_dict()
    assert all(name in state for name in WING_NAMES)
    assert state["conv1.conv.weight"].shape == (64, 6, 7, 7)  # RGB + row, column and radius planes
    assert state["m0.coordconv.conv.weight"].shape == (256, 259, 1, 1)
    assert state["l0.weight"].shape == (99, 256, 1, 1)  # 98 landmarks and a boundary map
    loaded = FaceAlignmentNetwork.from_file(random_landmark_file(tmp_path / "wing.ckpt"))
    saved = torch.load(tmp_path / "wing.ckpt", weights_only=True)["state_dict"]
    assert loaded.state_dict().keys() == saved.keys()
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name  # the file's tensors, every one
    assert not loaded.training  # batch norm from the file's running statistics
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    heatmaps = loaded.heatmaps(images)
    assert heatmaps.shape == (2, 98, 256, 256)
    # The same network built by hand from the file: images scaled to 256 px and to [0, 1],
    # the 98 landmark maps (not the boundary map), from 64 px back up to 256.
    network = FaceAlignmentNetwork()
    network.load_state_dict(saved)
    with torch.no_grad():
        maps = network.eval()(torch.nn.functional.interpolate(images, size=256, mode="bilinear") * 0.5 + 0.5)[:, :98]
        expected = torch.nn.functional.interpolate(maps, size=256, mode="bilinear", align_corners=True)
    torch.testing.assert_close(heatmaps, expected, rtol=1e-4, atol=1e-5)
    whole, inner = loaded.masks(images)
    assert whole.shape == inner.shape == (2, 1, 256, 256)
    assert float(whole.min()) >= 0 and float(whole.max()) <= 1
    expected_whole, expected_inner = landmark_masks(expected)
    torch.testing.assert_close(whole, expected_whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(inner, expected_inner, rtol=1e-4, atol=1e-5)
    assert float(whole.max()) > 0  # masks of something, not of nothing


def test_a_wrong_file_is_refused(tmp_path):
    torch.save({"state_dict": {"conv1.conv.weight": torch.zeros(1)}}, tmp_path / "bad.ckpt")
    with pytest.raises(MdtError, match="not the FAN landmark network"):
        FaceAlignmentNetwork.from_file(tmp_path / "bad.ckpt")


def test_masks_move_and_keep_parts_as_the_paper_does():
    """One landmark at a time, one bright pixel: where it lands in the two masks."""

    def masks_of(landmark: int):
        heatmaps = torch.zeros(1, 98, 256, 256)
        heatmaps[0, landmark, 100, 50] = 1.0
        whole, inner = landmark_masks(heatmaps)
        return {tuple(p) for p in whole[0, 0].nonzero().tolist()}, {tuple(p) for p in inner[0, 0].nonzero().tolist()}

    # An eye (landmark 60): 8 and 24 rows down, in both masks.
    assert masks_of(60) == ({(108, 50), (124, 50)}, {(108, 50), (124, 50)})
    # A brow (landmark 40): 7 rows down; not in the inner mask.
    assert masks_of(40) == ({(107, 50)}, set())
    # A nostril (landmark 56): 8 rows up.
    assert masks_of(56) == ({(92, 50)}, {(92, 50)})
    # The outer jaw line (landmark 2) and the brows' outer ends (33) are dropped.
    assert masks_of(2) == (set(), set()) and masks_of(33) == (set(), set())
    # The nose bridge below its top (landmark 52): 4 rows up.
    assert masks_of(52) == ({(96, 50)}, {(96, 50)})


def test_training_a_high_pass_generator_uses_the_landmark_network(cli, tmp_path):
    import tomllib

    from conftest import REPO, small
    from test_recipe_errors import one_line_error

    from mdt.toml_text import dump_toml

    data = tomllib.loads((REPO / "recipes" / "stargan_v2_quickstart.toml").read_text())
    data.pop("metrics")  # every translation runs the landmark network at 256 px: keep the test short
    recipe = tmp_path / "high_pass.toml"
    recipe.write_text(dump_toml(data))
    args = small(
        "datasets.faces.size=8",
        "datasets.faces.test_size=2",
        "generator.high_pass=1.0",
        "run.batch_size=2",
        "run.iterations=1",
        "run.sample_count=1",
        "run.checkpoint_every=1",
        v2=True,
    )
    line = one_line_error(cli("run", recipe, "--out", "without", *args))
    assert "face-landmark masks" in line and "landmark_weights" in line
    assert line.startswith(f"error: {recipe}: [method] this generator uses face-landmark masks"), line  # the recipe's table named
    assert not (tmp_path / "without").exists()  # refused before anything was written
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    line = one_line_error(cli("run", recipe, "--out", "bad", *args, "--set", "method.landmark_weights='bad.ckpt'"))
    assert line.startswith(f"error: {recipe}: [method] ") and "bad.ckpt" in line, line
    line = one_line_error(cli("run", recipe, "--out", "missing", *args, "--set", "method.landmark_weights='nowhere/wing.ckpt'"))
    assert "nowhere/wing.ckpt" in line and "does not exist" in line
    wing = random_landmark_file(tmp_path / "wing.ckpt")
    result = cli("run", recipe, "--out", "with", *args, "--set", f"method.landmark_weights='{wing}'")
    assert result.exit_code == 0, result.output
