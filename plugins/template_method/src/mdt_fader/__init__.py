"""Fader Networks (Lample et al., NeurIPS 2017) as an mdt method: a third party's package.

An encoder E maps an image to codes z; a latent discriminator LD tries to read the image's
attributes y off z; the encoder learns to make that impossible while a decoder D rebuilds
the image from (z, y). Attributes then become sliders: D(E(x), y') is x with y'.

    LD:       L_cls(LD(E(x)), y)
    E and D:  ‖D(E(x), y) − x‖² + λ_E(step)·L_cls(LD(E(x)), 1 − y)     λ_E: 0 -> 1e-4 over 500k steps

Everything mdt needs to know is declared: the kinds of networks, the roles, what the
losses may read in each phase, what a user may ask of a translation.
"""

from __future__ import annotations

from functools import cached_property

import torch
from torch import nn

import mdt
from mdt.errors import MdtError
from mdt.labels import column_labels, set_labels
from mdt.loss import Loss
from mdt.method import Method, Role, Translator
from mdt.optim import adam
from mdt.options import Option
from mdt.ranges import Count, Positive, Rate, Weight

# ---------------------------------------------------------------- networks


def block(c_in: int, c_out: int, up: bool = False) -> nn.Sequential:
    conv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1) if up else nn.Conv2d(c_in, c_out, 4, 2, 1)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU() if up else nn.LeakyReLU(0.2))


class Encoder(mdt.Network):
    """Image -> codes (B, 8 x conv_dim, S/8, S/8)."""

    inputs = ("images",)
    outputs = ("codes",)

    def __init__(self, conv_dim: Positive = 32) -> None:
        super().__init__()
        self.layers = nn.Sequential(block(3, conv_dim), block(conv_dim, 2 * conv_dim), block(2 * conv_dim, 8 * conv_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


class Decoder(mdt.Network):
    """(codes, labels) -> image: the labels are tiled over the codes at every level."""

    inputs = ("codes", "labels")
    outputs = ("image",)

    def __init__(self, label_dim: int, conv_dim: Positive = 32) -> None:
        super().__init__()
        self.ups = nn.ModuleList(
            [block(8 * conv_dim + label_dim, 2 * conv_dim, up=True), block(2 * conv_dim + label_dim, conv_dim, up=True)]
        )
        self.last = nn.ConvTranspose2d(conv_dim + label_dim, 3, 4, 2, 1)

    def forward(self, codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = codes
        for layer in [*self.ups, self.last]:
            tiled = labels[:, :, None, None].expand(-1, -1, *h.shape[2:]).to(h.dtype)
            h = layer(torch.cat([h, tiled], dim=1))
        return torch.tanh(h)


class LatentDiscriminator(mdt.Network):
    """Codes of ``channels`` channels (8 x the encoder's conv_dim) -> attribute logits (B, num_classes)."""

    inputs = ("codes",)
    outputs = ("logits",)

    def __init__(self, num_classes: int, channels: Positive = 256, hidden: Positive = 64) -> None:
        super().__init__()
        self.channels = channels
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, 1, 1), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden, num_classes)
        )

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.layers(codes)


# ---------------------------------------------------------------- what the losses may read


class FaderState:
    """One update's values, each computed on first use. Images (B, 3, S, S) in [-1, 1]."""

    phase: str  # "discriminator" (LD learns) or "generator" (E and D learn)
    real: torch.Tensor  # the batch's images
    labels: torch.Tensor  # their labels
    source: int  # their dataset's index
    encoder: object  # the label encoder: conditions and the classification loss

    def __init__(self, phase: str, method: Fader, real: torch.Tensor, labels: torch.Tensor, source: int) -> None:
        self.phase, self.real, self.labels, self.source = phase, real, labels, source
        self.encoder, self._method = method.label_encoder, method

    @cached_property
    def codes(self) -> torch.Tensor:
        """E(real); a constant for the latent discriminator's update."""
        with torch.set_grad_enabled(self.phase == "generator"), self._method.update.autocast(self.real.device):
            return self._method.encoder(self.real).float()

    @cached_property
    def reconstruction(self) -> torch.Tensor:
        """D(E(real), its labels)."""
        with self._method.update.autocast(self.real.device):
            return self._method.decoder(self.codes, self.encoder.encode(self.labels, self.source)).float()

    @cached_property
    def latent_logits(self) -> torch.Tensor:
        """LD(E(real)): the attributes the latent discriminator reads off the codes."""
        with self._method.update.autocast(self.real.device):
            return self._method.latent_discriminator(self.codes).float()


# ---------------------------------------------------------------- losses


class Reconstruction(Loss):
    """‖D(E(x), y) − x‖², averaged over pixels."""

    reads = {"generator": ("real", "reconstruction")}

    def __call__(self, phase, state):
        return (state.reconstruction - state.real).pow(2).mean(), {}


class LatentAdversarial(Loss):
    """LD reads the attributes off the codes; E learns codes from which it reads the opposite
    ones. Its weight rises linearly from 0 over ``ramp_iterations`` (the paper: 500k)."""

    reads = {
        "discriminator": ("encoder", "latent_logits", "labels", "source"),
        "generator": ("encoder", "latent_logits", "labels", "source"),
    }
    decays = True  # the weight changes with the step: methods log it

    def __init__(self, weight: Weight = 1e-4, ramp_iterations: Count = 500000) -> None:  # 0: no ramp
        super().__init__(weight)
        self.ramp_iterations = ramp_iterations

    def weight_at(self, step: int) -> float:
        return self.weight * min(1.0, step / self.ramp_iterations) if self.ramp_iterations else self.weight

    def __call__(self, phase, state):
        wanted = state.labels if phase == "discriminator" else 1 - state.labels
        return state.encoder.classification_loss(state.latent_logits, wanted, state.source), {}


# ---------------------------------------------------------------- the method


class Fader(Method):
    """Fader Networks: an encoder whose codes hide the attributes, a decoder that puts them back."""

    precisions = ("fp32", "bf16")  # its step states run the networks under self.update.autocast

    roles = {
        "encoder": Role("encoder", inputs=("images",), outputs=("codes",), optimizer="autoencoder", inference=True),
        "decoder": Role("decoder", inputs=("codes", "labels"), outputs=("image",), optimizer="autoencoder", inference=True),
        "latent_discriminator": Role("discriminator", inputs=("codes",), outputs=("logits",), optimizer="latent_discriminator"),
    }
    phases = {"discriminator": FaderState, "generator": FaderState}

    def __init__(
        self, encoder, decoder, latent_discriminator, label_encoder, losses, image_size: int, precision: str = "fp32", lr: Rate = 2e-3
    ) -> None:
        self.encoder, self.decoder, self.latent_discriminator = encoder, decoder, latent_discriminator
        self.label_encoder, self.losses, self.image_size, self.precision = label_encoder, dict(losses), image_size, precision
        codes = encoder(torch.zeros(2, 3, image_size, image_size, device=next(encoder.parameters()).device))
        if codes.shape[1] != latent_discriminator.channels:
            raise MdtError(
                f"the encoder's codes have {codes.shape[1]} channels; set [networks.latent_discriminator] channels = {codes.shape[1]}"
            )
        autoencoder = [*encoder.parameters(), *decoder.parameters()]
        self._optimizers = {
            "autoencoder": adam(autoencoder, lr, (0.5, 0.999)),
            "latent_discriminator": adam(latent_discriminator.parameters(), lr, (0.5, 0.999)),
        }

    def networks(self):
        return {"encoder": self.encoder, "decoder": self.decoder, "latent_discriminator": self.latent_discriminator}

    def optimizers(self):
        return dict(self._optimizers)

    def train_step(self, batches, step):
        """Per batch: LD learns to read the attributes off the codes, then E and D learn
        to rebuild the image from codes LD cannot read, LD held still."""
        self.update.start(step)
        for batch in batches:
            state = FaderState("discriminator", self, batch.images, batch.labels, batch.source)
            self.update("discriminator", {"LD": state}, step=["latent_discriminator"])
            state = FaderState("generator", self, batch.images, batch.labels, batch.source)
            self.update("generator", {"AE": state}, step=["autoencoder"], freeze=[self.latent_discriminator])
        return self.update.values()

    def translator(self):
        return FaderTranslator(self)


# ---------------------------------------------------------------- what a user may ask


class FaderTranslator(Translator):
    """D(E(x), y'): the input with the labels y'. The codes carry no attributes, so every
    label must be known: the ones to change (``to``) and the input's own (``known``)."""

    options = (
        Option("to", "labels", "the labels to set, e.g. Blond_Hair,Smiling=0", needed=("translate",), grid=False),
        Option("known", "labels", "the input's labels, e.g. Black_Hair,Glasses=0,Smiling", flag="from", needed=("translate",)),
    )

    def __init__(self, method: Fader) -> None:
        self.method, self.image_size, self.schemas = method, method.image_size, method.label_encoder.schemas

    @torch.no_grad()
    def _decode(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.method.encoder.eval()
        self.method.decoder.eval()
        return self.method.decoder(self.method.encoder(images), self.method.label_encoder.encode(labels, 0))

    def _labels(self, images: torch.Tensor, assignments) -> torch.Tensor:
        return set_labels(self.schemas[0], torch.zeros(images.shape[0], len(self.schemas[0]), device=images.device), assignments)

    def translate(self, images, to=None, known=None):
        return self._decode(images, set_labels(self.schemas[0], self._labels(images, known or {}), to))

    def to_labels(self, images, labels, dataset, base=None):
        return self._decode(images, labels)

    def grid(self, images, source=None, labels=None, known=None):
        """Each input, then each label set (a group's member) or flipped (an attribute)."""
        base = labels if labels is not None else self._labels(images, known or {})
        names = self.schemas[0].names
        columns = [self._decode(images, column_labels(self.schemas[0], base, {name: 1.0})) for name in names]
        return [[images[i]] + [c[i] for c in columns] for i in range(images.shape[0])], list(names)


# ---------------------------------------------------------------- the one hook


@mdt.hookimpl
def register_components(register):
    register("kind", "encoder", "a network from images to codes: forward(images) -> codes")
    register("kind", "decoder", "a network from codes and labels to images: forward(codes, labels) -> images")
    register("encoder", "fader", Encoder)
    register("decoder", "fader", Decoder)
    register("discriminator", "fader", LatentDiscriminator)
    register("loss", "fader_reconstruction", Reconstruction)
    register("loss", "latent_adversarial", LatentAdversarial)
    register("method", "fader", Fader)
