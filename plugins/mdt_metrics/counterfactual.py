"""How close translations come to the truth, where the truth is known.

A dataset that draws its images from known parameters (``synthetic_faces``,
``synthetic_celeba``, ``synthetic_expressions``) can draw a
held-out image's true translation too: the same face with the target's attributes
(``counterfactual(index, label)``). Per target, over the held-out images the target
changes:

- ``counterfactual_l1``: mean |translation - true counterfactual|;
- ``preservation_l1``: mean |translation - input| over the pixels the true
  counterfactual leaves as they were (background, skin, what the target does not touch);
- ``identity_l1``: the same distance for the input itself, not translated — the score of
  a model that changes nothing, for scale.

Pixels are in [0, 1]. A classifier's accuracy cannot see a recoloured background;
``preservation_l1`` can. Datasets without ``counterfactual`` are left out.
"""

from __future__ import annotations

import torch

from mdt.data import collate
from mdt.evaluation import Evaluation, spread
from mdt_metrics.pairs import HeldOutMetric


class CounterfactualError(HeldOutMetric):
    """Distance of translations to their true counterfactuals, and what they change that should stay (drawn datasets only)."""

    docs = "docs/evaluation.md, What translations keep"
    meanings = {
        "counterfactual_l1": ("lower", "distance of each translation to the true translation the dataset draws (pixels in [0, 1])"),
        "preservation_l1": ("lower", "change where the truth leaves the input as it was: a recoloured background shows here"),
        "identity_l1": ("", "the truth's own distance to the input, for scale"),
    }

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        sums: dict[str, list[float]] = {}  # target -> [counterfactual, preservation, identity, images]
        for dataset, items in enumerate(evaluation.components.test_sets):
            if not hasattr(items, "counterfactual"):
                continue
            chosen = spread(len(items), self.max_images)  # the images every other metric measures
            for start in range(0, len(chosen), evaluation.batch_size):
                indices = chosen[start : start + evaluation.batch_size]
                raw = collate([items[i] for i in indices])
                images = evaluation.components.augmentation(raw.images.to(evaluation.device), train=False)
                labels = raw.labels.to(evaluation.device)
                for target in (t for t in evaluation.targets if t.dataset == dataset):
                    wanted = target.labels(evaluation.schemas[dataset], labels)
                    changed = (wanted != labels).any(dim=1)
                    if not changed.any():
                        continue
                    fake = evaluation.translator.to_labels(images, wanted, dataset, base=labels)
                    rows = changed.nonzero().flatten().tolist()
                    truth = torch.stack([items.counterfactual(indices[r], wanted[r].cpu()) for r in rows]).to(evaluation.device)
                    truth = evaluation.components.augmentation(truth, train=False)
                    self._add(sums.setdefault(target.title, [0.0, 0.0, 0.0, 0]), fake[rows], truth, images[rows])
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
