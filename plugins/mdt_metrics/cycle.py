"""Cycle error: how much of an image survives a trip to a target and back?

StarGAN's reconstruction loss, measured on held-out images: the mean absolute pixel
difference (images in [-1, 1]) between each input and ``G(G(x, target), source)``;
for StarGAN v2 the way back takes the style the style encoder reads off the input.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation
from mdt_metrics.pairs import HeldOutMetric, translations


class CycleError(HeldOutMetric):
    """Mean L1 between held-out images and their round trip through each target, per source -> target pair."""

    docs = "docs/evaluation.md, What is measured"
    meanings = {
        "l1": ("lower", "mean |x - G(G(x, target), source)| over pixels in [-1, 1]: what a round trip loses"),
        "pair": ("lower", "the round trip's error for this source -> target"),
    }

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        sums: dict[str, list[float]] = {}
        for t in translations(evaluation, self.max_images):
            back = evaluation.translator.reconstruct(
                t.fake, t.images, t.labels, t.source, translated_labels=t.wanted if t.target.dataset == t.source else None
            )
            errors = (back - t.images).abs().flatten(1).mean(1)
            for i, pair in enumerate(t.pairs):
                if not t.changed[i]:
                    continue  # no trip: the target is where the image already is
                for key in ("l1", f"l1/{t.target.title}", f"pair/{pair}"):
                    entry = sums.setdefault(key, [0.0, 0])
                    entry[0] += errors[i].item()
                    entry[1] += 1
        return {key: total / count for key, (total, count) in sums.items()}
