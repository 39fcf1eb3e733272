"""Is bf16 faster than fp32 on this machine? What ``precision = "auto"`` decides from.

Times, in one process, a 3x3 convolution of StarGAN's bottleneck (256 channels, 16x16,
batch 16) forward, and one training step of ``recipes/stargan_celeba.toml`` at 64 px
(D 64/5, batch 16, a discriminator update plus a fifth of a generator update), in fp32
and under bf16 autocast, and prints what "auto" chose here and why.

    python benchmarks/precision.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")

import torch
from rich.console import Console
from rich.table import Table

from mdt.data import Batch
from mdt.precision import choose_precision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import mdt_components, write_celeba


def seconds(work, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        work()
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    return (time.perf_counter() - start) / repeats


def convolution(precision: str, repeats: int) -> float:
    """GFLOP/s of a 256->256 3x3 convolution on (16, 256, 16, 16), forward."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(256, 256, 3, 1, 1, bias=False)
    x = torch.randn(16, 256, 16, 16)
    flops = 2 * 16 * 16 * 16 * 256 * 256 * 9
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return flops / seconds(lambda: conv(x), repeats) / 1e9


def train_step(root: Path, precision: str, repeats: int) -> float:
    """Seconds per iteration of StarGAN's train_step at 64 px on a fixed batch."""
    c = mdt_components(root, 64, "cpu", precision, ["networks.discriminator.layers=5", "datasets.celeba.test_size=16"])
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(16, 3, 64, 64, generator=generator) * 2 - 1
    labels = (torch.rand(16, 5, generator=generator) > 0.5).float()
    batch = Batch(images, labels, 0, "images")
    step = iter(range(10**6))
    return seconds(lambda: c.method.train_step([batch], next(step)), repeats, warmup=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed train steps per precision (a multiple of 5: whole G cycles)")
    args = parser.parse_args()
    if args.repeats < 5 or args.repeats % 5:
        parser.error(f"--repeats {args.repeats}: give a positive multiple of 5 (whole generator cycles)")
    chosen, why = choose_precision("auto", torch.device("cpu"))
    table = Table(title=f"fp32 against bf16 autocast, cpu ({torch.get_num_threads()} threads); auto chose {chosen} ({why})")
    for column in ("precision", "conv 3x3 GFLOP/s", "train step s/iteration (64 px)"):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "celeba"
        write_celeba(root, 32)
        for precision in ("fp32", "bf16"):
            table.add_row(precision, f"{convolution(precision, 20):.0f}", f"{train_step(root, precision, args.repeats):.3f}")
    Console().print(table)


if __name__ == "__main__":
    main()
