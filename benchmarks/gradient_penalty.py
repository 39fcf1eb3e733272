"""The gradient penalty's cost with torch's leaky ReLU and with mdt.layers' (same values).

WGAN-GP differentiates D's input gradient by D's weights. With torch's own leaky ReLU,
autograd also sends a tensor of zeros back through D's whole forward graph; mdt.layers'
leaky ReLU does not. This times one penalty (D forward on the mixed images, input
gradient, backward into the weights) on StarGAN's discriminator, both ways, in one
process, alternating, and prints the median of each.

    python benchmarks/gradient_penalty.py                 # 64 px, D 64 channels / 5 layers
    python benchmarks/gradient_penalty.py --size 128 --layers 6
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from mdt_stargan.losses import gradient_penalty
from mdt_stargan.networks import StarGANDiscriminator
from rich.console import Console
from rich.table import Table
from torch import nn

from mdt.layers import LeakyReLU


def with_activation(critic: StarGANDiscriminator, native: bool) -> StarGANDiscriminator:
    """The same critic, its trunk's leaky ReLUs torch's (``native``) or mdt's."""
    for name, module in critic.trunk.named_children():
        if isinstance(module, (nn.LeakyReLU, LeakyReLU)):
            critic.trunk._modules[name] = nn.LeakyReLU(0.01) if native else LeakyReLU(0.01)
    return critic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--conv-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    critic = StarGANDiscriminator(args.size, 5, args.conv_dim, args.layers)
    real, fake = torch.rand(2, args.batch, 3, args.size, args.size) * 2 - 1
    alpha = torch.rand(args.batch, 1, 1, 1)

    def penalty() -> float:
        critic.zero_grad(set_to_none=True)
        start = time.perf_counter()
        value, _ = gradient_penalty(critic, real, fake, alpha)
        value.backward()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"torch's leaky ReLU": [], "mdt.layers leaky ReLU": []}
    grads = {}
    for native, name in ((True, "torch's leaky ReLU"), (False, "mdt.layers leaky ReLU")):
        with_activation(critic, native)
        penalty()  # warm-up
        grads[name] = [p.grad.clone() for p in critic.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    for _ in range(args.repeats):
        for native, name in ((True, "torch's leaky ReLU"), (False, "mdt.layers leaky ReLU")):
            with_activation(critic, native)
            times[name].append(penalty())
    largest = max((a - b).abs().max().item() for a, b in zip(*grads.values()))
    table = Table(title=f"gradient penalty, {args.size} px, D {args.conv_dim}/{args.layers}, batch {args.batch}, fp32, "
                        f"{torch.get_num_threads()} threads; median of {args.repeats}")
    table.add_column("D's activation")
    table.add_column("s per penalty")
    table.add_column("vs torch's")
    baseline = statistics.median(times["torch's leaky ReLU"])
    for name, values in times.items():
        table.add_row(name, f"{statistics.median(values):.3f}", f"{baseline / statistics.median(values):.2f}x")
    Console().print(table)
    Console().print(f"largest difference of D's weight gradients between the two: {largest:.2e}")


if __name__ == "__main__":
    main()
