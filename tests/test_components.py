"""Every registered component, exercised automatically (parametrized over the registry).

Each component is placed into the first quickstart recipe of recipes/ that can host it
— the recipe check decides: a network goes into a role of its kind whose inputs and
outputs it fits, a loss next to the method's losses where its reads are offered, a
method into its own quickstart — then written out with its defaults, read back,
checked, built, and trained for two iterations. A component whose constructor needs a
value this file cannot guess must get an entry in EXAMPLES, or its test fails; a plugin
that adds a quickstart recipe adds a host, and its components are tested with no change
here.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import pytest
import torch
from conftest import REPO, SMALL_NETWORKS, write_celeba, write_espeak_layout, write_rafd, write_speakers, write_vctk

from mdt import checkpoint as ckpt
from mdt.build import build
from mdt.engine import train
from mdt.errors import MdtError
from mdt.evaluation import check_judge, check_metrics
from mdt.measure import evaluate_checkpoint
from mdt.plugins import load_plugins
from mdt.recipe import parse_recipe, resolved
from mdt.recipe_layout import INJECTED, NETWORKS, SECTIONS, method_roles
from mdt.signatures import parameters
from mdt.toml_text import dump_toml

REGISTRY = load_plugins().registry
HOSTS = sorted((REPO / "recipes").glob("*quickstart*.toml"), key=lambda p: (p.name != "quickstart.toml", p.name))  # the default host first
RUN = {
    "iterations": 2,
    "batch_size": 4,
    "image_size": 32,
    "sample_every": 1,
    "sample_count": 2,
    "checkpoint_every": 2,
    "log_every": 1,
    "threads": 0,
}
HAIR = ["Black_Hair", "Blond_Hair", "Brown_Hair"]


def small_host(path: Path, tmp: Path) -> dict:
    """A quickstart recipe at 32 px, two iterations, small networks, tiny data and judge
    (a host's dataset with an entry in EXAMPLES reads the tiny data that entry writes)."""
    data = tomllib.loads(path.read_text())
    data["run"].update(RUN)
    for table in data["datasets"].values():
        if ("dataset", table["type"]) in EXAMPLES:
            table.update(EXAMPLES["dataset", table["type"]](tmp)[0])
    roles = method_roles(data, REGISTRY)
    for role, table in data.get(NETWORKS, {}).items():
        accepted = parameters(REGISTRY.get(roles[role].kind, table["type"]).factory)
        table.update({k: v for k, v in SMALL_NETWORKS.items() if k in accepted})
    for table in data["datasets"].values():
        if table["type"] == "synthetic_faces":
            table.update(size=16, test_size=4)
    for table in data.get("metrics", {}).values():
        accepted = parameters(REGISTRY.get("metric", table["type"]).factory)
        table.update({k: v for k, v in {"max_images": 4, "samples": 2}.items() if k in accepted})
    if "classifier" in data:
        data["classifier"].update(steps=2, batch_size=4)
    return data


def _csv(tmp: Path) -> dict:
    from conftest import random_image

    rows = ["file,Smiling,Glasses"]
    for i in range(6):
        random_image(tmp / "csv" / f"img{i}.png", 40, 40, i)
        rows.append(f"img{i}.png,{1 if i % 2 else -1},{1 if i % 3 else 0}")
    (tmp / "csv" / "attributes.csv").write_text("\n".join(rows) + "\n")
    return {"root": str(tmp / "csv"), "csv_file": "attributes.csv", "test_size": 2}


def _intensities(tmp: Path) -> dict:
    """OpenFace's layout: a header of AU*_r columns, intensities 0-5."""
    from conftest import random_image

    rows = ["file,AU06_r,AU12_r"]
    for i in range(6):
        random_image(tmp / "aus" / f"face{i}.png", 40, 40, i)
        rows.append(f"face{i}.png,{i * 0.8:.1f},{5 - i * 0.5:.1f}")
    (tmp / "aus" / "aus.csv").write_text("\n".join(rows) + "\n")
    return {"root": str(tmp / "aus"), "csv_file": "aus.csv", "test_size": 2}


def _voices(tmp: Path) -> Path:
    return tmp / "voices" if (tmp / "voices").is_dir() else write_speakers(tmp / "voices", sentences=3)


# (kind, name) -> function(tmp_path) -> (table values, changes to the rest of the recipe)
EXAMPLES = {
    ("dataset", "celeba"): lambda tmp: ({"root": str(write_celeba(tmp / "celeba")), "test_size": 4}, {}),
    ("dataset", "rafd"): lambda tmp: ({"root": str(write_rafd(tmp / "RaFD", per_class=1))}, {"labels": {"type": "one_hot"}}),
    ("dataset", "domain_folders"): lambda tmp: (
        {"root": str(write_rafd(tmp / "RaFD", per_class=1)), "crop_size": 256},
        {"labels": {"type": "one_hot"}},
    ),
    ("dataset", "csv_attributes"): lambda tmp: (_csv(tmp), {}),
    ("dataset", "synthetic_celeba"): lambda tmp: ({"root": str(tmp / "synthetic_celeba"), "size": 12, "test_size": 4}, {}),
    ("dataset", "csv_intensities"): lambda tmp: (_intensities(tmp), {}),
    ("label_encoder", "one_hot"): lambda tmp: (
        {},
        {"datasets": {"faces": {"type": "synthetic_faces", "attributes": HAIR, "size": 16, "test_size": 4}}},
    ),
    # speech: two tone speakers written as audio files, crops of 32 frames (as the quickstart's)
    ("dataset", "espeak_speech"): lambda tmp: ({"root": str(write_espeak_layout(tmp / "espeak")), "frames": 32}, {}),
    ("dataset", "speaker_folders"): lambda tmp: ({"root": str(_voices(tmp)), "frames": 32, "held_out": ["002"]}, {}),
    ("dataset", "vctk"): lambda tmp: ({"root": str(write_vctk(tmp / "VCTK")), "frames": 32, "held_out": ["003"]}, {}),
    ("classifier", "timm"): lambda tmp: ({"steps": 2, "batch_size": 4}, {}),
    ("classifier", "speaker"): lambda tmp: ({"steps": 2, "batch_size": 4}, {}),
    ("logger", "mlflow"): lambda tmp: ({"tracking_uri": str(tmp / "mlflow.db")}, {}),  # not the working folder's
}

RECIPE_KINDS = {spec.kind for spec in SECTIONS.values()}


def network_kinds() -> set[str]:
    return {role.kind for method in REGISTRY.components("method") for role in getattr(method.factory, "roles", {}).values()}


def all_components():
    """Every registered component that a recipe can name."""
    kinds = RECIPE_KINDS | network_kinds()
    return [(c.kind, c.name) for c in REGISTRY.components() if c.kind in kinds]


def placements(kind: str, name: str, tmp_path: Path):
    """Every way to place the component into a host recipe, in the hosts' order."""
    values, changes = EXAMPLES.get((kind, name), lambda tmp: ({}, {}))(tmp_path)
    factory = REGISTRY.get(kind, name).factory
    for host in HOSTS:
        base = small_host(host, tmp_path)
        base.update(copy.deepcopy(changes))
        roles = method_roles(base, REGISTRY)
        if kind == "method":
            if base["method"]["type"] == name:
                yield base
            continue
        if kind in network_kinds():
            for role_name, role in roles.items():
                if role.kind == kind:
                    data = copy.deepcopy(base)
                    kept = {k: v for k, v in data[NETWORKS][role_name].items() if k in parameters(factory) and k != "type"}
                    data[NETWORKS][role_name] = {"type": name, **kept, **values}
                    yield data
            continue
        section = next(s for s, spec in SECTIONS.items() if spec.kind == kind)
        data = copy.deepcopy(base)
        table = {"type": name, **values}
        if kind == "loss":
            data[section][name] = table
        elif SECTIONS[section].many:
            data[section] = {name: table}
        else:
            data[section] = table
        yield data


def recipe_with(kind: str, name: str, tmp_path: Path):
    """The first placement that the recipe check accepts and that builds."""
    problems = []
    for data in placements(kind, name, tmp_path):
        try:
            recipe = parse_recipe(dump_toml(data), "component.toml", registry=REGISTRY)
            components = build(recipe, REGISTRY)
            check_metrics(components, recipe)  # what only building shows: labels that do not fit, ...
            check_judge(components, recipe, REGISTRY)  # a judge that cannot read the host's samples
            return recipe
        except MdtError as exc:
            problems.append(str(exc))
    raise AssertionError(f"no quickstart recipe in recipes/ can host {kind} '{name}': " + " | ".join(problems or ["none tried"]))


@pytest.mark.parametrize("name", REGISTRY.names("importer"))
def test_importer_is_a_command_of_mdt_import(name, cli):
    import click

    assert isinstance(REGISTRY.get("importer", name).factory, click.Command)
    result = cli("import", name, "--help")
    assert result.exit_code == 0 and "--out" in result.output
    assert name in cli("import", "--help").output


@pytest.mark.parametrize("kind,name", all_components())
def test_required_arguments_have_an_example(kind, name, tmp_path):
    """Every constructor argument without a default that mdt does not inject gets a value
    here: from the component's EXAMPLES entry, or else from the table a host recipe
    already has for it."""
    factory = REGISTRY.get(kind, name).factory
    injected = set(INJECTED) | set(getattr(factory, "roles", {}))
    required = [p.name for p in parameters(factory).values() if p.default is p.empty and p.name not in injected]
    if not required:
        return
    if (kind, name) in EXAMPLES:
        values, _ = EXAMPLES[kind, name](tmp_path)
        assert [r for r in required if values.get(r) is None] == [], f"EXAMPLES[{kind!r}, {name!r}] lacks required arguments"
        return
    recipe = recipe_with(kind, name, tmp_path)  # a host recipe's table gives them
    table = next(t for t in recipe.tables() if t.kind == kind and t.type == name)
    assert [r for r in required if table.values.get(r) is None] == [], f"[{table.address}] of {recipe.source}"


@pytest.mark.parametrize("kind,name", all_components())
def test_round_trips_through_a_recipe_and_trains(kind, name, tmp_path):
    recipe = recipe_with(kind, name, tmp_path)
    shown = resolved(recipe, REGISTRY).to_toml()
    again = parse_recipe(shown, "resolved.toml", registry=REGISTRY)
    assert resolved(again, REGISTRY).to_toml() == shown  # nothing lost or changed on the way
    result = train(again, REGISTRY, tmp_path / "run")
    newest = tmp_path / "run" / "checkpoints" / "step_00000002.safetensors"
    assert newest.is_file()
    assert (tmp_path / "run" / "samples" / "step_00000002.png").is_file()
    numbers = [v for v in result.metrics.values() if not isinstance(v, str)]  # strings name a feature space
    assert numbers and all(isinstance(v, float) and math.isfinite(v) for v in numbers)
    real = [v for k, v in result.metrics.items() if k.endswith("/real_accuracy")]
    assert all(0.0 <= r <= 1.0 for r in real)
    # The checkpoint of step 2 holds the recipe it was trained with: the one read back, with
    # the [run] settings that "auto" left to the run written out as it chose them.
    saved = ckpt.read(newest, training=False)
    assert saved.step == 2
    trained_with, asked = tomllib.loads(saved.recipe_text), tomllib.loads(shown)
    settled = {"precision", "cache_images"}
    assert {k: v for k, v in trained_with.items() if k != "run"} == {k: v for k, v in asked.items() if k != "run"}
    assert {k: v for k, v in trained_with["run"].items() if k not in settled} == {k: v for k, v in asked["run"].items() if k not in settled}
    assert trained_with["run"]["precision"] in ("fp32", "bf16") and trained_with["run"]["cache_images"] in (True, False)
    # The run's metrics are those mdt eval measures on that checkpoint with the judge the
    # run kept: the same model, judge and held-out images. (A loss or a logger changes
    # neither what eval loads nor what it measures: their runs skip this, to stay quick.)
    if kind in ("loss", "logger"):
        return
    _, measured = evaluate_checkpoint(newest, REGISTRY, out=tmp_path / "eval", metric_names=list(again.data["metrics"]), device="cpu")
    assert measured.keys() == result.metrics.keys()
    for key, value in result.metrics.items():
        assert measured[key] == (value if isinstance(value, str) else pytest.approx(value, rel=1e-6, abs=1e-9)), key


def built(registry, tmp_path, kind="generator", name="stargan"):
    """Built in fp32 whatever the machine ("auto" may pick bf16): these tests check
    arithmetic against fp32 computations; test_speed_switches.py checks bf16."""
    recipe = recipe_with(kind, name, tmp_path)
    recipe.settle("precision", "fp32")
    return build(recipe, registry)


def batches_of(components, step: int):
    """The batches the engine would hand the method at ``step``."""
    from types import SimpleNamespace

    from mdt.streams import open_streams, to_batch

    topology = SimpleNamespace(rank=0, world_size=1)
    plan, streams = open_streams(components, REGISTRY, components.train_sets, [step] * 8, topology)
    return [to_batch(next(stream), i, components, role=role) for stream, (i, role) in zip(streams, plan, strict=True)]


@pytest.mark.parametrize("name", REGISTRY.names("method"))
def test_every_trained_network_of_a_method_learns(name, tmp_path):
    """Within a few updates every parameter of every network a role's optimizer trains moves."""
    components = built(REGISTRY, tmp_path, "method", name)
    method = components.method
    trained = [role for role, spec in method.roles.items() if spec.optimizer]
    networks = method.networks()
    before = {role: [p.detach().clone() for p in networks[role].parameters()] for role in trained if role in networks}
    for step in range(4):
        method.train_step(batches_of(components, step), step)
    for role, parameters_before in before.items():
        for index, (old, new) in enumerate(zip(parameters_before, networks[role].parameters(), strict=True)):
            assert not torch.equal(old, new), f"{name}: parameter {index} of {role} never changed"


@pytest.mark.parametrize("name", [n for k, n in all_components() if k == "label_encoder"])
def test_label_encoder_contract(name, tmp_path):
    components = built(REGISTRY, tmp_path, "label_encoder", name)
    encoder = components.label_encoder
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    condition = encoder.encode(labels, 0)
    assert condition.shape == (4, encoder.condition_dim)
    logits = torch.randn(4, encoder.num_classes, requires_grad=True)
    loss = encoder.classification_loss(logits, labels, 0)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert encoder.predict(logits.detach(), 0).shape == labels.shape
    # Confident logits built from the labels in the dataset's own part (the first: other
    # datasets' parts, if any, hold noise): a regression reads the strengths themselves,
    # any other head +10 for a label that holds and -10 for one that does not. They are
    # read back as the labels, and cost less than the same logits with each one wrong.
    schema = components.schemas[0]
    n = len(schema.names)
    confident = labels.clone() if schema.continuous else labels * 20 - 10
    wrong = 1 - labels if schema.continuous else -confident
    torch.manual_seed(0)
    right_logits, wrong_logits = torch.randn(4, encoder.num_classes), torch.randn(4, encoder.num_classes)
    right_logits[:, :n], wrong_logits[:, :n] = confident, wrong
    assert torch.equal(encoder.predict(right_logits, 0), labels)
    assert encoder.classification_loss(right_logits, labels, 0) < encoder.classification_loss(wrong_logits, labels, 0)
    targets = encoder.sample_targets(labels, 0)
    if encoder.schemas[0].continuous:  # strengths near other images' (GANimation adds noise)
        assert targets.shape == labels.shape and targets.min() >= 0 and targets.max() <= 1
    else:  # the batch's own labels, shuffled
        assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, labels.tolist()))


def sized_networks():
    """Networks that say which image sizes (and depths) they can take (``arguments_problem``)."""
    from mdt.component import Component

    return [
        (k, n)
        for k, n in all_components()
        if k in network_kinds() and REGISTRY.get(k, n).factory.arguments_problem is not Component.arguments_problem
    ]


def runs_at(factory, values: dict, size: int) -> bool:
    """Whether the network, built with ``values``, takes a (2, 3, size, size) batch and,
    when it makes images, gives them at that size: the network itself is the judge."""
    try:
        network = factory(**{k: v for k, v in values.items() if k in parameters(factory)})
        given = {"images": torch.rand(2, 3, size, size) * 2 - 1, "labels": torch.zeros(2, values["label_dim"])}
        out = network(*[given[name] for name in factory.inputs])
    except (RuntimeError, ValueError):
        return False
    first = out[0] if isinstance(out, tuple) else out
    return "image" not in factory.outputs or tuple(first.shape) == (2, 3, size, size)


@pytest.mark.parametrize("kind,name", sized_networks())
def test_a_network_refuses_exactly_the_sizes_it_cannot_run_at(kind, name):
    """``arguments_problem``, which ``mdt recipe check`` asks, against building the network
    and running it in training mode: for every image size from 8 (the least ``[run]``
    takes) to 40 and depth from 1 to 3."""
    factory = REGISTRY.get(kind, name).factory
    params = parameters(factory)
    small = {k: v for k, v in {"conv_dim": 4, "width": 4, "residual_blocks": 1}.items() if k in params}
    defaults = {k: p.default for k, p in params.items() if p.default is not p.empty}
    depths = [k for k in ("downsamplings", "layers") if k in params]
    refused = accepted = 0
    for depth in (1, 2, 3) if depths else (None,):
        for size in range(8, 41):
            values = {**defaults, **small, **dict.fromkeys(depths, depth), "image_size": size, "label_dim": 3, "num_classes": 3}
            problem = factory.arguments_problem(values)
            assert (problem is None) == runs_at(factory, values, size), (size, depth, problem)
            refused, accepted = refused + (problem is not None), accepted + (problem is None)
    assert refused and accepted
