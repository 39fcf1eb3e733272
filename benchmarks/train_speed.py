"""Training, data and translation speed: mdt beside a reference loop, in one run.

The reference loop does per iteration what the official StarGAN implementation does:
fp32, eager, per-image PIL decode + flip + centre crop + resize in a DataLoader worker,
one discriminator step every iteration and one generator step every 5. Both use the
same networks (the paper's, at the chosen size), the same batch and the same data: a
CelebA-layout folder of JPEGs this script writes. Prints a table.

    python benchmarks/train_speed.py --size 64            # the CPU configuration
    python benchmarks/train_speed.py --size 128 --device cuda   # the paper configuration
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from mdt.build import build  # noqa: E402
from mdt.cache import ImageCache  # noqa: E402
from mdt.data import BatchStream  # noqa: E402
from mdt_datasets.samplers import EpochOrder  # noqa: E402
from mdt.engine import to_batch  # noqa: E402
from mdt.plugins import load_plugins  # noqa: E402
from mdt.recipe import load_recipe  # noqa: E402
from mdt_stargan.networks import StarGANDiscriminator, StarGANGenerator  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
BATCH = 16


def write_celeba(root: Path, count: int) -> None:
    """CelebA's layout with 178x218 JPEGs of smooth noise (decode cost like real photos)."""
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
    G, D = StarGANGenerator(len(ATTRS)).to(device), StarGANDiscriminator(size, len(ATTRS)).to(device)
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
        f"datasets.celeba.root={root}", "datasets.celeba.test_size=16", f"run.image_size={size}",
        f"run.device={device}", f"run.precision={precision}", f"run.batch_size={BATCH}", *extra,
    ]
    recipe = load_recipe(REPO / "recipes" / "stargan_celeba.toml", overrides, registry)
    torch.manual_seed(0)
    return build(recipe, registry)


def mdt_loop(root: Path, size: int, device: str, precision: str, cache: bool, workers: int, warmup: int, iterations: int, cache_dir: Path) -> float:
    """Seconds per iteration of mdt's training path (the engine's inner loop)."""
    c = mdt_components(root, size, device, precision, [f"run.num_workers={workers}"])
    dataset = ImageCache(c.train_sets[0], cache_dir, f"bench-{precision}-{workers}") if cache else c.train_sets[0]
    stream = BatchStream(dataset, EpochOrder(dataset, BATCH, seed=0), num_workers=workers)
    for i in range(warmup + iterations):
        if i == warmup:
            sync(c.device)
            start = time.perf_counter()
        c.method.train_step([to_batch(next(stream), 0, c)], i)
    sync(c.device)
    return (time.perf_counter() - start) / iterations


def data_speed(root: Path, size: int, cache_dir: Path, rounds: int = 3) -> dict[str, float]:
    """Images/s of the data pipelines alone (single process)."""
    reference = ReferenceCelebA(root, size)
    c = mdt_components(root, size, "cpu", "fp32")
    files = c.train_sets[0]
    cached = ImageCache(files, cache_dir, "data-bench")
    for i in range(len(files)):
        cached[i]  # first epoch fills the cache
    results = {}
    for name, dataset in (("reference: PIL decode per image", reference), ("mdt: decode (first epoch)", files), ("mdt: uint8 cache (later epochs)", cached)):
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="image size (64: CPU configuration, 128: paper)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--images", type=int, default=96, help="images in the generated dataset")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers for mdt (the reference uses 1, as the official code)")
    args = parser.parse_args()
    device = torch.device(args.device)
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "celeba"
        write_celeba(root, args.images)
        cache_dir = Path(tmp) / "cache"
        rows = []
        reference = reference_loop(root, args.size, device, args.warmup, args.iterations)
        rows.append(("reference loop (official per-iteration work, fp32)", reference))
        variants = [("mdt, fp32, decode every epoch", "fp32", False), ("mdt, fp32, uint8 cache", "fp32", True), ("mdt, bf16 autocast, uint8 cache", "bf16", True)]
        for name, precision, cache in variants:
            rows.append((name, mdt_loop(root, args.size, args.device, precision, cache, args.workers, args.warmup, args.iterations, cache_dir)))
        table = Table(title=f"training, {args.size} px, batch {BATCH}, full networks, {device} ({torch.get_num_threads()} threads)")
        for column in ("loop", "it/s", "images/s", "vs reference"):
            table.add_column(column)
        for name, seconds in rows:
            table.add_row(name, f"{1 / seconds:.3f}", f"{BATCH / seconds:.2f}", f"{reference / seconds:.2f}x")
        console.print(table)
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
