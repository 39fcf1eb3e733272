"""Every registered component, exercised automatically (parametrized over the registry).

Each one is placed into a small recipe, written out with its defaults, read back,
checked, built, and trained with for two iterations. A component whose constructor
needs a value this file cannot guess must get an entry in EXAMPLES, or its test fails.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import torch

from conftest import REPO, write_celeba, write_rafd
from mdt.build import build
from mdt.engine import train
from mdt.plugins import load_plugins
from mdt.recipe import INJECTED, SECTIONS, parameters, parse_recipe, resolved

BASE = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
BASE["run"].update(iterations=2, batch_size=4, image_size=32, sample_every=1, sample_count=2, checkpoint_every=2, log_every=1, threads=0)
BASE["datasets"]["faces"].update(size=16, test_size=4)
BASE["generator"].update(conv_dim=8, residual_blocks=1)
BASE["discriminator"].update(conv_dim=8, layers=3)
BASE["metrics"]["accuracy"].update(max_images=4)
BASE["classifier"].update(steps=2, batch_size=4)
HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair"]

# StarGAN v2's components are tried in its own quickstart, reduced the same way.
V2_BASE = tomllib.loads((REPO / "recipes" / "stargan_v2_quickstart.toml").read_text())
V2_BASE["run"] = dict(BASE["run"])
V2_BASE["datasets"]["faces"].update(size=16, test_size=4)
V2_BASE["generator"].update(base_channels=8, max_channels=16)
V2_BASE["mapping_network"].update(hidden=16)
V2_BASE["style_encoder"].update(base_channels=8, max_channels=16)
V2_BASE["discriminator"].update(base_channels=8, max_channels=16)
V2_BASE["metrics"]["accuracy"].update(max_images=4)
V2_BASE["classifier"].update(steps=2, batch_size=4)
V2_BASE["metrics"]["diversity"].update(samples=2, max_images=4)


def v2(section: str):
    """An example that places a component into the v2 quickstart, with its table's values there."""

    def example(tmp):
        values = {k: v for k, v in V2_BASE.get(section, {}).items() if k != "type" and not isinstance(v, dict)}
        return values, copy.deepcopy(V2_BASE)

    return example


def _csv(tmp: Path) -> dict:
    from conftest import random_image

    rows = ["file,Smiling,Glasses"]
    for i in range(6):
        random_image(tmp / "csv" / f"img{i}.png", 40, 40, i)
        rows.append(f"img{i}.png,{1 if i % 2 else -1},{1 if i % 3 else 0}")
    (tmp / "csv" / "attributes.csv").write_text("\n".join(rows) + "\n")
    return {"root": str(tmp / "csv"), "csv_file": "attributes.csv", "test_size": 2}


# (kind, name) -> function(tmp_path) -> (table values, changes to the rest of the recipe)
EXAMPLES = {
    ("dataset", "celeba"): lambda tmp: ({"root": str(write_celeba(tmp / "celeba")), "test_size": 4}, {}),
    ("dataset", "rafd"): lambda tmp: ({"root": str(write_rafd(tmp / "RaFD", per_class=1))}, {"labels": {"type": "one_hot"}}),
    ("dataset", "domain_folders"): lambda tmp: ({"root": str(write_rafd(tmp / "RaFD", per_class=1)), "crop_size": 256}, {"labels": {"type": "one_hot"}}),
    ("dataset", "csv_attributes"): lambda tmp: (_csv(tmp), {}),
    # Paper defaults: six stride-2 layers need at least 64 px.
    ("discriminator", "stargan"): lambda tmp: ({}, {"run": {**BASE["run"], "image_size": 64}}),
    ("label_encoder", "one_hot"): lambda tmp: ({}, {"datasets": {"faces": {"type": "synthetic_faces", "attributes": HAIR, "size": 16, "test_size": 4}}}),
    ("generator", "stargan_v2"): v2("generator"),
    ("mapping_network", "stargan_v2"): v2("mapping_network"),
    ("style_encoder", "stargan_v2"): v2("style_encoder"),
    ("discriminator", "stargan_v2"): v2("discriminator"),
    ("method", "stargan_v2"): v2("method"),
    ("loss", "nonsaturating"): v2("losses"),
    ("loss", "r1"): v2("losses"),
    ("loss", "style_reconstruction"): v2("losses"),
    ("loss", "diversity"): v2("losses"),
    ("metric", "diversity"): v2("metrics"),
    ("classifier", "timm"): lambda tmp: ({"steps": 2, "batch_size": 4}, {}),
}


RECIPE_KINDS = {spec.kind for spec in SECTIONS.values()}


def all_components():
    """Every registered component that a recipe can name."""
    return [(c.kind, c.name) for c in load_plugins().registry.components() if c.kind in RECIPE_KINDS]


@pytest.mark.parametrize("name", load_plugins().registry.names("importer"))
def test_importer_is_a_command_of_mdt_import(name, cli):
    import click

    assert isinstance(load_plugins().registry.get("importer", name).factory, click.Command)
    result = cli("import", name, "--help")
    assert result.exit_code == 0 and "--out" in result.output
    assert name in cli("import", "--help").output


def recipe_with(kind: str, name: str, tmp_path: Path) -> dict:
    data = copy.deepcopy(BASE)
    values, changes = EXAMPLES.get((kind, name), lambda tmp: ({}, {}))(tmp_path)
    for section, table in changes.items():
        data[section] = table
    section_name = next(s for s, spec in SECTIONS.items() if spec.kind == kind)
    table = {"type": name, **values}
    if SECTIONS[section_name].many:
        if kind == "loss":
            data[section_name][name] = table
        else:
            data[section_name] = {name: table}
    else:
        data[section_name] = table
    return data


@pytest.mark.parametrize("kind,name", all_components())
def test_required_arguments_have_an_example(kind, name, registry):
    factory = registry.get(kind, name).factory
    required = [
        p.name for p in parameters(factory).values() if p.default is p.empty and p.name not in INJECTED
    ]
    if required:
        assert (kind, name) in EXAMPLES, f"{kind} '{name}' needs {required}: add an example to EXAMPLES"


@pytest.mark.parametrize("kind,name", all_components())
def test_round_trips_through_a_recipe_and_trains(kind, name, registry, tmp_path):
    from mdt.recipe import dump_toml

    text = dump_toml(recipe_with(kind, name, tmp_path))
    recipe = parse_recipe(text, "component.toml", registry=registry)
    shown = resolved(recipe, registry).to_toml()
    again = parse_recipe(shown, "resolved.toml", registry=registry)
    assert resolved(again, registry).to_toml() == shown  # nothing lost or changed on the way
    result = train(again, registry, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoints" / "step_00000002.safetensors").is_file()
    assert (tmp_path / "run" / "samples" / "step_00000002.png").is_file()
    numbers = [v for v in result.metrics.values() if not isinstance(v, str)]  # strings name a feature space
    assert numbers and all(isinstance(v, float) and v == v for v in numbers)
    real = [v for k, v in result.metrics.items() if k.endswith("/real_accuracy")]
    assert all(0.0 <= r <= 1.0 for r in real)


def built(registry, tmp_path, kind="generator", name="stargan"):
    recipe = parse_recipe(__import__("mdt.recipe").recipe.dump_toml(recipe_with(kind, name, tmp_path)), "x.toml", registry=registry)
    return build(recipe, registry)


@pytest.mark.parametrize("name", [n for k, n in all_components() if k == "generator"])
def test_generator_keeps_shape_and_every_parameter_learns(name, registry, tmp_path):
    components = built(registry, tmp_path, "generator", name)
    generator = components.method.networks()["generator"]
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    # Conditioned on labels (StarGAN) or on a style code (StarGAN v2).
    condition = torch.rand(2, getattr(generator, "condition_dim", components.label_encoder.condition_dim))
    out = generator(images, condition)
    assert out.shape == images.shape and torch.isfinite(out).all()
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())


@pytest.mark.parametrize("name", [n for k, n in all_components() if k == "discriminator"])
def test_discriminator_outputs(name, registry, tmp_path):
    components = built(registry, tmp_path, "discriminator", name)
    size = components.settings.image_size
    out = components.method.networks()["discriminator"](torch.rand(3, 3, size, size))
    if isinstance(out, tuple):  # StarGAN: a real/fake patch map and domain logits
        scores, logits = out
        assert scores.shape[:2] == (3, 1)
        assert logits.shape == (3, components.label_encoder.num_classes)
    else:  # multi-task (StarGAN v2): one real/fake logit per domain
        assert out.shape == (3, components.label_encoder.num_classes)


@pytest.mark.parametrize("name", [n for k, n in all_components() if k == "label_encoder"])
def test_label_encoder_contract(name, registry, tmp_path):
    components = built(registry, tmp_path, "label_encoder", name)
    encoder = components.label_encoder
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    condition = encoder.encode(labels, 0)
    assert condition.shape == (4, encoder.condition_dim)
    logits = torch.randn(4, encoder.num_classes, requires_grad=True)
    loss = encoder.classification_loss(logits, labels, 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert encoder.predict(logits.detach(), 0).shape == labels.shape
    targets = encoder.sample_targets(labels, 0)
    assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, labels.tolist()))
