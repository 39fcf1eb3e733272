"""The speed switches change speed, not results: cache, bf16 autocast, batched D."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import REPO, small
from mdt.cache import ImageCache
from mdt.data import Batch
from mdt.logbook import read_log


class CountingDataset:
    """Items like a file dataset's; counts how often an image is decoded."""

    def __init__(self, broken: int | None = None) -> None:
        from mdt.labels import LabelSchema

        self.schema = LabelSchema("counting", ("a",))
        self.decoded = 0
        self.broken = broken

    def __len__(self):
        return 6

    def __getitem__(self, index):
        self.decoded += 1
        if index == self.broken:
            return {"error": f"cannot read image 'img{index}.jpg'"}
        return {"image": torch.full((3, 4, 4), index, dtype=torch.uint8), "label": torch.tensor([float(index % 2)])}


def test_the_cache_decodes_each_image_once(tmp_path):
    dataset = CountingDataset()
    cache = ImageCache(dataset, tmp_path, "counting")
    first = [cache[i] for i in range(6)]
    decoded_in_first_epoch = dataset.decoded
    second = [cache[i] for i in range(6)]
    assert dataset.decoded == decoded_in_first_epoch  # later epochs read the cache
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    reopened = ImageCache(CountingDataset(), tmp_path, "counting")  # a resumed run reuses the files
    assert torch.equal(reopened[3]["image"], first[3]["image"])


def test_the_cache_never_stores_a_bad_file(tmp_path):
    cache = ImageCache(CountingDataset(broken=2), tmp_path, "broken")
    assert "error" in cache[2] and "error" in cache[2]


def test_batched_discriminator_gives_the_same_loss_and_gradients(registry, tmp_path):
    """D on cat(real, fake) must equal separate calls (D has no batch statistics)."""
    from mdt_stargan.method import StepState
    from test_components import built

    components = built(registry, tmp_path)
    method = components.method
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    batch = Batch(components.augmentation(raw, train=False), labels, 0)
    targets = labels.flip(0)
    torch.manual_seed(0)
    state = StepState("discriminator", method, batch, targets)
    together = (state.real_scores, state.fake_scores, state.real_logits)
    with torch.no_grad():
        real_scores, real_logits = method.discriminator(batch.images)
        fake_scores, _ = method.discriminator(state.fake)
    torch.testing.assert_close(together[0], real_scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[1], fake_scores, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(together[2], real_logits, rtol=1e-5, atol=1e-6)


def test_bf16_training_runs_with_finite_fp32_losses(cli, tmp_path):
    args = small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2",
                 "run.precision=bf16", "run.cache_images=true")
    result = cli("run", REPO / "recipes" / "quickstart.toml", "--out", "run", *args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "cache" / "faces.images").is_file()
    losses = [r for r in read_log(tmp_path / "run" / "log.jsonl") if r["event"] == "train"]
    assert losses and all(math.isfinite(v) for r in losses for k, v in r.items() if k.startswith(("D/", "G/")))


def one_update_in(precision: str, registry):
    """One D and one G update of the quickstart's networks from the same weights and batch:
    the losses, and the dtype of each network call's output, with whether its input is
    a leaf needing a gradient (only the gradient penalty's mixed images are)."""
    from mdt.build import build
    from mdt.recipe import load_recipe

    overrides = ["run.image_size=32", "generator.conv_dim=8", "generator.residual_blocks=1", "discriminator.conv_dim=8",
                 "discriminator.layers=3", "datasets.faces.size=8", "datasets.faces.test_size=2", f"run.precision={precision}"]
    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry)
    torch.manual_seed(0)
    method = build(recipe, registry).method
    seen = []  # (network, whether its input is a leaf needing a gradient, its first output's dtype)

    def record(module, inputs, output, role):
        first = output[0] if isinstance(output, tuple) else output
        seen.append((role, inputs[0].requires_grad and inputs[0].is_leaf, first.dtype))

    for role in ("generator", "discriminator"):
        getattr(method, role).register_forward_hook(lambda m, i, o, role=role: record(m, i, o, role))
    torch.manual_seed(1)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]])
    batch = Batch(images, labels, 0)
    losses = {}
    for phase in ("discriminator", "generator"):
        torch.manual_seed(2)
        losses.update({k: float(v) for k, v in method._update(phase, batch, labels.flip(0)).items()})
    penalty_grads = [p.grad.dtype for p in method.discriminator.parameters() if p.grad is not None]
    return losses, seen, penalty_grads


def test_bf16_runs_networks_in_bf16_and_the_penalty_and_losses_in_fp32(registry):
    fp32, _, _ = one_update_in("fp32", registry)
    bf16, seen, grads = one_update_in("bf16", registry)
    assert {dtype for role, mixed, dtype in seen if role == "generator"} == {torch.bfloat16}
    assert any(mixed for role, mixed, dtype in seen if role == "discriminator")
    assert {dtype for role, mixed, dtype in seen if role == "discriminator" and not mixed} == {torch.bfloat16}
    # The gradient penalty differentiates D at the mixed images: that forward stays fp32.
    assert {dtype for role, mixed, dtype in seen if mixed} == {torch.float32}
    assert grads and set(grads) == {torch.float32}
    assert fp32.keys() == bf16.keys()
    for name, value in fp32.items():
        assert bf16[name] == pytest.approx(value, rel=0.05, abs=0.02), name


def test_precision_must_be_known(cli):
    result = cli("recipe", "check", REPO / "recipes" / "quickstart.toml", "--set", "run.precision=fp8")
    assert result.exit_code == 2 and "expected one of \"fp32\", \"bf16\"" in result.output


def test_compiling_the_generator_keeps_the_discriminator_gradients(registry):
    """Compilation must never touch the penalty's double backward: D's gradients agree."""
    from mdt.build import build
    from mdt.recipe import load_recipe

    grads = []
    for compiled in (False, True):
        overrides = ["run.image_size=16", "generator.conv_dim=4", "generator.residual_blocks=1", "discriminator.conv_dim=4",
                     "discriminator.layers=2", "datasets.faces.size=8", "datasets.faces.test_size=2",
                     f"run.compile_generator={'true' if compiled else 'false'}"]
        recipe = load_recipe(REPO / "recipes" / "quickstart.toml", overrides, registry)
        torch.manual_seed(0)
        components = build(recipe, registry)
        method = components.method
        assert (getattr(method.generator, "_compiled_call_impl", None) is not None) == compiled
        assert getattr(method.discriminator, "_compiled_call_impl", None) is None
        raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
        labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
        batch = Batch(components.augmentation(raw, train=False), labels, 0)
        torch.manual_seed(1)
        method._update("discriminator", batch, labels.flip(0))
        grads.append({n: p.grad.clone() for n, p in method.discriminator.named_parameters()})
        assert set(method.generator.state_dict()) == set(components.method.networks()["generator"].state_dict())
        assert not any(k.startswith("_orig_mod") for k in method.generator.state_dict())
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5, msg=name)
