"""``mdt import stargan-v1``: the official StarGAN checkpoints as an mdt checkpoint.

The official code saves ``torch.save(G.state_dict())`` with keys ``main.N...`` for the
generator and ``main.N...``, ``conv1.weight``, ``conv2.weight`` for the discriminator.
They are read with ``weights_only=True`` (tensors only, no code runs), checked, renamed
to mdt's layout and written as safetensors with a recipe that rebuilds the networks.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import torch

from mdt import checkpoint as ckpt
from mdt.clitypes import FolderPath
from mdt.errors import MdtError
from mdt.foreign import load_foreign
from mdt.labels import LabelSchema
from mdt.pretrained import imported
from mdt.toml_text import dump_toml

HAIR_COLOURS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")


def read_official(path: Path, what: str) -> dict[str, torch.Tensor]:
    state = load_foreign(path, f"{what} checkpoint")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MdtError(f"'{path}' is not a state dict of tensors (as the official StarGAN code saves)")
    return state


def _count(state: dict, pattern: str) -> int:
    return sum(1 for key in state if re.fullmatch(pattern, key))


def convert_generator(state: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    if "main.0.weight" not in state:
        raise MdtError(f"'{path}' has no 'main.0.weight': not an official StarGAN generator")
    first = state["main.0.weight"]
    blocks = _count(state, r"main\.\d+\.main\.0\.weight")
    renamed = {"layers." + key[len("main.") :]: value for key, value in state.items() if key.startswith("main.")}
    if len(renamed) != len(state):
        extra = sorted(set(state) - {"main." + k[len("layers.") :] for k in renamed})
        raise MdtError(f"'{path}' has tensor '{extra[0]}', which an official StarGAN generator does not")
    return renamed, {"conv_dim": int(first.shape[0]), "residual_blocks": blocks, "label_dim": int(first.shape[1]) - 3}


def convert_discriminator(state: dict, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    for key in ("main.0.weight", "conv1.weight", "conv2.weight"):
        if key not in state:
            raise MdtError(f"'{path}' has no '{key}': not an official StarGAN discriminator")
    names = {"main.": "trunk.", "conv1.": "real_fake_head.", "conv2.": "class_head."}
    renamed = {}
    for key, value in state.items():
        prefix = next((p for p in names if key.startswith(p)), None)
        if prefix is None:
            raise MdtError(f"'{path}' has tensor '{key}', which an official StarGAN discriminator does not")
        renamed[names[prefix] + key[len(prefix) :]] = value
    layers = _count(state, r"main\.\d+\.weight")
    return renamed, {
        "conv_dim": int(state["main.0.weight"].shape[0]),
        "layers": layers,
        "num_classes": int(state["conv2.weight"].shape[0]),
        "kernel": int(state["conv2.weight"].shape[-1]),
    }


LICENCE = "mit"  # yunjey/stargan's, code and published weights


def discriminator_layers(image_size: int) -> int:
    """The official depth rule without an official file: halve down to a 2 px map, six times at most."""
    layers = 1
    while layers < 6 and image_size % 2 ** (layers + 1) == 0 and image_size // 2 ** (layers + 1) >= 2:
        layers += 1
    return layers


def check_image_size(image_size: int) -> None:
    if image_size < 8 or image_size % 4:
        raise MdtError(
            f"--image-size {image_size} must be at least 8 and divisible by 4: the generator halves the image twice and doubles it back"
        )


def recipe_for(attrs: list[str], categorical: bool, image_size: int, generator: dict, discriminator: dict | None) -> dict:
    dataset = (
        {"type": "rafd", "root": "data/RaFD", "expressions": attrs}
        if categorical
        else {"type": "celeba", "root": "data/celeba", "attributes": attrs}
    )
    layers = discriminator["layers"] if discriminator else discriminator_layers(image_size)
    d_table = {"type": "stargan", "conv_dim": discriminator["conv_dim"] if discriminator else 64, "layers": layers}
    return {
        "run": {"image_size": image_size, "iterations": 200000, "batch_size": 16},
        "datasets": {"rafd" if categorical else "celeba": dataset},
        "labels": {"type": "one_hot" if categorical else "multi_hot"},
        "augmentation": {"type": "standard"},
        "networks": {
            "generator": {"type": "stargan", "conv_dim": generator["conv_dim"], "residual_blocks": generator["residual_blocks"]},
            "discriminator": d_table,
        },
        "losses": {
            "adversarial": {"type": "wgan", "weight": 1.0},
            "gradient_penalty": {"type": "gradient_penalty", "weight": 10.0},
            "classification": {"type": "domain_classification", "weight": 1.0},
            "reconstruction": {"type": "cycle_l1", "weight": 10.0},
        },
        "method": {"type": "stargan"},
    }


def import_stargan_v1(
    generator_path: Path, discriminator_path: Path | None, attrs: list[str], image_size: int, out: Path, categorical: bool = False
) -> Path:
    """Convert official StarGAN weights; returns the written checkpoint's path."""
    if not attrs:
        raise MdtError("--attrs is empty; list the labels the model was trained with, in order")
    check_image_size(image_size)
    g_tensors, g_info = convert_generator(read_official(generator_path, "generator"), generator_path)
    if g_info["label_dim"] != len(attrs):
        raise MdtError(
            f"'{generator_path}' was trained with {g_info['label_dim']} labels, but --attrs names {len(attrs)}: {', '.join(attrs)}"
        )
    networks = {"generator": g_tensors}
    d_info = None
    if discriminator_path is not None:
        d_tensors, d_info = convert_discriminator(read_official(discriminator_path, "discriminator"), discriminator_path)
        if d_info["num_classes"] != len(attrs):
            raise MdtError(f"'{discriminator_path}' classifies {d_info['num_classes']} labels, but --attrs names {len(attrs)}")
        if d_info["kernel"] * 2 ** d_info["layers"] != image_size:
            raise MdtError(
                f"'{discriminator_path}' was trained at {d_info['kernel'] * 2 ** d_info['layers']} px, not --image-size {image_size}"
            )
        networks["discriminator"] = d_tensors
    hair = tuple(a for a in attrs if a in HAIR_COLOURS)
    dataset = "rafd" if categorical else "celeba"
    schema = LabelSchema(dataset, tuple(attrs), () if categorical or len(hair) < 2 else (hair,), categorical)
    recipe = recipe_for(attrs, categorical, image_size, g_info, d_info)
    match = re.match(r"(\d+)", generator_path.name)
    step = int(match.group(1)) if match else 0
    target = ckpt.step_path(out / "checkpoints", step)
    if target.exists():
        raise MdtError(f"'{target}' exists; choose another --out")
    text = dump_toml(recipe)
    origin = f"official StarGAN v1: {generator_path.name}" + (f", {discriminator_path.name}" if discriminator_path else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.toml").write_text(text, encoding="utf-8")
    return ckpt.save_model(target, networks=networks, step=step, recipe=text, schemas=[schema], origin=origin, licence=LICENCE)


@click.command("stargan-v1")
@click.option("--generator", "generator_path", required=True, type=click.Path(path_type=Path), help="Official *-G.ckpt.")
@click.option(
    "--discriminator", "discriminator_path", type=click.Path(path_type=Path), help="Official *-D.ckpt (lets translate read source labels)."
)
@click.option("--attrs", required=True, help="Labels in training order, e.g. Black_Hair,Blond_Hair,Brown_Hair,Male,Young.")
@click.option("--image-size", default=128, show_default=True)
@click.option("--categorical", is_flag=True, help="One label per image (RaFD expressions) instead of binary attributes.")
@click.option("--out", type=FolderPath("--out", "a folder for the imported run"), help="Run folder to write.")
@click.option(
    "--model-folder",
    type=FolderPath("--model-folder", "a folder for the model"),
    help="Also (or only) write a model folder to share, as mdt save-pretrained does, with the weights' licence (MIT).",
)
def stargan_v1_command(generator_path, discriminator_path, attrs, image_size, categorical, out, model_folder):
    """Convert the official StarGAN v1 checkpoints into an mdt checkpoint (and/or a model folder)."""
    names = [a.strip() for a in attrs.split(",") if a.strip()]
    for path in imported(
        lambda folder: import_stargan_v1(generator_path, discriminator_path, names, image_size, folder, categorical), out, model_folder
    ):
        click.echo(f"wrote {path}")
