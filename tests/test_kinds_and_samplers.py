"""Kinds and samplers are open: a plugin declares a kind, or registers a sampler that a
method asks for, exactly as mdt's own plugins do."""

from __future__ import annotations

import types

import pytest
import torch
from conftest import REPO
from mdt_datasets.samplers import DomainOrder, EpochOrder

import mdt
from mdt.engine import train
from mdt.errors import MdtError
from mdt.labels import LabelSchema
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe


def plugin(name: str, hook) -> types.ModuleType:
    module = types.ModuleType(name)
    module.register_components = mdt.hookimpl(hook)
    return module


def test_a_kind_declared_by_one_plugin_holds_components_of_another_in_any_order():
    class Brush(mdt.Network):
        """A network that paints."""

    def painter(register):
        register("painter", "brush", Brush)  # a component of a kind that "kinds" declares

    def kinds(register):
        register("kind", "painter", "networks that paint")

    host = load_plugins(extra={"a_painter": plugin("a_painter", painter), "kinds": plugin("kinds", kinds)})
    assert host.registry.get("painter", "brush").plugin == "a_painter"
    assert host.registry.kind("painter").plugin == "kinds"
    assert "painter" in host.registry.kinds and "mapping_network" in host.registry.kinds  # StarGAN v2's own


def test_a_kind_has_one_owner_and_an_unknown_kind_is_named():
    def again(register):
        register("kind", "style_encoder", "mine too")

    with pytest.raises(MdtError, match="kind 'style_encoder' is declared twice: by 'stargan_v2' and by plugin 'again'"):
        load_plugins(extra={"again": plugin("again", again)})

    def typo(register):
        register("genrator", "x", dict)

    with pytest.raises(MdtError, match=r"unknown component kind 'genrator' \(did you mean 'generator'\?\)"):
        load_plugins(extra={"typo": plugin("typo", typo)})


class Labelled:
    def __init__(self, labels, names):
        self.labels = torch.tensor(labels, dtype=torch.float32)
        self.schema = LabelSchema("toy", names)

    def __len__(self):
        return len(self.labels)


def test_the_domain_sampler_draws_one_domain_and_resumes():
    data = Labelled([[i % 3 == 0, i % 2] for i in range(30)], ("Blond_Hair", "Smiling"))
    blond = {i for i in range(30) if i % 3 == 0}
    order = iter(DomainOrder(data, 4, seed=1, domain="Blond_Hair"))
    drawn = [next(order) for _ in range(5)]
    assert all(set(batch) <= blond for batch in drawn)
    assert set(drawn[0] + drawn[1]) == set(drawn[0]) | set(drawn[1]) and len(set(drawn[0] + drawn[1])) == 8  # an epoch: no repeats
    resumed = iter(DomainOrder(data, 4, seed=1, start=3, domain="Blond_Hair"))
    assert next(resumed) == drawn[3]
    not_smiling = iter(DomainOrder(data, 2, seed=1, domain="Smiling=0,Blond_Hair"))
    assert all(i % 2 == 0 and i % 3 == 0 for i in next(not_smiling))
    with pytest.raises(MdtError, match="domain 'Smiling=1,Blond_Hair' has 5 images, fewer than the batch size 6"):
        DomainOrder(data, 6, seed=1, domain="Smiling=1,Blond_Hair")
    with pytest.raises(MdtError, match="'Blnd_Hair' is not a label of dataset 'toy'"):
        DomainOrder(data, 2, seed=1, domain="Blnd_Hair")


def test_a_method_takes_its_batches_in_a_plugin_samplers_order(tmp_path):
    """A third-party sampler (every batch: the same first items) and a method that asks for it."""
    seen = []

    class FirstItems(EpochOrder):
        """Always the dataset's first items."""

        def __iter__(self):
            while True:
                yield list(range(self.rank * self.shard, (self.rank + 1) * self.shard))

    def hook(register):
        from mdt_stargan.method import StarGAN

        from mdt.data import Stream

        class Recording(StarGAN):
            samplers = {"images": Stream("first_items")}

            def train_step(self, batches, step):
                seen.append(batches[0].labels.clone())
                return super().train_step(batches, step)

        register("sampler", "first_items", FirstItems)
        register("method", "recording", Recording)

    registry = load_plugins(extra={"third": plugin("third", hook)}).registry
    recipe = load_recipe(
        REPO / "recipes" / "quickstart.toml",
        [
            "run.iterations=2",
            "run.batch_size=2",
            "run.image_size=32",
            "run.sample_every=10",
            "run.sample_count=2",
            "generator.conv_dim=8",
            "generator.residual_blocks=1",
            "discriminator.conv_dim=8",
            "discriminator.layers=3",
            "datasets.faces.size=8",
            "datasets.faces.test_size=2",
            "method.type=recording",
            "method.decay_iterations=2",
        ],
        registry,
    )
    recipe.data.pop("metrics")
    train(recipe, registry, tmp_path / "run")
    data = registry.get("dataset", "synthetic_faces").factory(split="train", image_size=32, size=8)
    first = torch.stack([data[0]["label"], data[1]["label"]])
    assert len(seen) == 2 and all(torch.equal(labels, first) for labels in seen)
