"""How close translations come to the truth, where the truth is known.

A dataset that draws its images from known parameters (``synthetic_faces``,
``synthetic_celeba``, ``synthetic_rafd``, ``synthetic_expressions``) can draw a
held-out image's true translation too: the same face with the target's attributes
(``counterfactual(index, label)``, :class:`DrawsTruths`). Two datasets drawn on one face
model (synthetic CelebA and RaFD, trained jointly with the mask vector) also draw each
other's labels (:class:`DrawsAcross`): a RaFD expression on a CelebA face has a true
translation too — the face with that expression and its own true hair, sex and age —
under keys that name the images' dataset (``counterfactual_l1/celeba->happy``). The
translator is asked, as any joint model is, with the other labels as the judge reads
them; the images counted are those whose truth differs from the input. Per target, over
the held-out images the target changes:

- ``counterfactual_l1``: mean |translation - true counterfactual|;
- ``preservation_l1``: mean |translation - input| over the pixels the true
  counterfactual leaves as they were (background, skin, what the target does not touch);
- ``identity_l1``: the same distance for the input itself, not translated — the score of
  a model that changes nothing, for scale.

Pixels are in [0, 1]. A classifier's accuracy cannot see a recoloured background;
``preservation_l1`` can. Datasets without ``counterfactual`` are left out. A translator
whose outputs vary beyond the labels (StarGAN v2) is measured in each of its ways, the keys
prefixed ``latent/`` and ``reference/``: a style drawn from noise, a reference image's
style; either may legitimately differ from the truth's own (a hair colour's shade), which
the distance counts.

Continuous labels (an expression's strength) can be measured part of the way too: with
``strengths = [0.5, 1.0]`` the translation asked for base + 0.5 * (target - base) meets the
face drawn with those labels, keys prefixed ``strength_0.5/``; strength 1 keeps the keys
above. Binary and categorical labels are measured at strength 1 only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

import torch

from mdt.evaluation import Evaluation, Target
from mdt.ranges import Fraction, Positive
from mdt_metrics.pairs import HeldOutMetric, Translated, translations, ways


@runtime_checkable
class DrawsTruths(Protocol):
    """A dataset that draws each held-out item's true translation: item ``index`` drawn with
    ``label`` (its own labels' order), as the item is cropped and resized."""

    def counterfactual(self, index: int, label: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class DrawsAcross(Protocol):
    """A dataset that also draws another dataset's labels on its items, where ``draws(other)``
    says it can: ``names`` are the labels the target sets, the item keeps its own others."""

    def draws(self, other: object) -> bool: ...

    def counterfactual(self, index: int, label: torch.Tensor, names: Sequence[str] | None = None) -> torch.Tensor: ...


def names_set_by(target: Target, schema) -> torch.Tensor:
    """(n,) which of ``schema``'s labels ``target`` asks for, not keeps from an image's: those
    it decides whatever the image's were (a hair colour: the three colours; an expression:
    all of them) and those it names (a flip: Male, the other way from the image's)."""
    zeros, ones = torch.zeros(1, len(schema.names)), torch.ones(1, len(schema.names))
    named = torch.tensor([name in target.assignments for name in schema.names])
    return (target.labels(schema, zeros) == target.labels(schema, ones))[0] | named


class CounterfactualError(HeldOutMetric):
    """Distance of translations to their true counterfactuals, and what they change that should stay (drawn datasets only)."""

    docs = "docs/evaluation.md, What translations keep"
    meanings = {
        "counterfactual_l1": ("lower", "distance of each translation to the true translation the dataset draws (pixels in [0, 1])"),
        "preservation_l1": ("lower", "change where the truth leaves the input as it was: a recoloured background shows here"),
        "identity_l1": ("", "the truth's own distance to the input, for scale"),
    }

    def __init__(self, max_images: Positive = 256, strengths: Sequence[Fraction] = (1.0,)) -> None:
        super().__init__(max_images)
        if not strengths or min(strengths) <= 0 or len(set(strengths)) != len(strengths):
            raise ValueError(f"strengths must be distinct and above 0, and at least one, not {list(strengths)}")
        self.strengths = sorted(float(s) for s in strengths)

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        offered = ways(evaluation.translator)
        test_sets, schemas = evaluation.components.test_sets, evaluation.schemas
        drawn_sets = [i for i, items in enumerate(test_sets) if isinstance(items, DrawsTruths)]
        continuous = [i for i in drawn_sets if schemas[i].continuous]

        def drawable(source: int, target: Target) -> bool:  # another dataset's labels where the face model draws them
            items = test_sets[source]
            return target.dataset == source or (isinstance(items, DrawsAcross) and items.draws(test_sets[target.dataset]))

        results: dict[str, float] = {}
        for way in offered:
            for strength in self.strengths:
                sources = drawn_sets if strength == 1.0 else continuous
                if not sources:
                    continue
                prefix = f"{way}/" if len(offered) > 1 else ""  # StarGAN v2: latent/..., reference/...
                prefix += "" if strength == 1.0 else f"strength_{strength:g}/"
                measured = self._measure(
                    evaluation, translations(evaluation, self.max_images, way, sources=sources, wanted_pairs=drawable, strength=strength)
                )
                results.update({prefix + key: value for key, value in measured.items()})
        return results

    def _measure(self, evaluation: Evaluation, translated_batches: Iterable[Translated]) -> dict[str, float]:
        sums: dict[str, list[float]] = {}  # target -> [counterfactual, preservation, identity, images]
        for translated in translated_batches:
            found = self._truths(evaluation, translated)
            if found is not None:
                title, rows, truth = found
                self._add(sums.setdefault(title, [0.0, 0.0, 0.0, 0]), translated.fake[rows], truth, translated.images[rows])
        results: dict[str, float] = {}
        for title, (counterfactual, preservation, identity, n) in sums.items():
            results[f"counterfactual_l1/{title}"] = counterfactual / n
            results[f"preservation_l1/{title}"] = preservation / n
            results[f"identity_l1/{title}"] = identity / n
        if sums:
            for name in ("counterfactual_l1", "preservation_l1", "identity_l1"):
                values = [v for k, v in results.items() if k.startswith(name + "/")]
                results[name] = sum(values) / len(values)
        return results

    @staticmethod
    def _truths(evaluation: Evaluation, translated: Translated) -> tuple[str, list[int], torch.Tensor] | None:
        """The target's title, the rows of the translations it changes and their truths."""
        items = evaluation.components.test_sets[translated.source]
        target, indices = translated.target, translated.indices
        if target.dataset == translated.source:
            rows = translated.changed.nonzero().flatten().tolist()
            drawn = [items.counterfactual(indices[r], translated.wanted[r].cpu()) for r in rows]
            title = target.title
        else:  # another dataset's labels (a RaFD expression on a CelebA face): those the target sets
            schema = evaluation.schemas[target.dataset]
            setting = names_set_by(target, schema)
            names = [name for name, sets in zip(schema.names, setting.tolist(), strict=True) if sets]
            rows = list(range(translated.fake.shape[0]))
            drawn = [items.counterfactual(indices[r], translated.wanted[r].cpu()[setting], names) for r in rows]
            title = f"{evaluation.schemas[translated.source].dataset or translated.source}->{target.title}"  # celeba->happy
        if not rows:
            return None
        truth = evaluation.components.augmentation(torch.stack(drawn).to(evaluation.device), train=False)
        if target.dataset != translated.source:  # the judge's reading does not decide which images change
            differs = ((truth - translated.images[rows]).abs().flatten(1).amax(dim=1) > 1 / 255).tolist()
            rows, truth = [r for r, d in zip(rows, differs, strict=True) if d], truth[torch.tensor(differs, dtype=torch.bool)]
        return (title, rows, truth) if rows else None

    @staticmethod
    def _add(total: list, fake: torch.Tensor, truth: torch.Tensor, inputs: torch.Tensor) -> None:
        """Per image, then summed: distances in [0, 1] pixel units (images are in [-1, 1])."""
        kept = ((truth - inputs).abs().amax(dim=1, keepdim=True) <= 1 / 255).expand_as(inputs).float()
        total[0] += float(((fake - truth).abs() / 2).mean(dim=(1, 2, 3)).sum())
        total[1] += float((((fake - inputs).abs() / 2 * kept).sum(dim=(1, 2, 3)) / kept.sum(dim=(1, 2, 3)).clamp(min=1)).sum())
        total[2] += float(((inputs - truth).abs() / 2).mean(dim=(1, 2, 3)).sum())
        total[3] += fake.shape[0]
