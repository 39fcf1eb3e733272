"""Diversity: how different are the outputs that one input gets from different styles?

For every held-out image and every domain, ``samples`` styles drawn from noise give
``samples`` translations; the score is their mean pairwise L1 distance (pixels in
[-1, 1]), averaged over images. Zero means the style is ignored. The paper reports
LPIPS instead, which needs pretrained network weights that mdt never downloads.
"""

from __future__ import annotations

import itertools

import torch

from mdt.data import collate
from mdt.errors import MdtError


def mean_pairwise_l1(outputs: torch.Tensor) -> torch.Tensor:
    """(K, B, 3, S, S) -> (B,): mean L1 distance over the K(K-1)/2 pairs of each input's outputs."""
    pairs = list(itertools.combinations(range(outputs.shape[0]), 2))
    return torch.stack([(outputs[i] - outputs[j]).abs().flatten(1).mean(1) for i, j in pairs]).mean(0)


class Diversity:
    """Mean pairwise L1 distance among latent-guided outputs for one input and domain."""

    def __init__(self, samples: int = 10, max_images: int = 64, batch_size: int = 32, seed: int = 0) -> None:
        if samples < 2:
            raise ValueError(f"samples must be at least 2 to compare outputs, not {samples}")
        self.samples, self.max_images, self.batch_size, self.seed = samples, max_images, batch_size, seed

    @torch.no_grad()
    def __call__(self, components) -> dict[str, float]:
        translator = components.method.translator()
        names = getattr(translator, "domain_names", None)
        if names is None:
            raise MdtError("the diversity metric needs a method whose translations take a domain and a seed (StarGAN v2)")
        totals = {name: [0.0, 0] for name in names}
        for test in components.test_sets:
            count = min(len(test), self.max_images)
            for start in range(0, count, self.batch_size):
                raw = collate([test[i] for i in range(start, min(count, start + self.batch_size))])
                if raw.images.numel() == 0:
                    continue
                images = components.augmentation(raw.images.to(components.device), train=False)
                for name in names:
                    seeds = range(self.seed, self.seed + self.samples)
                    outputs = torch.stack([translator.translate(images, domain=name, seed=s) for s in seeds])
                    distances = mean_pairwise_l1(outputs)
                    totals[name][0] += distances.sum().item()
                    totals[name][1] += distances.numel()
        per_domain = {f"l1/{name}": total / max(1, n) for name, (total, n) in totals.items()}
        return {"mean_pairwise_l1": sum(per_domain.values()) / len(per_domain), **per_domain}
