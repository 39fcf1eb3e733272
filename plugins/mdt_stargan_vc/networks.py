"""StarGAN-VC's networks (Kameoka et al. 2018, Fig. 2): 2-D gated CNNs over a mel-cepstrogram
(1, 36, T), the 36 coefficients as height and the frames as width.

Every block is a gated linear unit: two convolutions of the same shape, one through a
sigmoid, multiplied (``GatedBlock``). The generator encodes the mel-cepstrogram down to a
5 x 1 x T/4 code and decodes it with the target speaker's one-hot condition tiled over
every decoder layer's input. The discriminator takes the condition at its input and at
every layer and says, per stretch of frames, whether the speech is a real recording of
that speaker. The domain classifier reads the lowest 8 coefficients and gives speaker
logits per stretch, averaged over time.

The layer sizes are the paper's with ``width`` 32 (its widths are ``width``, 2x, 4x, 2x),
``bottleneck`` 5 and the classifier's ``coefficients`` 8; ``norm`` picks batch
normalisation (the paper's figure) or instance normalisation (the public
implementations'). Two departures, off by default, let a short run on a CPU get somewhere
(docs/speech.md): ``residual`` makes G add its output to its input, starting as the
identity (which, between per-speaker standardisations, already converts each
coefficient's mean and deviation), and a wider ``bottleneck`` lets that change depend on
the whole frame.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import torch
from torch import nn

from mdt.interfaces import Network
from mdt.ranges import Between, Positive
from mdt.samples import SampleSpec

Norm = Literal["batch", "instance"]
MEANINGS = {
    **Network.meanings,
    "images": "standardised mel-cepstrograms (B, 1, 36, T) in [-1, 1], T a multiple of 4 frames of 5 ms",
    "image": "the converted mel-cepstrograms (B, 1, 36, T)",
    "labels": "the target speaker, one-hot (B, speakers), in mdt.condition's order",
    "scores": "real/fake logits per stretch of frames (B, 1, 1, T/8): higher reads as a real recording of that speaker",
    "logits": "speaker logits (B, speakers), averaged over time",
}


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=True)


class GatedBlock(nn.Module):
    """(De)convolution, normalised, gated by a sigmoid of a twin (de)convolution."""

    def __init__(self, inputs: int, outputs: int, kernel, stride, padding, norm: Norm | None, transpose: bool = False) -> None:
        super().__init__()
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        self.values = conv(inputs, outputs, kernel, stride, padding)
        self.gates = conv(inputs, outputs, kernel, stride, padding)
        self.values_norm = _norm(norm, outputs) if norm else nn.Identity()
        self.gates_norm = _norm(norm, outputs) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.values_norm(self.values(x)) * torch.sigmoid(self.gates_norm(self.gates(x)))


def tiled(x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """``x`` with the condition (B, K) tiled over its height and width as K more channels."""
    c = condition.to(x.dtype).view(condition.shape[0], -1, 1, 1).expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, c], dim=1)


def _check_coefficients(sample: SampleSpec | None) -> None:
    if sample is not None and (sample.channels, sample.height) != (1, 36):
        raise ValueError(f"StarGAN-VC's networks take (1, 36, T) mel-cepstrograms, not {sample.shape}")


class VCGenerator(Network):
    """G(x, c): the paper's encoder-decoder of gated convolutions; c tiled into the decoder."""

    inputs = ("images", "labels")
    outputs: ClassVar[tuple[str, ...] | None] = ("image",)
    meanings = MEANINGS

    def __init__(
        self,
        label_dim: int,
        width: Positive = 32,
        bottleneck: Positive = 5,
        residual: bool = False,
        norm: Norm = "batch",
        sample: SampleSpec | None = None,
    ) -> None:
        super().__init__()
        _check_coefficients(sample)
        w, c, b = width, label_dim, bottleneck
        self.residual = residual
        self.encoder = nn.Sequential(
            GatedBlock(1, w, (3, 9), (1, 1), (1, 4), norm),
            GatedBlock(w, 2 * w, (4, 8), (2, 2), (1, 3), norm),
            GatedBlock(2 * w, 4 * w, (4, 8), (2, 2), (1, 3), norm),
            GatedBlock(4 * w, 2 * w, (3, 5), (1, 1), (1, 2), norm),
            GatedBlock(2 * w, b, (9, 5), (9, 1), (0, 2), norm),
        )
        self.decoder = nn.ModuleList(
            [
                GatedBlock(b + c, 2 * w, (9, 5), (9, 1), (0, 2), norm, transpose=True),
                GatedBlock(2 * w + c, 4 * w, (3, 5), (1, 1), (1, 2), norm, transpose=True),
                GatedBlock(4 * w + c, 2 * w, (4, 8), (2, 2), (1, 3), norm, transpose=True),
                GatedBlock(2 * w + c, w, (4, 8), (2, 2), (1, 3), norm, transpose=True),
            ]
        )
        self.output = nn.ConvTranspose2d(w + c, 1, (3, 9), (1, 1), (1, 4))
        if residual:  # starts as the identity: the speaker's own statistics already convert the average envelope
            nn.init.zeros_(self.output.weight)
            nn.init.zeros_(self.output.bias)

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, 1, 36, T), (B, K) -> (B, 1, 36, T); T a multiple of 4."""
        h = self.encoder(images)
        for block in self.decoder:
            h = block(tiled(h, condition))
        change = self.output(tiled(h, condition))
        return images + change if self.residual else change


class VCDiscriminator(Network):
    """D(x, c): is x a real recording of speaker c? Gated convolutions halving time three
    times, c tiled into every layer; one logit per stretch of frames."""

    inputs = ("images", "labels")
    outputs = ("scores",)
    meanings = MEANINGS

    def __init__(self, label_dim: int, width: Positive = 32, norm: Norm = "batch", sample: SampleSpec | None = None) -> None:
        super().__init__()
        _check_coefficients(sample)
        w, c = width, label_dim
        self.blocks = nn.ModuleList(
            [
                GatedBlock(1 + c, w, (3, 9), (1, 1), (1, 4), norm),
                GatedBlock(w + c, w, (3, 8), (1, 2), (1, 3), norm),
                GatedBlock(w + c, w, (3, 8), (1, 2), (1, 3), norm),
                GatedBlock(w + c, w, (3, 6), (1, 2), (1, 2), norm),
            ]
        )
        self.output = nn.Conv2d(w + c, 1, (36, 5), (36, 1), (0, 2))

    def forward(self, images: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = images
        for block in self.blocks:
            h = block(tiled(h, condition))
        return self.output(tiled(h, condition))


class VCDomainClassifier(Network):
    """C(x): speaker logits from the lowest ``coefficients`` mel-cepstral coefficients (the
    paper's 8), averaged over time."""

    inputs = ("images",)
    outputs = ("logits",)
    meanings = MEANINGS

    def __init__(
        self, num_classes: int, width: Positive = 8, coefficients: Annotated[int, Between(4, 36)] = 8, norm: Norm = "batch",
        sample: SampleSpec | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        _check_coefficients(sample)
        w = width
        self.coefficients = coefficients
        self.blocks = nn.Sequential(
            GatedBlock(1, w, (4, 4), (2, 2), (1, 1), norm),
            GatedBlock(w, 2 * w, (4, 4), (2, 2), (1, 1), norm),
            GatedBlock(2 * w, 4 * w, (4, 4), (2, 2), (1, 1), norm),
            GatedBlock(4 * w, 2 * w, (3, 4), (1, 2), (1, 1), norm),
        )
        self.output = nn.Conv2d(2 * w, num_classes, (1, 4), (1, 2), (0, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.output(self.blocks(images[:, :, : self.coefficients]))
        return logits.mean(dim=(2, 3))
