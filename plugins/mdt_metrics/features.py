"""Image features for FID, KID and feature-space distances.

Inception's (the standard FID network) when the user gave its weights file with
``mdt eval --inception``; otherwise the judge classifier's pooled features, which are
always available offline. Every number measured in them names the space it came from.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation, Target


def inception(evaluation: Evaluation):
    if "inception" not in evaluation.cache:
        from mdt_metrics.inception import FidInception

        evaluation.cache["inception"] = FidInception.from_file(evaluation.weights["inception"]).to(evaluation.device).eval()
    return evaluation.cache["inception"]


def feature_space(evaluation: Evaluation) -> str:
    if "inception" in evaluation.weights:
        return "inception (pool3, 2048)"
    return f"classifier ({evaluation.classifier.feature_space})"


@torch.no_grad()
def image_features(evaluation: Evaluation, images: torch.Tensor, dataset: int) -> torch.Tensor:
    """(B, F) features on the CPU of images in [-1, 1]."""
    if "inception" in evaluation.weights:
        return inception(evaluation)(images).double().cpu()
    return evaluation.classifier.features(images, dataset).double().cpu()


def real_features(evaluation: Evaluation, target: Target, max_images: int) -> torch.Tensor:
    """Features of up to ``max_images`` real training images that show ``target`` (the
    paper compares translations with the training images of the target domain)."""
    key = ("real_features", target.title, target.dataset, max_images)
    if key not in evaluation.cache:
        schema = evaluation.schemas[target.dataset]
        found, kept = [], 0
        train = evaluation.components.train_sets[target.dataset]
        for images, labels in evaluation.batches(target.dataset, len(train), split="train"):
            keep = target.holds(schema, labels)
            if keep.any():
                found.append(image_features(evaluation, images[keep], target.dataset))
                kept += int(keep.sum())
            if kept >= max_images:
                break
        evaluation.cache[key] = torch.cat(found)[:max_images] if found else torch.empty(0, dtype=torch.float64)
    return evaluation.cache[key]
