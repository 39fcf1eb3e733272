"""The speed switches change speed, not results: cache, bf16 autocast, batched D."""

from __future__ import annotations

import torch

from conftest import REPO, small
from mdt.cache import ImageCache
from mdt.data import Batch


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
