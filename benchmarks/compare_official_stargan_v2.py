"""Do mdt's StarGAN v2 networks compute what the official ones compute?

Builds the official networks from your clone of clovaai/stargan-v2 (its code is not part
of mdt and is only imported from that clone), gives them random weights, saves them in the
official ``*_nets_ema.ckpt`` and ``wing.ckpt`` layouts, imports them with
``mdt import stargan-v2`` and prints the largest output difference of each network:

    git clone https://github.com/clovaai/stargan-v2 /tmp/stargan-v2
    python benchmarks/compare_official_stargan_v2.py --official /tmp/stargan-v2 [--size 256]

Random weights test the computation (layers, order, names, shapes); the published
weights would only add other numbers. Packages the official code imports but does not
use here (munch, cv2, scikit-image) are replaced by stand-ins when they are missing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch


def _stand_ins() -> None:
    for name in ("cv2", "skimage", "skimage.filters"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    sys.modules["skimage.filters"].gaussian = getattr(sys.modules["skimage.filters"], "gaussian", None)
    try:
        import munch  # noqa: F401
    except ImportError:
        module = types.ModuleType("munch")

        class Munch(dict):
            __getattr__ = dict.__getitem__

        module.Munch = Munch
        sys.modules["munch"] = module


def _randomise_norms(network: torch.nn.Module) -> None:
    """Affine and running statistics away from their defaults, so that they count."""
    for module in network.modules():
        if isinstance(module, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) and module.affine:
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path, help="a clone of clovaai/stargan-v2")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    _stand_ins()
    sys.path.insert(0, str(args.official))
    from core.model import Generator, MappingNetwork, StyleEncoder
    from core.wing import FAN
    from mdt_stargan_v2.landmarks import FaceAlignmentNetwork

    from mdt.inference import load_translator

    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="mdt-official-"))
    rows = []
    for w_hpf in (0, 1):
        generator = Generator(args.size, 64, w_hpf=w_hpf).eval()
        mapping, encoder = MappingNetwork(16, 64, 3).eval(), StyleEncoder(args.size, 64, 3).eval()
        _randomise_norms(generator)
        nets = {"generator": generator.state_dict(), "mapping_network": mapping.state_dict(), "style_encoder": encoder.state_dict()}
        torch.save(nets, work / f"hpf{w_hpf}_100000_nets_ema.ckpt")
        extra = []
        if w_hpf:
            fan = FAN().eval()
            _randomise_norms(fan)
            torch.save({"state_dict": fan.state_dict()}, work / "wing.ckpt")
            extra = ["--landmarks", str(work / "wing.ckpt")]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mdt.cli",
                "import",
                "stargan-v2",
                str(work / f"hpf{w_hpf}_100000_nets_ema.ckpt"),
                "--out",
                str(work / f"hpf{w_hpf}"),
                "--domains",
                "a,b,c",
                *extra,
            ],
            check=True,
            capture_output=True,
        )
        ours = load_translator(work / f"hpf{w_hpf}", "cpu").translator
        x, ref = torch.rand(2, 3, args.size, args.size) * 2 - 1, torch.rand(2, 3, args.size, args.size) * 2 - 1
        y, z = torch.tensor([0, 2]), torch.randn(2, 16)
        with torch.no_grad():
            masks = fan.get_heatmap(x) if w_hpf else None
            style = mapping(z, y)
            pairs = [
                ("mapping network", style, ours.mapping_network(z, y)),
                ("style encoder", encoder(ref, y), ours.style_encoder(ref, y)),
                ("generator", generator(x, style, masks), ours.styled(x, style)),
            ]
            if w_hpf:
                mine = FaceAlignmentNetwork.from_file(work / "wing.ckpt").masks(x)
                pairs.append(("landmark masks", torch.cat(masks), torch.cat(mine)))
        for name, official, mdt_out in pairs:
            rows.append((f"{name} (w_hpf={w_hpf})", (official - mdt_out).abs().max().item(), official.abs().mean().item()))
    print(f"| network ({args.size} px, random weights) | max abs difference | mean abs output |")
    print("| --- | --- | --- |")
    for name, difference, scale in rows:
        print(f"| {name} | {difference:.2e} | {scale:.3f} |")


if __name__ == "__main__":
    main()
