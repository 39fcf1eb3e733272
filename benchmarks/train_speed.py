"""Training, data and translation speed: mdt beside the official StarGAN code, in one run.

``--official CLONE`` runs the official training loop (main.py of the user's own clone of
yunjey/stargan, unchanged, in a subprocess; nothing of it is copied here) and mdt's
``mdt run recipes/stargan_celeba.toml`` as a user gets it — its defaults, with only the
data folder, image size, iteration count and log interval set — on the same generated
CelebA-layout folder (JPEGs: 2,000 held out, as the official loader does, and
``--images`` to train on), with the same networks (G 64 channels / 6 residual blocks,
D 64 channels with 5 strided layers at 64 px, 6 at 128), batch 16, 1 data worker for
the official code (its default). Both are timed between their log lines, every 10
iterations, after the first; they take turns ``--repeats`` times (3) and each gets the
median, so the machine's drift between runs moves both alike. A reference loop (the
official per-iteration work written here, in-process) is a second row, and mdt's fp32
path without the cache a third.

Also printed: the FLOPs of one iteration (the official work, fp32, counted by torch) and, with
``--peak-tflops``, the share of the device's peak they reach; the floor of mdt's defaults
(their FLOPs by the dtype each product computes in, at the device's best rate measured in
that dtype in this run); the data pipelines alone; translation speed.

    python benchmarks/train_speed.py --size 64 --official ~/src/stargan     # the CPU configuration
    python benchmarks/train_speed.py --size 128 --device cuda --official ~/src/stargan --peak-tflops 989
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")

import numpy as np
import torch
import torch.nn.functional as F
from mdt_datasets.samplers import EpochOrder
from mdt_stargan.networks import StarGANDiscriminator, StarGANGenerator
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from mdt.build import build
from mdt.cache import ImageCache
from mdt.data import BatchStream
from mdt.logbook import read_log
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe
from mdt.streams import to_batch

REPO = Path(__file__).resolve().parent.parent
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
BATCH = 16
HELD_OUT = 2000  # the official CelebA loader holds out the first 2,000 (shuffled) images
LOG_EVERY = 10


def d_layers(size: int) -> int:
    return 5 if size <= 64 else 6


def official_loop(clone: Path, root: Path, size: int, iterations: int, work: Path, device: str) -> float:
    """Seconds per iteration of the official training loop, timed between its log lines
    as they arrive (it prints one every LOG_EVERY iterations)."""
    command = [
        sys.executable,
        "-u",
        str(clone / "main.py"),
        "--mode",
        "train",
        "--dataset",
        "CelebA",
        "--celeba_image_dir",
        str(root / "img_align_celeba"),
        "--attr_path",
        str(root / "list_attr_celeba.txt"),
        "--image_size",
        str(size),
        "--celeba_crop_size",
        "178",
        "--batch_size",
        str(BATCH),
        "--num_iters",
        str(iterations),
        "--g_conv_dim",
        "64",
        "--d_conv_dim",
        "64",
        "--g_repeat_num",
        "6",
        "--d_repeat_num",
        str(d_layers(size)),
        "--log_step",
        str(LOG_EVERY),
        "--sample_step",
        "100000000",
        "--model_save_step",
        "100000000",
        "--use_tensorboard",
        "False",
        "--log_dir",
        str(work / "logs"),
        "--model_save_dir",
        str(work / "models"),
        "--sample_dir",
        str(work / "samples"),
        "--result_dir",
        str(work / "results"),
    ]
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="" if device == "cpu" else os.environ.get("CUDA_VISIBLE_DEVICES", "0"))
    arrivals = []
    with subprocess.Popen(command, cwd=clone, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment) as child:
        lines = []
        for line in child.stdout:
            lines.append(line)
            found = re.search(r"Iteration \[(\d+)/", line)
            if found:
                arrivals.append((int(found.group(1)), time.perf_counter()))
    if child.returncode != 0 or len(arrivals) < 2:
        sys.exit(f"the official loop failed ({' '.join(command)}):\n{''.join(lines[-30:])}")
    return between_logs(arrivals)


def between_logs(arrivals: list[tuple[int, float]]) -> float:
    """Seconds per iteration from (iteration, time) pairs, first to last."""
    (first_step, first_time), (last_step, last_time) = arrivals[0], arrivals[-1]
    return (last_time - first_time) / (last_step - first_step)


def mdt_run(root: Path, size: int, iterations: int, device: str, work: Path, extra=()) -> tuple[float, list[str]]:
    """Seconds per iteration of ``mdt run recipes/stargan_celeba.toml`` as written, but for
    the data, size and schedule; timed between its log records. Also its first lines (what
    "auto" chose)."""
    run_dir = work / "mdt-run"
    overrides = [
        f"datasets.celeba.root={root}",
        f"datasets.celeba.test_size={HELD_OUT}",
        f"run.image_size={size}",
        f"run.iterations={iterations}",
        f"run.log_every={LOG_EVERY}",
        "run.sample_every=100000000",
        "run.checkpoint_every=100000000",
        f"run.device={device}",
        f"discriminator.layers={d_layers(size)}",
        *extra,
    ]
    command = [str(Path(sys.executable).with_name("mdt")), "run", str(REPO / "recipes" / "stargan_celeba.toml"), "--out", str(run_dir)]
    for item in overrides:
        command += ["--set", item]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"mdt run failed ({' '.join(command)}):\n{done.stderr[-3000:]}")
    records = [r for r in read_log(run_dir / "log.jsonl") if r["event"] == "train"]
    chosen = [line for line in done.stderr.splitlines() if line.startswith(("precision:", "image cache:"))]
    return between_logs([(r["step"], r["time"]) for r in records]), chosen


def first_batch(c):
    """The first training batch of built components, on their device."""
    return to_batch(next(BatchStream(c.train_sets[0], EpochOrder(c.train_sets[0], BATCH, seed=0))), 0, c)


def flops_per_iteration(root: Path, size: int) -> float:
    """FLOPs of one iteration of the official work in fp32 (a discriminator and a generator
    update), counted on mdt's networks by torch's FlopCounterMode: convolutions and matrix
    products, forward and backward, the gradient penalty's double backward included.
    Averaged as 1 G step per 5 D steps."""
    c = mdt_components(root, size, "cpu", "fp32", [f"discriminator.layers={d_layers(size)}"])
    batch = first_batch(c)
    counts = {}
    for phase in ("discriminator", "generator"):
        with FlopCount() as counter:
            c.method.update_phase(phase, batch, batch.labels.flip(0))
        counts[phase] = counter.total
    return counts["discriminator"] + counts["generator"] / 5


class FlopCount(TorchDispatchMode):
    """Sums the FLOPs of every aten call torch's flop counter knows (convolutions and matrix
    products, forward and backward). FlopCounterMode itself tracks modules with hooks that
    refuse the gradient penalty's autograd.grad, so only its formulas are used."""

    def __init__(self) -> None:
        super().__init__()
        self.formulas = FlopCounterMode(display=False).flop_registry
        self.by_dtype: dict[torch.dtype, int] = {}  # the dtype of the call's first tensor: what it computes in

    @property
    def total(self) -> int:
        return sum(self.by_dtype.values())

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.formulas.get(func._overloadpacket)
        if formula is not None:
            dtype = next(a.dtype for a in args if isinstance(a, torch.Tensor))
            self.by_dtype[dtype] = self.by_dtype.get(dtype, 0) + formula(*args, **kwargs, out_val=out)
        return out


def mdt_flops_by_dtype(root: Path, size: int, device: str, precision: str) -> dict[torch.dtype, float]:
    """FLOPs of one average iteration of mdt's own training step in ``precision`` (its
    D-only iterations and the one in ``d_steps_per_g`` that also updates G, which reuses
    G's fakes), split by the dtype each product computes in."""
    c = mdt_components(root, size, device, precision, [f"discriminator.layers={d_layers(size)}"])
    batch = first_batch(c)
    period = c.method.d_steps_per_g
    totals: dict[torch.dtype, float] = {}
    for step, share in ((0, (period - 1) / period), (period - 1, 1 / period)):
        with FlopCount() as counter:
            c.method.train_step([batch], step)
        for dtype, flops in counter.by_dtype.items():
            totals[dtype] = totals.get(dtype, 0.0) + share * flops
    return totals


PEAK_CONVOLUTIONS = ((256, 16), (512, 16), (256, 32), (128, 32))  # (channels, map size) of 3x3 convolutions, batch 16


def best_rate(device: str, dtype: torch.dtype, repeats: int = 5) -> float:
    """The best FLOP/s this device showed, in ``dtype``, for any of a few large 3x3
    convolutions (G's bottleneck shape and wider) and a 2048 x 2048 matrix product: the
    rate the floor below assumes for all of an iteration's products."""
    rates = []
    generator = torch.Generator().manual_seed(0)
    shapes = [((BATCH, ch, s, s), (ch, ch, 3, 3)) for ch, s in PEAK_CONVOLUTIONS] + [((2048, 2048), (2048, 2048))]
    for a_shape, b_shape in shapes:
        a = torch.randn(a_shape, generator=generator).to(device, dtype)
        b = torch.randn(b_shape, generator=generator).to(device, dtype)
        product = (lambda a=a, b=b: F.conv2d(a, b, padding=1)) if a.dim() == 4 else (lambda a=a, b=b: a @ b)
        flops = 2 * a.numel() * b_shape[0] * 9 if a.dim() == 4 else 2 * 2048**3
        for _ in range(2):
            product()
        for _ in range(repeats):
            sync(device)
            start = time.perf_counter()
            product()
            sync(device)
            rates.append(flops / (time.perf_counter() - start))
    return max(rates)


def floor_seconds(flops: dict[torch.dtype, float], rates: dict[torch.dtype, float]) -> float:
    """Seconds an iteration would take if each of its products ran at its dtype's best rate."""
    return sum(count / rates[dtype] for dtype, count in flops.items())


def write_celeba(root: Path, count: int) -> None:
    """CelebA's layout with 178x218 JPEGs of smooth noise (decode cost like real photos);
    ``count`` images in all, the first HELD_OUT of them are held out by both loaders."""
    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    names = ATTRS + [f"Other_{i}" for i in range(40 - len(ATTRS))]
    lines = [str(count), " ".join(names)]
    for i in range(count):
        small = rng.integers(0, 255, (28, 23, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.BICUBIC).save(root / "img_align_celeba" / f"{i:06d}.jpg", quality=95)
        hair = rng.integers(0, 3)
        values = [1 if j == hair else -1 for j in range(3)] + list(rng.choice([-1, 1], 37))
        lines.append(f"{i:06d}.jpg " + " ".join(f"{v:2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")


class ReferenceCelebA(Dataset):
    """Per item: open the JPEG, random flip, centre crop 178, resize, to [-1, 1]."""

    def __init__(self, root: Path, size: int) -> None:
        lines = (root / "list_attr_celeba.txt").read_text().splitlines()
        names = lines[1].split()
        self.items = []
        for line in lines[2:]:
            fields = line.split()
            values = [fields[1 + names.index(a)] == "1" for a in ATTRS]
            self.items.append((root / "img_align_celeba" / fields[0], torch.tensor(values, dtype=torch.float32)))
        self.size = size

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        image = Image.open(path).convert("RGB")
        if random.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        w, h = image.size
        left, top = round((w - 178) / 2), round((h - 178) / 2)
        image = image.crop((left, top, left + 178, top + 178)).resize((self.size, self.size), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1
        return x, label


def endless(loader):
    while True:
        yield from loader


def reference_loop(root: Path, size: int, device: torch.device, warmup: int, iterations: int) -> float:
    """Seconds per iteration of the official per-iteration work."""
    torch.manual_seed(0)
    G, D = StarGANGenerator(len(ATTRS)).to(device), StarGANDiscriminator(size, len(ATTRS), layers=d_layers(size)).to(device)
    g_opt = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999))
    batches = endless(DataLoader(ReferenceCelebA(root, size), batch_size=BATCH, shuffle=True, num_workers=1, drop_last=True))
    for i in range(warmup + iterations):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        x, label = next(batches)
        x, c_org = x.to(device), label.to(device)
        c_trg = c_org[torch.randperm(c_org.shape[0])]
        out_src, out_cls = D(x)
        d_real = -out_src.mean()
        d_cls = F.binary_cross_entropy_with_logits(out_cls, c_org, reduction="sum") / x.shape[0]
        fake = G(x, c_trg)
        out_src, _ = D(fake.detach())
        d_fake = out_src.mean()
        alpha = torch.rand(x.shape[0], 1, 1, 1, device=device)
        x_hat = (alpha * x + (1 - alpha) * fake.detach()).requires_grad_(True)
        out_src, _ = D(x_hat)
        (grad,) = torch.autograd.grad(out_src, x_hat, torch.ones_like(out_src), create_graph=True)
        gp = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        g_opt.zero_grad()
        d_opt.zero_grad()
        (d_real + d_fake + d_cls + 10 * gp).backward()
        d_opt.step()
        if (i + 1) % 5 == 0:
            fake = G(x, c_trg)
            out_src, out_cls = D(fake)
            g_cls = F.binary_cross_entropy_with_logits(out_cls, c_trg, reduction="sum") / x.shape[0]
            rec = (x - G(fake, c_org)).abs().mean()
            g_opt.zero_grad()
            d_opt.zero_grad()
            (-out_src.mean() + g_cls + 10 * rec).backward()
            g_opt.step()
    sync(device)
    return (time.perf_counter() - start) / iterations


def mdt_components(root: Path, size: int, device: str, precision: str, extra=()):
    registry = load_plugins().registry
    overrides = [
        f"datasets.celeba.root={root}",
        f"datasets.celeba.test_size={HELD_OUT}",
        f"run.image_size={size}",
        f"run.device={device}",
        f"run.precision={precision}",
        f"run.batch_size={BATCH}",
        *extra,
    ]
    recipe = load_recipe(REPO / "recipes" / "stargan_celeba.toml", overrides, registry)
    torch.manual_seed(0)
    return build(recipe, registry)


def data_speed(root: Path, size: int, cache_dir: Path, rounds: int = 3) -> dict[str, float]:
    """Images/s of the data pipelines alone (single process)."""
    reference = ReferenceCelebA(root, size)
    c = mdt_components(root, size, "cpu", "fp32")
    files = c.train_sets[0]
    cached = ImageCache(files, cache_dir, "data-bench")
    for i in range(len(files)):
        cached[i]  # first epoch fills the cache
    results = {}
    for name, dataset in (
        ("reference: PIL decode per image", reference),
        ("mdt: decode (first epoch)", files),
        ("mdt: uint8 cache (later epochs)", cached),
    ):
        start = time.perf_counter()
        for _ in range(rounds):
            for i in range(len(dataset)):
                dataset[i]
        results[name] = rounds * len(dataset) / (time.perf_counter() - start)
    return results


def translate_speed(root: Path, size: int, device: str, precision: str, repeats: int = 5) -> float:
    c = mdt_components(root, size, device, precision)
    translator = c.method.translator()
    images = torch.rand(BATCH, 3, size, size, device=c.device) * 2 - 1
    target = {"Blond_Hair": 1}
    translator.translate(images, to=target)
    sync(c.device)
    start = time.perf_counter()
    for _ in range(repeats):
        translator.translate(images, to=target)
    sync(c.device)
    return repeats * BATCH / (time.perf_counter() - start)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def floor_table(root: Path, size: int, device: str, precision: str, baseline_name: str, baseline: float) -> Table:
    """How fast mdt's defaults could go here at all: their FLOPs by precision, this
    device's best measured rate for each, and the seconds per iteration that gives."""
    flops = mdt_flops_by_dtype(root, size, device, precision)
    rates = {dtype: best_rate(device, dtype) for dtype in flops}
    floor = floor_seconds(flops, rates)
    table = Table(title=f"the floor: mdt's defaults ({precision}) with every product at this {device}'s best measured rate")
    for column in ("computes in", "GFLOP per iteration", "best rate, GFLOP/s", "seconds at that rate"):
        table.add_column(column)
    for dtype, count in flops.items():
        table.add_row(str(dtype).removeprefix("torch."), f"{count / 1e9:.1f}", f"{rates[dtype] / 1e9:.0f}", f"{count / rates[dtype]:.3f}")
    table.add_row("all", f"{sum(flops.values()) / 1e9:.1f}", "", f"{floor:.3f} (at most {baseline / floor:.2f}x {baseline_name})")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="image size (64: CPU configuration, 128: paper)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--official", type=Path, help="a clone of github.com/yunjey/stargan (its main.py is run unchanged)")
    parser.add_argument("--iterations", type=int, default=50, help="iterations each loop trains (timed from the first log line)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of the official loop and of mdt's defaults, taking turns; each row is their median"
    )
    parser.add_argument("--reference-iterations", type=int, default=10, help="timed iterations of the in-process reference loop")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first iterations of the reference loop")
    parser.add_argument("--images", type=int, default=96, help="training images in the generated dataset")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s at the precision used, to print the share reached")
    args = parser.parse_args()
    if args.official:
        args.official = args.official.expanduser().resolve()  # the official loop runs with the clone as its folder
    if args.official and not (args.official / "solver.py").is_file():
        parser.error(f"--official {args.official}: no solver.py there; give a clone of github.com/yunjey/stargan")
    if args.repeats < 1:
        parser.error("--repeats: give 1 or more")
    if args.iterations < 2 * LOG_EVERY:
        parser.error(f"--iterations: give at least {2 * LOG_EVERY} (timing runs between log lines, every {LOG_EVERY})")
    device = torch.device(args.device)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "celeba"
        write_celeba(root, HELD_OUT + args.images)
        rows = []
        official, defaults, chosen = [], [], []
        for turn in range(args.repeats):  # taking turns: a machine that drifts moves both alike
            if args.official:
                official.append(official_loop(args.official, root, args.size, args.iterations, Path(tmp) / f"official{turn}", args.device))
            seconds, chosen = mdt_run(root, args.size, args.iterations, args.device, Path(tmp) / f"defaults{turn}")
            defaults.append(seconds)
        turns = f"; median of {args.repeats}, taking turns" if args.repeats > 1 else ""
        if args.official:
            rows.append((f"official StarGAN (main.py of the clone, fp32{turns})", statistics.median(official)))
        rows.append((f"mdt run, recipe defaults ({'; '.join(chosen)}{turns})", statistics.median(defaults)))
        seconds, _ = mdt_run(
            root, args.size, args.iterations, args.device, Path(tmp) / "fp32", ["run.precision=fp32", "run.cache_images=false"]
        )
        rows.append(("mdt run, fp32, no image cache", seconds))
        rows.append(
            (
                "reference loop (official per-iteration work, in-process, fp32)",
                reference_loop(root, args.size, device, args.warmup, args.reference_iterations),
            )
        )
        baseline_name, baseline = rows[0]
        flops = flops_per_iteration(root, args.size)
        table = Table(
            title=f"training, {args.size} px, batch {BATCH}, G 64/6, D 64/{d_layers(args.size)}, {device} "
            f"({torch.get_num_threads()} threads); {flops / 1e9:.1f} GFLOP per iteration"
        )
        for column in ("loop", "s/iteration", "images/s", f"vs {baseline_name.split(' (')[0]}", "TFLOP/s"):
            table.add_column(column)
        if args.peak_tflops:
            table.add_column("of peak")
        for name, seconds in rows:
            achieved = flops / seconds / 1e12
            cells = [name, f"{seconds:.3f}", f"{BATCH / seconds:.2f}", f"{baseline / seconds:.2f}x", f"{achieved:.3f}"]
            if args.peak_tflops:
                cells.append(f"{achieved / args.peak_tflops:.1%}")
            table.add_row(*cells)
        console.print(table)
        precision = next((line.split()[1] for line in chosen if line.startswith("precision:")), "fp32")
        console.print(floor_table(root, args.size, args.device, precision, baseline_name.split(" (")[0], baseline))
        cache_dir = Path(tmp) / "cache"
        data = Table(title=f"data pipeline, {args.size} px (one process)")
        data.add_column("pipeline")
        data.add_column("images/s")
        for name, rate in data_speed(root, args.size, cache_dir).items():
            data.add_row(name, f"{rate:.0f}")
        console.print(data)
        inference = Table(title=f"translate, {args.size} px, batch {BATCH}, {device}")
        inference.add_column("path")
        inference.add_column("images/s")
        inference.add_row("generator, fp32", f"{translate_speed(root, args.size, args.device, 'fp32'):.1f}")
        console.print(inference)


if __name__ == "__main__":
    main()
