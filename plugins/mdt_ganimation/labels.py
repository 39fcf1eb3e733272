"""Continuous targets: labels in [0, 1] (action-unit intensities, an attribute's strength)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mdt_labels.encoders import SingleDataset

from mdt.errors import MdtError
from mdt.labels import LabelSchema
from mdt.ranges import Weight


class Continuous(SingleDataset):
    """One dataset of continuous labels: the condition is the labels themselves; the
    discriminator's second head regresses them (squared error). Training targets are other
    images' labels with uniform noise of ``noise`` added, clipped to [0, 1] (as GANimation
    draws them), so the generator sees strengths between the ones in the data."""

    def __init__(self, schemas: Sequence[LabelSchema], noise: Weight = 0.1) -> None:
        super().__init__(schemas, "continuous")
        if not self.schema.continuous:
            raise MdtError(f"continuous needs labels in [0, 1], but '{self.schema.dataset}' has 0/1 labels; use type = \"multi_hot\"")
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], not {noise}")
        self.noise = noise

    def sample_targets(self, labels, source, generator=None):
        shuffled = super().sample_targets(labels, source, generator)
        noise = (torch.rand(labels.shape, generator=generator) * 2 - 1).to(labels.device) * self.noise
        return (shuffled + noise).clamp(0, 1)
