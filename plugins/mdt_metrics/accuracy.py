"""Translation accuracy: do translated images show their target labels?

StarGAN's protocol for RaFD (Table 3), for any dataset: the judge classifier, trained
on the real training images, reads the held-out images translated to every target. A
continuous label (a strength in [0, 1]) is right within ``CONTINUOUS_TOLERANCE`` (0.2,
one of five intensity levels), and its mean absolute error is reported too. Its
accuracy on the *real* held-out images says how far the judge can be trusted; the
translated images' error rate is read beside it, overall, per label and per
source -> target pair.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation, real_accuracy
from mdt.labels import part_agrees
from mdt_metrics.pairs import HeldOutMetric, translations


class TranslationAccuracy(HeldOutMetric):
    """Share of target labels the judge classifier reads off translated held-out images."""

    docs = "docs/evaluation.md, What is measured"
    meanings = {
        "real_accuracy": (
            "higher",
            "share of the labels of real held-out images the judge reads right (one class per image: of the images): how far to trust it",
        ),
        "real_error": ("lower", "1 - real_accuracy: the judge's own error on real images"),
        "real": ("higher", "the judge's accuracy on real images of this label (for one class per image, its recall)"),
        "target_accuracy": ("higher", "share of translations whose target the judge reads: did the translation happen"),
        "target_error": ("lower", "1 - target_accuracy"),
        "target": ("higher", "target accuracy of the translations into this target"),
        "pair": ("higher", "target accuracy of the translations of this source into this target"),
        "translated_accuracy": ("higher", "share of all labels of the translations read as asked, the ones kept included"),
        "domain_accuracy": ("higher", "share of translations read as their target domain"),
        "target_mae": ("lower", "mean absolute error of the target strengths read off the translations"),
    }

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        counts: dict[str, list[float]] = {}

        def add(key: str, hits: torch.Tensor) -> None:
            entry = counts.setdefault(key, [0.0, 0.0])
            entry[0] += hits.sum().item()
            entry[1] += hits.numel()

        for t in translations(evaluation, self.max_images):
            schema = evaluation.schemas[t.target.dataset]
            read = evaluation.classifier.predict(t.fake, t.target.dataset)
            right = part_agrees(schema, read, t.wanted)
            asked = t.asked(schema) & t.changed[:, None]  # images the target changes: translations, not copies
            # A translation is right when every label the target sets is read right: a hair
            # colour is the new colour read, not only the old one missed (which a judge that
            # reads no colour at all would get half credit for, entry by entry).
            translated = asked.any(dim=1)
            whole = (right | ~asked).all(dim=1)
            add("target_accuracy", whole[translated])
            if schema.continuous:  # how far from the wanted strength, on the [0, 1] scale
                add("target_mae", (read - t.wanted).abs()[asked])
            add(f"target/{t.target.title}", whole[translated])
            if t.target.dataset == t.source:
                add("translated_accuracy", right)  # every label: the ones to keep too
            if schema.categorical:  # one domain per image: the requested one?
                add("domain_accuracy", right.all(dim=1))
            for i, pair in enumerate(t.pairs):
                if translated[i]:
                    add(f"pair/{pair}", whole[i : i + 1])
        results = real_accuracy(evaluation, self.max_images)
        results["real_error"] = 1.0 - results["real_accuracy"]
        for key, (hits, total) in counts.items():
            results[key] = hits / max(1.0, total)
        results["target_error"] = 1.0 - results.get("target_accuracy", 0.0)
        return results
