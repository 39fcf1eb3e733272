"""``speaker``: a judge of speaker identity for ``mdt eval``, built the way speaker
recognisers are (x-vectors, Snyder et al. 2018): layers over a few frames at a time with
the mel-cepstral coefficients as channels, then the mean and deviation of their outputs
over the whole clip (statistics pooling), an embedding and a speaker per class.

Why not the image judge (timm's ResNet-18)? It reads a mel-cepstrogram as a picture, so it
learns whatever tells the training clips apart, timing and texture included. A voice
conversion keeps the source's timing by design (it converts each stretch of frames), and
measured on the espeak corpus the image judge calls even a conversion trained *with* the
parallel truth (a least-squares map per target speaker, 7.1 dB from the target's
recording against the source's 11.2) the target only 0.70 of the time, while it reads
real held-out clips at 1.00. This judge reads real clips at 1.00, that conversion at
0.93 and the unconverted source as the target at 0.00 (docs/speech.md,
benchmarks/speech_judge.py). It shares nothing with the method's domain classifier: other
layers, trained apart, on the real training clips only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from mdt.evaluation import train_judge_networks
from mdt.interfaces import Classifier
from mdt.labels import LabelSchema, part_predict
from mdt.ranges import Count, Positive, Rate
from mdt.samples import SampleSpec


class SpeakerNetwork(nn.Module):
    """(B, 1, coefficients, T) -> speaker logits, through a statistics-pooled embedding."""

    def __init__(self, coefficients: int, speakers: int, width: int, embedding: int) -> None:
        super().__init__()

        def layer(inputs: int, outputs: int, kernel: int, dilation: int) -> list[nn.Module]:
            return [
                nn.Conv1d(inputs, outputs, kernel, dilation=dilation, padding=dilation * (kernel // 2)),
                nn.ReLU(),
                nn.BatchNorm1d(outputs),
            ]

        self.frames = nn.Sequential(
            *layer(coefficients, width, 5, 1),
            *layer(width, width, 3, 2),
            *layer(width, width, 3, 3),
            *layer(width, 2 * width, 1, 1),
        )
        self.embed = nn.Sequential(nn.Linear(4 * width, embedding), nn.ReLU(), nn.BatchNorm1d(embedding))
        self.head = nn.Linear(embedding, speakers)

    def embedding(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frames(x[:, 0])
        return self.embed(torch.cat([h.mean(dim=2), h.std(dim=2)], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(x))


class SpeakerJudge(Classifier):
    """One speaker network per dataset, trained on its real training clips (the module's docstring)."""

    def __init__(
        self,
        schemas: Sequence[LabelSchema],
        width: Positive = 128,
        embedding: Positive = 64,
        steps: Positive = 300,
        batch_size: Positive = 64,
        lr: Rate = 1e-3,
        seed: Count = 0,
        sample: SampleSpec | None = None,
    ) -> None:
        if sample is None or sample.channels != 1:
            raise ValueError(
                f"the speaker judge reads (1, coefficients, frames) clips, not samples {sample.shape if sample else 'of pictures'}"
            )
        self.schemas = list(schemas)
        self.steps, self.batch_size, self.lr, self.seed = steps, batch_size, lr, seed
        torch.manual_seed(seed)
        self.models = nn.ModuleList(SpeakerNetwork(sample.height, len(s), width, embedding) for s in self.schemas)
        self.feature_space = f"speaker judge embedding ({embedding}, statistics-pooled)"

    def images_problem(self, image_size: int) -> str | None:
        if self.batch_size < 2:
            return f"the speaker judge trains with batch normalisation: batch_size {self.batch_size} must be at least 2"
        return None

    def to(self, device: torch.device) -> SpeakerJudge:
        self.models.to(device)
        return self

    def fit(
        self, train_sets: Sequence, augmentation: Callable, device: torch.device, progress: Callable[[int], None] | None = None
    ) -> None:
        """``steps`` Adam steps per dataset on random batches of its training clips."""
        train_judge_networks(
            self.models, self.schemas, train_sets, augmentation, device, self.steps, self.batch_size, self.lr, self.seed, progress=progress
        )

    @torch.no_grad()
    def predict(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """0/1 speakers (B, n) of ``dataset``'s schema read off clips in [-1, 1]."""
        return part_predict(self.schemas[dataset], self.models[dataset].eval()(images.float()))

    @torch.no_grad()
    def features(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """The speaker embeddings (B, embedding)."""
        return self.models[dataset].eval().embedding(images.float())

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.models.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.models.load_state_dict(state)
