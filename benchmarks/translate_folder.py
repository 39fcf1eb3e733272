"""`mdt translate --input FOLDER`: images per second at batch 1 (one image per generator
call) and at larger batches, as a user runs it (a new process each: imports and model
loading included) and warm (the command again in one process, median of 5, the batch
sizes taking turns). The model is the quickstart's networks (or the paper's, at 128 px)
after one training step; the folder holds drawn 178x178 PNGs. Prints a table.

    python benchmarks/translate_folder.py                 # 256 images, batches 1 and 16
    python benchmarks/translate_folder.py --paper-size    # StarGAN's networks at 128 px
    python benchmarks/translate_folder.py --images 512 --batch-sizes 1,8,16,32
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent


PAPER = [
    "run.image_size=128",
    "run.batch_size=2",
    "generator.conv_dim=64",
    "generator.residual_blocks=6",
    "discriminator.conv_dim=64",
    "discriminator.layers=6",
    "datasets.faces.size=64",
    "datasets.faces.test_size=8",
]


def quickstart_model(folder: Path, overrides: list[str]) -> Path:
    """A run of the quickstart recipe, one step long, without its judge."""
    from mdt.engine import train
    from mdt.plugins import load_plugins
    from mdt.recipe import load_recipe
    from mdt.toml_text import dump_toml

    data = tomllib.loads((REPO / "recipes" / "quickstart.toml").read_text())
    data.pop("metrics", None), data.pop("classifier", None)
    (folder / "recipe.toml").write_text(dump_toml(data))
    registry = load_plugins().registry
    recipe = load_recipe(folder / "recipe.toml", ["run.iterations=1", *overrides], registry)
    with open(os.devnull, "w") as quiet:
        train(recipe, registry, folder / "run", console=Console(file=quiet))
    return folder / "run"


def drawn_images(folder: Path, count: int, size: int = 178) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir()
    for i in range(count):
        low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # smooth colour fields, as photos compress
        Image.fromarray(low).resize((size, size), Image.BICUBIC).save(folder / f"{i:05d}.png")


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


def warm_seconds(base: list[str], folder: Path, out: Path, sizes: list[int], repeats: int) -> dict[int, float]:
    """The median time of the whole command per batch size in this process, once Python,
    torch and mdt are imported and warmed up: what each further folder costs. The batch
    sizes take turns, round after round, so a machine that speeds up or slows down
    during the benchmark moves them all alike."""
    from click.testing import CliRunner

    from mdt.cli import main as cli

    runner = CliRunner()
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for r in range(repeats + 1):  # the first round warms up
        for size in sizes:
            start = time.perf_counter()
            result = runner.invoke(cli, [*base, "--input", str(folder), "--output", str(out / f"{size}_{r}"), "--batch-size", str(size)])
            if result.exit_code != 0:
                raise SystemExit(result.output)
            if r:
                times[size].append(time.perf_counter() - start)
    return {size: statistics.median(t) for size, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per batch size (the median is shown)")
    parser.add_argument(
        "--paper-size", action="store_true", help="StarGAN's paper networks at 128 px (G 64/6, D 64/6) instead of the quickstart's"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = quickstart_model(tmp, PAPER if args.paper_size else [])
        drawn_images(tmp / "in", args.images)
        flags = ["translate", "--checkpoint", str(run), "--to", "Blond_Hair", "--device", args.device]
        table = Table(
            title=f"mdt translate, {args.images} images, {'paper-size' if args.paper_size else 'quickstart'} model, {args.device}; "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        )
        for column in ("batch", "new process: seconds", "images/s", "warm: seconds", "images/s", "warm, vs batch 1"):
            table.add_column(column, justify="right")
        cold = {
            size: timed(
                [
                    sys.executable,
                    "-m",
                    "mdt.cli",
                    *flags,
                    "--input",
                    str(tmp / "in"),
                    "--output",
                    str(tmp / f"out{size}"),
                    "--batch-size",
                    str(size),
                ]
            )
            for size in sizes
        }
        warm = warm_seconds(flags, tmp / "in", tmp / "warm", sizes, args.repeats)
        for size in sizes:
            table.add_row(
                str(size),
                f"{cold[size]:.2f}",
                f"{args.images / cold[size]:.1f}",
                f"{warm[size]:.2f}",
                f"{args.images / warm[size]:.1f}",
                f"{warm[sizes[0]] / warm[size]:.2f}x",
            )
        Console().print(table)
        print(
            "new process: `mdt translate` as typed (Python, torch and the model load first); warm: the same command run again "
            f"in one process (median of {args.repeats}, batch sizes taking turns), where batching shows"
        )


if __name__ == "__main__":
    main()
