"""Diversity: how different are the outputs one input gets from different styles?

StarGAN v2's protocol: every held-out image goes to every other domain ``samples``
times (10 in the paper), with styles from noise (latent mode) and from different
reference images (reference mode); the score is the mean distance over the outputs'
pairs. The paper's distance is LPIPS, which needs network weights: with them
(``mdt eval --lpips``) it is LPIPS, otherwise the distance between the judge
classifier's features, labelled so. The mean pixel L1 (images in [-1, 1]) is always
reported too. Zero means the style is ignored.

On datasets that draw each held-out image's true translation (``synthetic_celeba``), the
pixel L1 is split by where that truth changes the input: ``pixel_l1_changed`` over the
pixels the target changes (the hair a new colour goes to: diversity wanted there), and
``pixel_l1_kept`` over the rest (background, face, what the target leaves: diversity
there is a style repainting what should stay).
"""

from __future__ import annotations

import itertools
from typing import Annotated

import torch

from mdt.errors import MdtError
from mdt.evaluation import Evaluation
from mdt.grids import grid_image
from mdt.interfaces import Metric
from mdt.ranges import AtLeast, Count, Positive
from mdt_metrics.counterfactual import DrawsTruths
from mdt_metrics.features import feature_space, image_features
from mdt_metrics.pairs import Translated, translations, ways

GRID_ROWS = 8


def mean_pairwise(outputs: torch.Tensor, distance) -> torch.Tensor:
    """(K, B, ...) -> (B,): mean of ``distance(a, b)`` (B,) over the K(K-1)/2 pairs of outputs."""
    pairs = list(itertools.combinations(range(outputs.shape[0]), 2))
    return torch.stack([distance(outputs[i], outputs[j]) for i, j in pairs]).mean(0)


def pixel_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).abs().flatten(1).mean(1)


def mean_pairwise_l1(outputs: torch.Tensor) -> torch.Tensor:
    """(K, B, 3, S, S) -> (B,): mean L1 distance over the K(K-1)/2 pairs of each input's outputs."""
    return mean_pairwise(outputs, pixel_l1)


def perceptual_distance(evaluation: Evaluation):
    """LPIPS when the user gave its weights (``mdt eval --lpips``), else None."""
    if "lpips" not in evaluation.weights:
        return None
    if "lpips" not in evaluation.cache:
        from mdt_metrics.lpips import Lpips

        evaluation.cache["lpips"] = (
            Lpips.from_files(evaluation.weights["lpips"], evaluation.weights.get("alexnet")).to(evaluation.device).eval()
        )
    return evaluation.cache["lpips"]


def region_distances(
    evaluation: Evaluation, first: Translated, keep: torch.Tensor, outputs: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """Mean pairwise pixel L1 of ``outputs`` (K, B, C, H, W) inside and outside the pixels
    each input's true translation changes, where its dataset draws that truth (and the
    target is in the images' own dataset); else nothing."""
    items = evaluation.components.test_sets[first.source]
    if first.target.dataset != first.source or not isinstance(items, DrawsTruths):
        return []
    rows = keep.nonzero().flatten().tolist()
    drawn = torch.stack([items.counterfactual(first.indices[r], first.wanted[r].cpu()) for r in rows])
    truth = evaluation.components.augmentation(drawn.to(evaluation.device), train=False)
    inputs = first.images[keep]
    changed = ((truth - inputs).abs().amax(dim=1, keepdim=True) > 1 / 255).expand_as(inputs).float()

    found = []
    for key, region in (("pixel_l1_changed", changed), ("pixel_l1_kept", 1 - changed)):
        some = region.flatten(1).sum(1) > 0  # an image whose region is empty has no distance there
        if some.any():
            inside, chosen = region[some], outputs[:, some]
            found.append((key, mean_pairwise(chosen, lambda a, b, r=inside: ((a - b).abs() * r).flatten(1).sum(1) / r.flatten(1).sum(1))))
    return found


class Diversity(Metric):
    """Mean pairwise distance (LPIPS, else judge features; and pixel L1) among one input's outputs, per mode and domain."""

    docs = "docs/evaluation.md, What is measured"
    meanings = {
        "lpips": ("higher", "mean LPIPS between one input's outputs: how different its styles look"),
        "feature_distance": ("higher", "mean distance between one input's outputs in the judge's features (no LPIPS weights given)"),
        "pixel_l1": ("higher", "mean pixel distance between one input's outputs"),
        "pixel_l1_changed": ("higher", "the same over the pixels the true translation changes (drawn datasets only)"),
        "pixel_l1_kept": ("lower", "the same over the pixels the true translation keeps: styles repainting what should stay"),
        "distance": ("", "what the distances are measured in"),
    }

    def __init__(self, samples: Annotated[int, AtLeast(2)] = 10, max_images: Positive = 64, seed: Count = 0) -> None:  # pairs of outputs
        if max_images < 1:
            raise ValueError(f"max_images must be at least 1, not {max_images}")
        self.samples, self.max_images, self.seed = samples, max_images, seed

    def prepare(self, evaluation: Evaluation) -> None:
        perceptual_distance(evaluation)  # load LPIPS's weights now: a wrong file fails before any work

    def applies(self, translator) -> bool:
        """Styles to tell apart: the translator's outputs vary (:func:`mdt_metrics.pairs.ways`)."""
        return "latent" in ways(translator)

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float | str]:
        if not self.applies(evaluation.translator):
            raise MdtError("the diversity metric needs a method whose translations take a style (StarGAN v2)")
        lpips = perceptual_distance(evaluation)
        perceptual = "lpips" if lpips is not None else "feature_distance"
        results: dict[str, float | str] = {"distance": "lpips (alexnet)" if lpips is not None else f"L2 in {feature_space(evaluation)}"}
        for mode in ways(evaluation.translator):
            sums: dict[str, list[float]] = {}
            rows: list[list[torch.Tensor]] = []
            targets: list[str] = []
            runs = [translations(evaluation, self.max_images, mode, seed=self.seed + 100_003 * k) for k in range(self.samples)]
            for drawn in zip(*runs, strict=True):
                first = drawn[0]
                keep = first.changed
                if not keep.any():
                    continue
                outputs = torch.stack([t.fake[keep] for t in drawn])
                dataset = first.target.dataset
                if lpips is not None:
                    distance = mean_pairwise(outputs, lpips)
                else:
                    features = torch.stack([image_features(evaluation, o, dataset) for o in outputs])
                    distance = mean_pairwise(features, lambda a, b: (a - b).norm(dim=1))
                measured = [(perceptual, distance), ("pixel_l1", mean_pairwise_l1(outputs))]
                measured += region_distances(evaluation, first, keep, outputs)
                for key, values in measured:
                    for name in (f"{mode}/{key}", f"{mode}/{key}/{first.target.title}"):
                        entry = sums.setdefault(name, [0.0, 0])
                        entry[0] += values.sum().item()
                        entry[1] += values.numel()
                inputs = first.images[keep]
                for i in range(min(2, inputs.shape[0], GRID_ROWS - len(rows))):
                    rows.append([inputs[i], *outputs[:, i]])
                    targets.append(f"to {first.target.title}")  # which target a row's outputs are of
            results.update({key: total / count for key, (total, count) in sums.items()})
            if rows:
                titles = ["input", *[f"{mode} {k + 1}" for k in range(self.samples)]]
                evaluation.figures[f"diversity, {mode}-guided: {self.samples} outputs per input"] = grid_image(
                    rows, titles, row_titles=targets
                )
        return results
