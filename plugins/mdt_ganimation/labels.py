"""Continuous targets: labels in [0, 1] (action-unit intensities, an attribute's strength)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mdt.errors import MdtError
from mdt.labels import LabelEncoder, LabelSchema, part_loss, part_predict


class Continuous(LabelEncoder):
    """One dataset of continuous labels: the condition is the labels themselves; the
    discriminator's second head regresses them (squared error). Training targets are other
    images' labels with uniform noise of ``noise`` added, clipped to [0, 1] (as GANimation
    draws them), so the generator sees strengths between the ones in the data."""

    def __init__(self, schemas: Sequence[LabelSchema], noise: float = 0.1) -> None:
        if len(schemas) != 1:
            raise MdtError(f"continuous encodes one dataset, but the recipe has {len(schemas)}")
        if not schemas[0].continuous:
            raise MdtError(f"continuous needs labels in [0, 1], but '{schemas[0].dataset}' has 0/1 labels; use type = \"multi_hot\"")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], not {noise}")
        self.schemas, self.schema, self.noise = list(schemas), schemas[0], noise

    @property
    def condition_dim(self) -> int:
        return len(self.schema)

    @property
    def num_classes(self) -> int:
        return len(self.schema)

    def encode(self, labels, source):
        return labels

    def sample_targets(self, labels, source, generator=None):
        shuffled = super().sample_targets(labels, source, generator)
        noise = (torch.rand(labels.shape, generator=generator) * 2 - 1).to(labels.device) * self.noise
        return (shuffled + noise).clamp(0, 1)

    def classification_loss(self, logits, labels, source):
        return part_loss(self.schema, logits, labels)

    def predict(self, logits, source):
        return part_predict(self.schema, logits)
