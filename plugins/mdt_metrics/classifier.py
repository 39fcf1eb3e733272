"""The judge of translations: one timm network per dataset, trained on its real images.

StarGAN judged translated RaFD faces with a ResNet-18 trained from scratch on the real
training images (Table 3); how well that network reads *real* held-out images says how
far it can be trusted. Its pooled features also stand in for Inception's in FID/KID
when the standard Inception weights are not available.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import torch

from mdt.errors import MdtError
from mdt.evaluation import train_judge_networks
from mdt.interfaces import Classifier
from mdt.labels import LabelSchema, part_predict
from mdt.ranges import Count, Positive, Rate
from mdt.samples import SampleSpec


class TimmModel(Protocol):
    """What the judge uses of a network timm creates besides ``nn.Module``: timm's own
    attributes, which torch's ``Module.__getattr__`` types as ``Tensor | Module``."""

    pretrained_cfg: dict[str, Any]  # its normalisation ("mean", "std") and its head's name ("classifier")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...


def timm_model(model: torch.nn.Module) -> TimmModel:
    """``model``, which timm created, with timm's attributes typed."""
    return cast(TimmModel, model)


def _load_backbone_weights(model: torch.nn.Module, path: str) -> None:
    """Pretrained weights for the backbone; the classifier head is the dataset's own."""
    from mdt.foreign import load_foreign

    file = Path(path)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        if not file.is_file():
            raise MdtError(f"classifier weights '{file}' do not exist")
        state = load_file(str(file))
    else:
        state = load_foreign(file, "classifier weights")
    if not isinstance(state, dict):
        raise MdtError(f"classifier weights '{file}' hold no state dict of tensors")
    own = model.state_dict()
    head_name = timm_model(model).pretrained_cfg.get("classifier", "fc")
    head = {f"{head_name}.weight", f"{head_name}.bias"}
    usable = {k: v for k, v in state.items() if k in own and k not in head and own[k].shape == v.shape}
    missing = sorted(k for k in own if k not in usable and k not in head and not k.endswith("num_batches_tracked"))
    if missing:
        raise MdtError(
            f"classifier weights '{file}' do not fit the backbone: {len(missing)} tensors missing or of another shape, first '{missing[0]}'"
        )
    model.load_state_dict(usable, strict=False)


class TimmClassifier(Classifier):
    """A timm backbone per dataset (ResNet-18 from scratch by default) that reads labels and image features."""

    def __init__(
        self,
        schemas: Sequence[LabelSchema],
        backbone: str = "resnet18",
        steps: Positive = 300,
        batch_size: Positive = 64,
        lr: Rate = 1e-3,
        seed: Count = 0,
        weights: str = "",
        sample: SampleSpec | None = None,
    ) -> None:
        import timm

        if steps < 0 or batch_size < 1:
            raise ValueError(f"steps must be >= 0 and batch_size >= 1, not {steps} and {batch_size}")
        if not timm.is_model(backbone):
            raise ValueError(f"backbone '{backbone}' is not a timm model name (see timm.list_models())")
        self.schemas = list(schemas)
        self.backbone, self.steps, self.batch_size, self.lr, self.seed = backbone, steps, batch_size, lr, seed
        torch.manual_seed(seed)
        # the datasets' samples: their channels (grey images: 1) and shape, RGB squares when not told
        self.sample = sample
        channels = sample.channels if sample is not None else 3
        self.models = torch.nn.ModuleList(
            timm.create_model(backbone, pretrained=False, num_classes=len(s), in_chans=channels) for s in self.schemas
        )
        if weights:
            for model in self.models:
                _load_backbone_weights(model, weights)
        config = timm_model(self.models[0]).pretrained_cfg
        # [-1, 1] images in the backbone's own normalisation, which pretrained weights expect.
        mean, std = config.get("mean", (0.5, 0.5, 0.5)), config.get("std", (0.5, 0.5, 0.5))
        if channels != 3:  # grey or other samples: the channels' average normalisation
            mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
        self._mean = torch.tensor(mean).view(1, channels, 1, 1)
        self._std = torch.tensor(std).view(1, channels, 1, 1)
        self.feature_space = f"{backbone} classifier features"

    def images_problem(self, image_size: int) -> str | None:
        """Whether the backbone can train on batches of the run's images, found by one
        training-mode forward pass of a copy (its batch-norm statistics stay untouched): a
        ViT takes only its own input size, and batch norm cannot train on batches of
        one whose last map is 1x1."""
        import copy

        count = min(self.batch_size, 2)  # two images already give batch norm two values per channel
        probe = copy.deepcopy(self.models[0]).train()
        shape = self.sample.shape if self.sample is not None else (3, image_size, image_size)
        try:
            with torch.no_grad():
                probe(torch.zeros(count, *shape))
        except (RuntimeError, ValueError, AssertionError) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            what = f"{image_size}x{image_size} images" if shape == (3, image_size, image_size) else f"samples {shape}"
            return f"backbone '{self.backbone}' cannot train on the run's {what} in batches of {count}: {reason}"
        return None

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        return ((images + 1) / 2 - self._mean.to(images.device)) / self._std.to(images.device)

    def to(self, device: torch.device) -> TimmClassifier:
        self.models.to(device)
        return self

    def fit(
        self, train_sets: Sequence, augmentation: Callable, device: torch.device, progress: Callable[[int], None] | None = None
    ) -> None:
        """``steps`` Adam steps per dataset on random batches of its training images."""
        train_judge_networks(
            self.models,
            self.schemas,
            train_sets,
            augmentation,
            device,
            self.steps,
            self.batch_size,
            self.lr,
            self.seed,
            self._input,
            progress,
        )

    @torch.no_grad()
    def predict(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """0/1 labels (B, n) of ``dataset``'s schema read off ``images`` in [-1, 1]."""
        model = self.models[dataset].eval()
        return part_predict(self.schemas[dataset], model(self._input(images)))

    @torch.no_grad()
    def features(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """Pooled features (B, F) before the classifier head."""
        model = timm_model(self.models[dataset].eval())
        return model.forward_head(model.forward_features(self._input(images)), pre_logits=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.models.state_dict()

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.models.load_state_dict(state)
