"""How close translations come to the truth, where the truth is known.

A dataset that draws its images from known parameters (``synthetic_faces``,
``synthetic_celeba``, ``synthetic_rafd``, ``synthetic_expressions``) can draw a
held-out image's true translation too: the same face with the target's attributes
(``counterfactual(index, label)``). Two datasets drawn on one face model (synthetic
CelebA and RaFD, trained jointly with the mask vector) also draw each other's labels
(``draws(names)``; ``counterfactual(index, label, names)``): a RaFD expression on a CelebA
face has a true translation too, its other labels as the judge reads them, under keys
that name the images' dataset (``counterfactual_l1/celeba->happy``). Per target, over the
held-out images the target changes:

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

import torch

from mdt.evaluation import Evaluation, Target
from mdt.ranges import Fraction, Positive
from mdt_metrics.pairs import HeldOutMetric, Translated, translations, ways


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
        drawn_sets = [i for i, items in enumerate(test_sets) if hasattr(items, "counterfactual")]
        continuous = [i for i in drawn_sets if schemas[i].continuous]

        def drawable(source: int, target: Target) -> bool:  # another dataset's labels where the face model draws them
            return target.dataset == source or test_sets[source].draws(schemas[target.dataset].names)

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
            items = evaluation.components.test_sets[translated.source]
            rows = translated.changed.nonzero().flatten().tolist()
            if not rows:
                continue
            target, title = translated.target, translated.target.title
            if target.dataset == translated.source:
                drawn = [items.counterfactual(translated.indices[r], translated.wanted[r].cpu()) for r in rows]
            else:  # another dataset's labels (a RaFD expression on a CelebA face), which items.draws()
                names = evaluation.schemas[target.dataset].names
                drawn = [items.counterfactual(translated.indices[r], translated.wanted[r].cpu(), names) for r in rows]
                title = f"{evaluation.schemas[translated.source].dataset or translated.source}->{title}"  # celeba->happy
            truth = evaluation.components.augmentation(torch.stack(drawn).to(evaluation.device), train=False)
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
    def _add(total: list, fake: torch.Tensor, truth: torch.Tensor, inputs: torch.Tensor) -> None:
        """Per image, then summed: distances in [0, 1] pixel units (images are in [-1, 1])."""
        kept = ((truth - inputs).abs().amax(dim=1, keepdim=True) <= 1 / 255).expand_as(inputs).float()
        total[0] += float(((fake - truth).abs() / 2).mean(dim=(1, 2, 3)).sum())
        total[1] += float((((fake - inputs).abs() / 2 * kept).sum(dim=(1, 2, 3)) / kept.sum(dim=(1, 2, 3)).clamp(min=1)).sum())
        total[2] += float(((inputs - truth).abs() / 2).mean(dim=(1, 2, 3)).sum())
        total[3] += fake.shape[0]
