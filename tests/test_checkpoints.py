"""Checkpoints never lose work: safetensors only, exact resume, crash safety."""

from __future__ import annotations

import io
import json
import re
import types

import pytest
import torch
from conftest import REPO, small
from rich.console import Console
from test_recipe_errors import one_line_error

import mdt
from mdt import checkpoint as ckpt
from mdt.engine import train
from mdt.errors import MdtError
from mdt.logbook import read_log
from mdt.loss import Loss
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe

QUICKSTART = REPO / "recipes" / "quickstart.toml"
TINY = [
    "run.batch_size=4",
    "run.image_size=32",
    "run.sample_every=100",
    "run.sample_count=2",
    "run.log_every=1",
    "run.deterministic=true",
    "run.threads=1",
    "generator.conv_dim=8",
    "generator.residual_blocks=1",
    "discriminator.conv_dim=8",
    "discriminator.layers=3",
    "datasets.faces.size=32",
    "datasets.faces.test_size=4",
    "method.decay_iterations=4",
    "method.d_steps_per_g=2",
]


def tiny_recipe(registry, *extra):
    recipe = load_recipe(QUICKSTART, [*TINY, *extra], registry)
    recipe.data.pop("metrics")
    return recipe


def test_resume_gives_the_same_losses_and_weights(registry, tmp_path):
    straight = tmp_path / "straight"
    train(tiny_recipe(registry, "run.iterations=8", "run.checkpoint_every=4"), registry, straight)

    split = tmp_path / "split"
    train(tiny_recipe(registry, "run.iterations=8", "run.checkpoint_every=4"), registry, split)
    # As if killed after the step-4 checkpoint: the rest of that run never happened.
    (split / "checkpoints" / "step_00000008.safetensors").unlink()
    said = io.StringIO()
    train(
        tiny_recipe(registry, "run.iterations=8", "run.checkpoint_every=4"),
        registry,
        split,
        resume=True,
        console=Console(file=said, width=400),
    )
    shown = [line.split()[1] for line in said.getvalue().splitlines() if line.startswith("step ")]
    assert f"resuming {split} from step 4 (step_00000004.safetensors)" in said.getvalue()
    assert shown == ["5/8", "6/8", "7/8", "8/8"]  # the remaining steps only, not a retraining from 0
    assert [r["step"] for r in read_log(split / "log.jsonl") if r["event"] == "train"] == list(range(1, 9))

    a = ckpt.read(straight / "checkpoints" / "step_00000008.safetensors")
    b = ckpt.read(split / "checkpoints" / "step_00000008.safetensors")
    assert a.tensors.keys() == b.tensors.keys()
    for name in a.tensors:
        torch.testing.assert_close(a.tensors[name], b.tensors[name], rtol=1e-5, atol=1e-6, msg=name)
    losses_a = {r["step"]: r for r in read_log(straight / "log.jsonl") if r["event"] == "train"}
    losses_b = {r["step"]: r for r in read_log(split / "log.jsonl") if r["event"] == "train"}  # later records win
    for step in range(5, 9):
        for key, value in losses_a[step].items():
            if key in ("time", "it_per_s"):
                continue
            if isinstance(value, float):
                assert losses_b[step][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (step, key)
            else:
                assert losses_b[step][key] == value, (step, key)


def test_checkpoint_contents(registry, tmp_path):
    train(tiny_recipe(registry, "run.iterations=2", "run.checkpoint_every=1", "run.keep_checkpoints=1"), registry, tmp_path / "run")
    files = ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [f.name for f in files] == ["step_00000002.safetensors"]  # keep_checkpoints = 1
    saved = ckpt.read(files[0])
    assert saved.step == 2 and saved.metadata["mdt_version"] == mdt.__version__
    assert 'type = "stargan"' in saved.recipe_text
    assert any(k.startswith("optim/generator/") for k in saved.tensors)
    assert json.loads(saved.metadata["optimizers"])["generator"]["param_groups"][0]["betas"] == [0.5, 0.999]
    assert {"rng/torch", "rng/numpy"} <= set(saved.tensors)
    # Two iterations with d_steps_per_g = 2 (TINY): D updated at both, G at the second
    # only. Adam's step counter says so for every parameter, and its moments have the
    # parameters' shapes.
    from mdt.build import build

    optimizers = saved.training_state().optimizers
    networks = build(tiny_recipe(registry, "run.iterations=2"), registry).method.networks()  # the order the optimizers take
    for role, updates in (("generator", 1), ("discriminator", 2)):
        parameters = [saved.network(role)[name] for name, _ in networks[role].named_parameters()]
        state = optimizers[role]["state"]
        assert sorted(state) == list(range(len(parameters))), role
        for index, parameter in enumerate(parameters):
            assert float(state[index]["step"]) == updates, (role, index)
            assert state[index]["exp_avg"].shape == parameter.shape and state[index]["exp_avg_sq"].shape == parameter.shape
    with open(files[0], "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        json.loads(f.read(header_size))  # a plain safetensors header: JSON, no pickle


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "step_00000001.safetensors"
    ckpt.write(path, {"w": torch.ones(3)}, {"step": "1"})
    before = path.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", broken)
    with pytest.raises(OSError):
        ckpt.write(path, {"w": torch.zeros(3)}, {"step": "1"})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _nan_plugin(after: int, poison: float = float("nan")):
    plugin = types.ModuleType("nan_plugin")

    class NaNAfter(Loss):
        """A loss that turns NaN (or infinite) after a number of calls."""

        reads = {"discriminator": ("real_scores",)}

        def __init__(self, weight: float = 1.0) -> None:
            super().__init__(weight)
            self.calls = 0

        def __call__(self, phase, state):
            self.calls += 1
            value = state.real_scores.mean() * 0
            return (value + poison if self.calls > after else value), {}

    @mdt.hookimpl
    def register_components(register):
        register("loss", "nan_after", NaNAfter)

    plugin.register_components = register_components
    return plugin


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, poison):
    registry = load_plugins(extra={"nan_plugin": _nan_plugin(after=3, poison=poison)}).registry
    recipe = tiny_recipe(registry, "run.iterations=6", "run.checkpoint_every=2")
    recipe.data["losses"]["poison"] = {"type": "nan_after"}
    with pytest.raises(MdtError) as caught:
        train(recipe, registry, tmp_path / "run")
    message = str(caught.value)
    assert f"loss 'D/poison' is {poison} at step 4" in message and "step_00000002.safetensors is untouched" in message
    assert message.endswith("; a learning rate or loss weight set too high is the usual cause (mdt recipe show lists them)")
    files = [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()]
    assert files == ["step_00000002.safetensors"]
    assert ckpt.read(tmp_path / "run" / "checkpoints" / files[0]).step == 2


def test_a_checkpoint_that_does_not_fit_is_refused(registry, tmp_path, cli):
    train(tiny_recipe(registry, "run.iterations=1"), registry, tmp_path / "run")
    saved = ckpt.read(tmp_path / "run" / "checkpoints" / "step_00000001.safetensors")
    wider = tiny_recipe(registry, "run.iterations=1", "generator.conv_dim=16")
    from mdt.build import build
    from mdt.weights import load_network

    components = build(wider, registry)
    with pytest.raises(MdtError) as caught:
        load_network(components.method.generator, saved.network("generator"), "generator", "ck.safetensors")
    found = re.search(
        r"generator tensor '[\w.]+' has shape \(([\d, ]+)\) in the checkpoint but \(([\d, ]+)\) in the recipe", str(caught.value)
    )
    assert found and "8" in found.group(1).split(", ") and "16" in found.group(2).split(", ")  # conv_dim 8 saved, 16 asked
    # Resuming a run with a recipe whose labels differ: one line, nothing written.
    result = cli(
        "run", QUICKSTART, "--resume", tmp_path / "run", *small(*TINY[5:], "run.iterations=2", 'datasets.faces.attributes=["Glasses"]')
    )
    line = one_line_error(result)  # nothing said of resuming before the refusal
    assert "the run was trained with the labels" in line and "faces: Glasses" in line


def test_checkpoint_info(registry, tmp_path, cli):
    train(tiny_recipe(registry, "run.iterations=2"), registry, tmp_path / "run")
    result = cli("checkpoint", "info", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "step 2" in result.output and "[networks.generator] ganimation" in result.output  # the quickstart's attention generator
    assert "optim/generator" in result.output and "generator" in result.output


def test_a_file_that_is_not_a_checkpoint(tmp_path, cli):
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    result = cli("checkpoint", "info", tmp_path / "junk.safetensors")
    assert result.exit_code == 2 and "not a readable safetensors checkpoint" in result.output


def test_no_code_path_unpickles():
    offenders = []
    for folder in ("mdt", "plugins"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            offenders += [
                f"{path}: {match.group(0)}"
                for match in re.finditer(r"torch\.load\(([^)]*)\)", text)
                if "weights_only=True" not in match.group(1)
            ]
            if re.search(r"^\s*(import pickle|from pickle|import cloudpickle|import dill)", text, re.M):
                offenders.append(f"{path}: imports pickle")
    assert not offenders


def test_a_method_state_with_tensors_round_trips(tmp_path):
    """A method may keep tensors in its state (CycleGAN's pool of earlier fakes)."""
    from mdt.labels import LabelSchema

    pool = {"fakes": [torch.rand(2, 3, 4, 4), torch.rand(1, 3, 4, 4)], "count": 3, "name": "a"}
    training = ckpt.TrainingState(optimizers={}, method_state={"pool": pool, "last": {"G/total": 1.5}}, streams=[4])
    path = ckpt.save_model(
        tmp_path / "step_00000001.safetensors",
        networks={"g": {"w": torch.ones(2)}},
        step=1,
        recipe="",
        schemas=[LabelSchema("d", ("a",))],
        training=training,
    )
    state = ckpt.read(path).training_state().method_state
    assert state["last"] == {"G/total": 1.5} and state["pool"]["count"] == 3 and state["pool"]["name"] == "a"
    assert [t.shape for t in state["pool"]["fakes"]] == [(2, 3, 4, 4), (1, 3, 4, 4)]
    assert all(torch.equal(a, b) for a, b in zip(state["pool"]["fakes"], pool["fakes"], strict=True))
    assert ckpt.read(path, training=False).network_names() == ["g"]  # the state is no network
