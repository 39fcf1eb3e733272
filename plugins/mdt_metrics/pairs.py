"""Held-out images translated to every target: what the translation metrics measure.

Each source image goes to every sample-grid target (a domain, or an attribute set or
flipped). Where the target lies in another dataset (StarGAN's mask vector), the labels
it keeps are the ones the judge classifier reads off the image.

A translator whose outputs vary beyond the labels is measured in each *way* its options
offer (:func:`ways`): ``latent``, a style drawn from noise by its ``varies`` option
(StarGAN v2's ``seed``), and ``reference``, the style of a reference image given to its
image option (StarGAN v2's ``ref``); one with neither has the one way ``labels``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from mdt.evaluation import Evaluation, Target
from mdt.interfaces import Metric
from mdt.ranges import Positive


class HeldOutMetric(Metric):
    """Base of metrics over up to ``max_images`` held-out images per dataset."""

    def __init__(self, max_images: Positive = 256) -> None:
        if max_images < 1:
            raise ValueError(f"max_images must be at least 1, not {max_images}")
        self.max_images = max_images


@dataclass
class Translated:
    source: int  # dataset of the inputs
    images: torch.Tensor  # inputs (B, 3, S, S)
    labels: torch.Tensor  # their labels in the source dataset
    target: Target
    base: torch.Tensor  # the inputs' labels in the target dataset
    wanted: torch.Tensor  # the labels asked for
    changed: torch.Tensor  # (B,) inputs the target changes (a translation, not a copy)
    fake: torch.Tensor  # the translations
    pairs: list[str]  # (B,) "source -> target" names
    indices: list[int]  # (B,) each input's index in its held-out set (what a dataset knows it by)

    def asked(self, schema) -> torch.Tensor:
        """(B, n) the label entries the target sets: what the judge should read."""
        mask = self.wanted != self.base
        for name in self.target.assignments:
            mask[:, schema.index(name)] = True
        return mask


def source_names(schema, labels: torch.Tensor, target: Target | None = None) -> list[str]:
    """Each image's domain where there is one per image; for a target in an exclusive
    group (a hair colour), each image's member of that group (CycleGAN's and StarGAN's
    Black_Hair->Blond_Hair); else its dataset's name."""
    if schema.categorical:
        return [schema.names[i] for i in labels.argmax(dim=1).tolist()]
    fallback = schema.dataset or "images"
    group = schema.group_of(next(iter(target.assignments))) if target is not None and len(target.assignments) == 1 else ()
    if len(group) < 2:
        return [fallback] * labels.shape[0]
    columns = labels[:, [schema.index(n) for n in group]]
    return [group[int(row.argmax())] if row.max() > 0.5 else fallback for row in columns.cpu()]


def ways(translator) -> dict[str, str | None]:
    """The ways metrics choose a translator's outputs, and the option each is asked by."""
    found: dict[str, str | None] = {}
    if translator.varies:
        found["latent"] = translator.varies
    image = next((option.name for option in translator.options if option.type == "image"), None)
    if image:
        found["reference"] = image
    return found or {"labels": None}


def asked_by(offered: dict[str, str | None], way: str) -> str:
    """The option that asks for ``way``, one of :func:`ways`' that has one (latent, reference)."""
    option = offered[way]
    assert option is not None, f"the {way} way is asked by an option"
    return option


def references(evaluation: Evaluation, target: Target, count: int) -> torch.Tensor:
    """Up to ``count`` held-out images that show ``target``: the references of
    reference-guided translation (StarGAN v2's protocol), read once per evaluation."""
    key = ("references", target.title, target.dataset, count)
    if key not in evaluation.cache:
        schema = evaluation.schemas[target.dataset]
        found = []
        for images, labels in evaluation.batches(target.dataset, len(evaluation.components.test_sets[target.dataset])):
            found.append(images[target.holds(schema, labels)])
            if sum(len(f) for f in found) >= count:
                break
        evaluation.cache[key] = torch.cat(found)[:count] if found else torch.empty(0, device=evaluation.device)
    return evaluation.cache[key]


@torch.no_grad()
def translations(
    evaluation: Evaluation,
    max_images: int,
    way: str | None = None,
    seed: int = 0,
    sources: Collection[int] | None = None,
    wanted_pairs: Callable[[int, Target], bool] | None = None,
    strength: float = 1.0,
) -> Iterator[Translated]:
    """Every held-out batch (up to ``max_images`` per dataset) to every target, in ``way``
    (default: the translator's first). The latent way draws each batch's styles with
    ``seed`` plus the batch's index; the reference way takes references of the target from
    the held-out images, one per input, in turn from the ``seed``-th on. ``sources``: only
    these datasets' images; ``wanted_pairs(source, target)``: only the pairs it accepts
    (a metric that skips targets in other datasets needs no judge: only those need the
    labels a target keeps read off the images). ``strength``: part of the way,
    ``base + strength * (target - base)``, for continuous labels only (an expression half
    way; a hair colour cannot be half asked for)."""
    translator = evaluation.translator
    offered = ways(translator)
    way = way or next(iter(offered))
    for source, schema in enumerate(evaluation.schemas):
        if sources is not None and source not in sources:
            continue
        for batch_index, (batch_indices, batch_images, batch_labels) in enumerate(evaluation.indexed_batches(source, max_images)):
            images, labels, indices = batch_images, batch_labels, batch_indices
            accepted = translator.accepts(labels, source)
            if accepted is not None:  # a model of some domains: only their images
                images, labels = images[accepted], labels[accepted]
                indices = [i for i, keep in zip(batch_indices, accepted.tolist(), strict=True) if keep]
                if images.shape[0] == 0:
                    continue
            for target in evaluation.targets:
                if wanted_pairs is not None and not wanted_pairs(source, target):
                    continue
                names = source_names(schema, labels, target if target.dataset == source else None)
                target_schema = evaluation.schemas[target.dataset]
                base = labels if target.dataset == source else evaluation.classifier.predict(images, target.dataset)
                wanted = target.labels(target_schema, base)
                if strength != 1.0:
                    assert target_schema.continuous, "only continuous labels are asked for part of the way"
                    wanted = base + strength * (wanted - base)
                changed = (wanted != base).any(dim=1)
                request: dict[str, Any] = {}
                if way == "latent":
                    request[asked_by(offered, way)] = seed + batch_index
                elif way == "reference":
                    pool = references(evaluation, target, 64)
                    if pool.shape[0] == 0:
                        continue  # no held-out image shows this target
                    request[asked_by(offered, way)] = pool[(torch.arange(images.shape[0], device=pool.device) + seed) % pool.shape[0]]
                fake = translator.to_labels(images, wanted, target.dataset, base=base, **request)
                pairs = [f"{n}->{target.title}" for n in names]
                yield Translated(source, images, labels, target, base, wanted, changed, fake, pairs, indices)
