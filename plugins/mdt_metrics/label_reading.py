"""Label reading: how well a model reads the labels of the images it is given.

``mdt translate`` asks only for the labels to change; StarGAN takes the others from what
its discriminator's classifier reads off the input. A recipe that makes D a sharper
critic of translations may make it a worse reader of real faces, and then a translation
asked to change only the hair also changes the sex it misread. This metric reads real
held-out images with the model's own reader, as the judge's ``real_accuracy`` does with
the judge, so the two can be read side by side.
"""

from __future__ import annotations

import torch

from mdt.evaluation import Evaluation, reading_accuracy
from mdt.method import Translator
from mdt_metrics.pairs import HeldOutMetric


class LabelReading(HeldOutMetric):
    """Share of the labels of real held-out images that the model itself reads right."""

    docs = "docs/evaluation.md, What is measured"
    meanings = {
        "label_reading_accuracy": (
            "higher",
            "share of the labels of real held-out images the model itself reads right: what translate takes for labels not given",
        ),
        "label_reading": ("higher", "the model's own reading of this label on real images (for one class per image, its recall)"),
    }

    def applies(self, translator: Translator) -> bool:
        return translator.reads_labels()

    @torch.no_grad()
    def __call__(self, evaluation: Evaluation) -> dict[str, float]:
        if not evaluation.translator.reads_labels():  # named with --metric for a model that reads none
            return {}
        values, _ = reading_accuracy(evaluation, self.max_images, evaluation.translator.read_labels, "label_reading")
        return values
