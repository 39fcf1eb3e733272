"""Image features for FID, KID and feature-space distances.

Inception's when the user gave a file of its weights with ``mdt eval --inception``
(pytorch-fid's TF-Inception or torchvision's ImageNet Inception, told apart by the file:
see :mod:`mdt_metrics.inception`); otherwise the judge classifier's pooled features,
which are always available offline. Every number measured in them names the space it
came from, and the weights file's SHA-256; an Inception file whose hash is not the
published one (mdt_metrics.inception.published) is named "unverified weights" in the
space's name, so no number measured with it passes for a protocol's.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation, Target


def inception(evaluation: Evaluation):
    """The Inception network of the file given, loaded once per evaluation."""
    if "inception" not in evaluation.cache:
        from mdt_metrics.inception import file_sha256, load_inception

        file = evaluation.weights["inception"]
        evaluation.cache["inception"] = load_inception(file).to(evaluation.device).eval()
        evaluation.cache["inception_sha256"] = file_sha256(file)
    return evaluation.cache["inception"]


def inception_verified(evaluation: Evaluation) -> bool:
    """Is the Inception file given the one its protocol publishes (by its SHA-256)?"""
    from mdt_metrics.inception import published

    network = inception(evaluation)
    return published(network.protocol, evaluation.cache["inception_sha256"])


def feature_space(evaluation: Evaluation) -> str:
    if "inception" in evaluation.weights:
        space = inception(evaluation).feature_space
        return space if inception_verified(evaluation) else f"{space}, unverified weights"
    return f"classifier ({evaluation.classifier.feature_space})"


def feature_weights(evaluation: Evaluation) -> str:
    """The SHA-256 of the feature network's weights file; the judge's when it is the classifier."""
    if "inception" in evaluation.weights:
        inception(evaluation)
        return evaluation.cache["inception_sha256"]
    return "judge classifier (no file)"


@torch.no_grad()
def image_features(evaluation: Evaluation, images: torch.Tensor, dataset: int) -> torch.Tensor:
    """(B, F) features on the CPU of images in [-1, 1]."""
    if "inception" in evaluation.weights:
        return inception(evaluation)(images).double().cpu()
    return evaluation.classifier.features(images, dataset).double().cpu()


def real_features(evaluation: Evaluation, target: Target, max_images: int) -> torch.Tensor:
    """Features of up to ``max_images`` real training images that show ``target`` (the
    paper compares translations with the training images of the target domain). Each
    training batch is embedded once, whichever targets it serves."""
    key = ("real_features", target.title, target.dataset, max_images)
    if key not in evaluation.cache:
        schema = evaluation.schemas[target.dataset]
        found, kept = [], 0
        train = evaluation.components.train_sets[target.dataset]
        for index, (images, labels) in enumerate(evaluation.batches(target.dataset, len(train), split="train")):
            keep = target.holds(schema, labels)
            if keep.any():
                batch_key = ("train_features", target.dataset, index)
                if batch_key not in evaluation.cache:
                    evaluation.cache[batch_key] = image_features(evaluation, images, target.dataset)
                found.append(evaluation.cache[batch_key][keep.cpu()])
                kept += int(keep.sum())
            if kept >= max_images:
                break
        evaluation.cache[key] = torch.cat(found)[:max_images] if found else torch.empty(0, dtype=torch.float64)
    return evaluation.cache[key]
