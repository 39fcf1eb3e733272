"""``mdt import stargan-v2``: the official ``*_nets_ema.ckpt`` as an mdt checkpoint.

The official file is ``torch.save`` of a dict with one state dict per network
(``generator``, ``mapping_network``, ``style_encoder``; a ``fan`` entry is ignored). It
is read with ``weights_only=True`` (tensors only, no code runs). Tensor names inside
each network are the same in mdt, so the sizes are read off the tensors, the networks
are built and loaded strictly (any missing, extra or misshapen tensor is an error),
and the result is written as the moving-average networks of a ``stargan_v2`` run.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import click
import torch

from mdt import checkpoint as ckpt
from mdt.clitypes import FilePath, FolderPath
from mdt.errors import MdtError
from mdt.foreign import load_foreign
from mdt.labels import LabelSchema
from mdt.pretrained import imported
from mdt.toml_text import dump_toml
from mdt_stargan_v2.landmarks import FaceAlignmentNetwork
from mdt_stargan_v2.networks import MappingNetwork, StarGANv2Generator, StyleEncoder

NETWORKS = ("generator", "mapping_network", "style_encoder")
DEFAULT_DOMAINS = {2: ("female", "male"), 3: ("cat", "dog", "wild")}  # CelebA-HQ, AFHQ
LICENCE = "cc-by-nc-4.0"  # clovaai/stargan-v2's published weights: non-commercial use only


def read_official(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    saved = load_foreign(path, "checkpoint")
    if not isinstance(saved, dict) or any(name not in saved for name in NETWORKS):
        found = ", ".join(map(str, saved)) if isinstance(saved, dict) else type(saved).__name__
        raise MdtError(f"'{path}' is not an official StarGAN v2 *_nets_ema.ckpt: expected {', '.join(NETWORKS)}; found {found}")
    states = {}
    for name in NETWORKS:
        state = saved[name]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise MdtError(f"'{path}': '{name}' is not a state dict of tensors")
        # Saved from a DataParallel wrapper, names start with "module.".
        states[name] = {k.removeprefix("module."): v for k, v in state.items()}
    return states


def _need(state: dict, key: str, network: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise MdtError(f"'{path}': {network} has no '{key}'; not a StarGAN v2 {network}")
    return state[key]


def infer_sizes(states: dict[str, dict[str, torch.Tensor]], path: Path, image_size: int | None) -> dict:
    """Everything the networks' constructors need, read off the tensors' shapes."""
    g, f, e = states["generator"], states["mapping_network"], states["style_encoder"]
    base = int(_need(g, "from_rgb.weight", "generator", path).shape[0])
    size = image_size or 2**14 // base  # the official code ties the width to the size
    levels = sum(1 for k in g if re.fullmatch(r"encode\.\d+\.conv1\.weight", k)) - 2
    expected = int(math.log2(size)) - 4
    if levels not in (expected, expected + 1):
        raise MdtError(
            f"'{path}': the generator downsamples {levels} times, which fits no StarGAN v2 generator at {size} px; give --image-size"
        )
    shared = sum(1 for k in f if re.fullmatch(r"shared\.\d+\.weight", k))
    head = sum(1 for k in f if re.fullmatch(r"unshared\.0\.\d+\.weight", k))
    first = _need(f, "shared.0.weight", "mapping_network", path)
    e_heads = sum(1 for k in e if re.fullmatch(r"unshared\.\d+\.weight", k))
    last = _need(e, "shared.1.conv1.weight", "style_encoder", path)
    return {
        "image_size": size,
        "num_domains": sum(1 for k in f if re.fullmatch(r"unshared\.\d+\.0\.weight", k)),
        "style_encoder_domains": e_heads,
        "style_dim": int(_need(f, f"unshared.0.{2 * (head - 1)}.weight", "mapping_network", path).shape[0]),
        "latent_dim": int(first.shape[1]),
        "hidden": int(first.shape[0]),
        "shared_layers": shared,
        "head_layers": head,
        "base_channels": base,
        "encoder_base_channels": int(last.shape[0]),
        "max_channels": max(int(v.shape[0]) for k, v in g.items() if k.endswith("conv2.weight")),
        "high_pass": 1.0 if levels == expected + 1 else 0.0,
    }


def build_networks(sizes: dict) -> dict[str, torch.nn.Module]:
    return {
        "generator": StarGANv2Generator(
            sizes["image_size"], sizes["style_dim"], sizes["base_channels"], sizes["max_channels"], sizes["high_pass"]
        ),
        "mapping_network": MappingNetwork(
            sizes["num_domains"], sizes["latent_dim"], sizes["style_dim"], sizes["hidden"], sizes["shared_layers"], sizes["head_layers"]
        ),
        "style_encoder": StyleEncoder(
            sizes["image_size"], sizes["num_domains"], sizes["style_dim"], sizes["encoder_base_channels"], sizes["max_channels"]
        ),
    }


def recipe_for(sizes: dict, domains: list[str], landmarks: Path | None = None) -> dict:
    root = "data/afhq" if sizes["num_domains"] == 3 else "data/celeba_hq"
    style = {"style_dim": sizes["style_dim"]}
    return {
        "run": {"image_size": sizes["image_size"], "iterations": 100000, "batch_size": 8},
        "datasets": {"domains": {"type": "domain_folders", "root": root, "domains": domains}},
        "labels": {"type": "one_hot"},
        "augmentation": {"type": "standard"},
        "networks": {
            "generator": {
                "type": "stargan_v2",
                **style,
                "base_channels": sizes["base_channels"],
                "max_channels": sizes["max_channels"],
                "high_pass": sizes["high_pass"],
            },
            "mapping_network": {
                "type": "stargan_v2",
                **style,
                "latent_dim": sizes["latent_dim"],
                "hidden": sizes["hidden"],
                "shared_layers": sizes["shared_layers"],
                "head_layers": sizes["head_layers"],
            },
            "style_encoder": {
                "type": "stargan_v2",
                **style,
                "base_channels": sizes["encoder_base_channels"],
                "max_channels": sizes["max_channels"],
            },
            "discriminator": {"type": "stargan_v2", "base_channels": sizes["encoder_base_channels"], "max_channels": sizes["max_channels"]},
        },
        "losses": {
            "adversarial": {"type": "nonsaturating", "weight": 1.0},
            "r1": {"type": "r1", "weight": 1.0},
            "style": {"type": "style_reconstruction", "weight": 1.0},
            "diversity": {"type": "diversity", "weight": 2.0 if sizes["num_domains"] == 3 else 1.0, "decay_iterations": 100000},
            "cycle": {"type": "cycle_l1", "weight": 1.0},
        },
        "method": {"type": "stargan_v2", **({"landmark_weights": str(landmarks.resolve())} if landmarks else {})},
    }


def import_stargan_v2(
    path: Path, out: Path, domains: list[str] | None = None, image_size: int | None = None, landmarks: Path | None = None
) -> Path:
    """Convert an official ``*_nets_ema.ckpt``; returns the written checkpoint's path."""
    states = read_official(path)
    # Later versions of the official code keep the high-pass filter (its 3x3 kernel / w_hpf) as a buffer.
    kernel = states["generator"].pop("hpf.filter", None)
    sizes = infer_sizes(states, path, image_size)
    if kernel is not None:
        if sizes["high_pass"] == 0 or tuple(kernel.shape) != (3, 3) or float(kernel[1, 1]) <= 0:
            raise MdtError(f"'{path}': the generator has a high-pass filter 'hpf.filter' that fits no StarGAN v2 generator of its sizes")
        sizes["high_pass"] = 8.0 / float(kernel[1, 1])
    if landmarks is not None:
        if sizes["high_pass"] == 0:
            raise MdtError(f"'{path}' has no high-pass skips, so it needs no landmark network; leave out --landmarks")
        FaceAlignmentNetwork.from_file(landmarks)  # refuse a wrong file now, not at the first translation
    count = sizes["num_domains"]
    if sizes["style_encoder_domains"] != count:
        raise MdtError(f"'{path}': the mapping network has {count} domains but the style encoder {sizes['style_encoder_domains']}")
    if not domains:
        if count not in DEFAULT_DOMAINS:
            raise MdtError(f"'{path}' has {count} domains; name them in training order with --domains")
        domains = list(DEFAULT_DOMAINS[count])
    if len(domains) != count:
        raise MdtError(f"'{path}' has {count} domains, but --domains names {len(domains)}: {', '.join(domains)}")
    networks = {}
    for name, network in build_networks(sizes).items():
        try:
            problems = network.load_state_dict(states[name], strict=False)
        except RuntimeError as exc:  # a tensor of another shape
            detail = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), str(exc))
            raise MdtError(f"'{path}': {name}: {detail}") from None
        extra, missing = problems.unexpected_keys, problems.missing_keys
        if extra or missing:
            what = f"has unexpected tensor '{extra[0]}'" if extra else f"lacks tensor '{missing[0]}'"
            raise MdtError(f"'{path}': {name} {what}; not a StarGAN v2 {name} of the inferred sizes")
        networks[f"{name}_ema"] = {k: v.contiguous() for k, v in network.state_dict().items()}
    match = re.match(r"(\d+)", path.name)
    step = int(match.group(1)) if match else 0
    target = ckpt.step_path(out / "checkpoints", step)
    if target.exists():
        raise MdtError(f"'{target}' exists; choose another --out")
    recipe = dump_toml(recipe_for(sizes, domains, landmarks))
    schemas = [LabelSchema("domains", tuple(domains), (), categorical=True)]
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.toml").write_text(recipe, encoding="utf-8")
    return ckpt.save_model(
        target, networks=networks, step=step, recipe=recipe, schemas=schemas, origin=f"official StarGAN v2: {path.name}", licence=LICENCE
    )


@click.command("stargan-v2")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--out", type=FolderPath("--out", "a folder for the imported run"), help="Run folder to write.")
@click.option(
    "--model-folder",
    type=FolderPath("--model-folder", "a folder for the model"),
    help="Also (or only) write a model folder to share, as mdt save-pretrained does, with the weights' licence (CC BY-NC 4.0).",
)
@click.option("--domains", help="Domain names in training order (default: female,male for 2 domains, cat,dog,wild for 3).")
@click.option("--image-size", type=int, help="Image size (default: read off the generator's width, as the official code sets it).")
@click.option(
    "--landmarks",
    type=FilePath("--landmarks", "the file wing.ckpt"),
    help="CelebA-HQ models: the FAN landmark network's weights (wing.ckpt, published with StarGAN v2).",
)
def stargan_v2_command(checkpoint, out, model_folder, domains, image_size, landmarks):
    """Convert an official StarGAN v2 *_nets_ema.ckpt into an mdt checkpoint (and/or a model folder)."""
    names = [d.strip() for d in domains.split(",") if d.strip()] if domains else None
    for path in imported(lambda folder: import_stargan_v2(checkpoint, folder, names, image_size, landmarks), out, model_folder):
        click.echo(f"wrote {path}")
