"""The discriminator's costs in one iteration, with torch's layers and with mdt.layers'.

WGAN-GP differentiates D's input gradient by D's weights. With torch's own leaky ReLU,
autograd also sends a tensor of zeros back through D's whole forward graph; mdt.layers'
leaky ReLU does not. D's last, weight-heavy convolutions (maps of at most 4x4) run as one
matrix product on a CPU (mdt.layers.SmallMapConv2d). This times one penalty (D forward
on the mixed images, input gradient, backward into the weights) and D's forward and
backward on a batch of real and fake images, on StarGAN's discriminator built three
ways, in one process, alternating, and prints the median of each and how far D's weight
gradients (penalty) are from torch's layers.

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

from mdt.layers import LeakyReLU, SmallMapConv2d

VARIANTS = {  # name: (torch's leaky ReLU, torch's convolutions)
    "torch's leaky ReLU and convolutions": (True, True),
    "mdt.layers leaky ReLU": (False, True),
    "mdt.layers leaky ReLU, small-map conv (as built)": (False, False),
}


def built_as(critic: StarGANDiscriminator, native_activation: bool, native_convolution: bool) -> StarGANDiscriminator:
    """The same critic (same parameters), its trunk's layers torch's or mdt.layers'."""
    for name, module in critic.trunk.named_children():
        if isinstance(module, (nn.LeakyReLU, LeakyReLU)):
            critic.trunk._modules[name] = nn.LeakyReLU(0.01) if native_activation else LeakyReLU(0.01)
        elif isinstance(module, nn.Conv2d):
            module.__class__ = nn.Conv2d if native_convolution else SmallMapConv2d
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

    def real_and_fake() -> float:
        critic.zero_grad(set_to_none=True)
        start = time.perf_counter()
        scores, logits = critic(torch.cat([real, fake]))
        (scores.mean() + logits.square().mean()).backward()
        return time.perf_counter() - start

    times = {name: {"penalty": [], "real and fake": []} for name in VARIANTS}
    grads = {}
    for name, layers in VARIANTS.items():
        built_as(critic, *layers)
        real_and_fake()  # warm-up
        penalty()
        grads[name] = {k: p.grad.clone() for k, p in critic.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    for _ in range(args.repeats):
        for name, layers in VARIANTS.items():
            built_as(critic, *layers)
            times[name]["penalty"].append(penalty())
            times[name]["real and fake"].append(real_and_fake())
    table = Table(
        title=f"discriminator, {args.size} px, D {args.conv_dim}/{args.layers}, batch {args.batch} (real and fake: "
        f"{2 * args.batch}), fp32, {torch.get_num_threads()} threads; median of {args.repeats}"
    )
    for column in (
        "D's layers",
        "penalty s",
        "vs torch's",
        "real+fake fwd+bwd s",
        "vs torch's",
        "penalty's weight gradients: largest relative difference from torch's",
    ):
        table.add_column(column)
    first = next(iter(VARIANTS))
    baseline = {part: statistics.median(values) for part, values in times[first].items()}
    for name in VARIANTS:
        medians = {part: statistics.median(values) for part, values in times[name].items()}
        difference = max(((grads[name][k] - g).abs().max() / g.abs().max()).item() for k, g in grads[first].items())
        table.add_row(
            name,
            f"{medians['penalty']:.3f}",
            f"{baseline['penalty'] / medians['penalty']:.2f}x",
            f"{medians['real and fake']:.3f}",
            f"{baseline['real and fake'] / medians['real and fake']:.2f}x",
            f"{difference:.1e}",
        )
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
