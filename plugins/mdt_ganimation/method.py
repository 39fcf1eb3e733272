"""The ``ganimation`` method (Pumarola et al., ECCV 2018): StarGAN's updates with a generator
that predicts a colour image C and an attention mask A (G(x, y) = A·x + (1 − A)·C), targets
that are continuous (action-unit intensities, an attribute's strength, in [0, 1]), and two
losses on the masks. Per iteration and batch, as StarGAN, with the discriminator's second
head regressing the labels:

    D:  L_adv(real, fake) + λ_gp·L_gp + λ_y·L_y(real)                       λ_gp = 10
    G:  L_adv(fake) + λ_y·L_y(fake) + λ_cyc·L_cyc + λ_A·(mean A + mean A_cyc)
        + λ_TV·(TV(A) + TV(A_cyc))                                     λ_cyc = 10, λ_A = 0.1, λ_TV = 1e-5

where A_cyc is the mask of the way back. Translation can go part of the way: ``strength``
s gives the condition y_in + s·(y_target − y_in).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated

import torch
from mdt_stargan.method import StarGAN, StarGANTranslator, StepState

from mdt.contracts import NeedsOutput
from mdt.labels import set_labels
from mdt.method import main_output, output
from mdt.options import Option

GRID_VALUES = (0.0, 0.5, 1.0)


class AttentionState(StepState):
    """StarGAN's step state, plus the attention masks of a generator that returns them
    (``fake_mask``, ``reconstruction_mask``): a loss that reads them needs such a generator,
    as their annotations say (``mdt recipe check`` reads them)."""

    @cached_property
    def _cycle(self):
        with self.autocast():
            return self.generator(self.fake, self.encoder.encode(self.labels, self.source))

    @cached_property
    def fake_mask(self) -> Annotated[torch.Tensor, NeedsOutput("generator", "mask")]:
        """A of the translations (B, 1, S, S): 1 keeps the input's pixel."""
        return self.for_phase(output(self.translation, self.generator, "mask").float())

    @cached_property
    def reconstruction(self) -> torch.Tensor:
        """G(fake, the real images' labels): the cycle back."""
        return main_output(self._cycle).float()

    @cached_property
    def reconstruction_mask(self) -> Annotated[torch.Tensor, NeedsOutput("generator", "mask")]:
        """A of the way back."""
        return output(self._cycle, self.generator, "mask").float()


class GANimation(StarGAN):
    """GANimation (Pumarola et al. 2018): an attention-mask generator, continuous targets, WGAN-GP; Adam(1e-4, 0.5, 0.999)."""

    citation = """@inproceedings{pumarola2018ganimation,
  title = {GANimation: Anatomically-aware Facial Animation from a Single Image},
  author = {Pumarola, Albert and Agudo, Antonio and Martinez, Aleix M. and Sanfeliu, Alberto and Moreno-Noguer, Francesc},
  booktitle = {Proceedings of the European Conference on Computer Vision (ECCV)},
  year = {2018}
}"""

    phases = {"discriminator": AttentionState, "generator": AttentionState}

    def translator(self) -> GANimationTranslator:
        return GANimationTranslator(self.translating_generator, self.discriminator, self.encoder, self.image_size)


class GANimationTranslator(StarGANTranslator):
    """StarGAN's translator with labels in [0, 1] and a ``strength``: how far towards the
    target the condition goes. Grids show each label at 0, 0.5 and 1."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        first, second = self.example_names()
        self.options = (
            Option(
                "to",
                "labels",
                "the target strengths; the others keep the input's",
                needed=("translate",),
                grid=False,
                sample=f"{first}=0.8,{second}=0",
            ),
            Option(
                "known",
                "labels",
                "the input's strengths; by default the discriminator reads them",
                flag="from",
                page=False,
                sample=f"{first}=0.1",
            ),
            Option(
                "strength",
                "float",
                "how far towards the target: 0 keeps the input, 1 reaches the target",
                default=1.0,
                minimum=0.0,
                maximum=1.0,
                grid=False,
            ),
        )

    def translate(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        to: Mapping[str, float] | None = None,
        known: Mapping[str, float] | None = None,
        strength: float = 1.0,
    ) -> torch.Tensor:
        if strength == 1.0:
            return super().translate(images, to, known)
        dataset, labels_to = self.target_dataset(list(to or {}))
        base = self.input_labels(images, dataset, known)
        target = set_labels(self.encoder.schemas[dataset], base, {labels_to[n]: v for n, v in (to or {}).items()})
        return self.generate(images, base + strength * (target - base), dataset)

    @torch.no_grad()
    def grid(  # type: ignore[override]  # the request's keywords: this translator's options
        self,
        images: torch.Tensor,
        source: int | None = None,
        labels: torch.Tensor | None = None,
        known: Mapping[str, float] | None = None,
    ):
        """Each input, then each label set to 0, 0.5 and 1 (the others kept)."""
        base = labels if labels is not None else self.input_labels(images, 0, known)
        schema = self.encoder.schemas[0]
        wanted = [(name, value) for name in schema.names for value in GRID_VALUES]
        columns = [self.generate(images, set_labels(schema, base, {name: value}), 0) for name, value in wanted]
        rows = [[images[i]] + [c[i] for c in columns] for i in range(images.shape[0])]
        return rows, [f"{name} {value:g}" for name, value in wanted]
