"""Label encoders: multi-hot binary attributes, one categorical attribute, and the
mask vector that trains on several datasets with different label sets at once."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mdt.errors import MdtError
from mdt.labels import LabelEncoder, LabelSchema, part_loss, part_predict


class SingleDataset(LabelEncoder):
    """The labels of one dataset are the condition; the discriminator's head reads them
    (a base for encoders of one dataset, here and in other plugins)."""

    def __init__(self, schemas: Sequence[LabelSchema], encoder_name: str) -> None:
        if len(schemas) != 1:
            names = ", ".join(s.dataset for s in schemas)
            raise MdtError(f'{encoder_name} encodes one dataset, but the recipe has {len(schemas)} ({names}); use type = "mask_vector"')
        self.schemas = list(schemas)
        self.schema = schemas[0]

    @property
    def condition_dim(self) -> int:
        return len(self.schema)

    @property
    def num_classes(self) -> int:
        return len(self.schema)

    def encode(self, labels, source):
        return labels

    def classification_loss(self, logits, labels, source):
        return part_loss(self.schema, logits, labels)

    def predict(self, logits, source):
        return part_predict(self.schema, logits)


class MultiHot(SingleDataset):
    """Binary attributes (CelebA): a multi-hot condition and binary cross-entropy."""

    label_layout = "attributes"

    def __init__(self, schemas: Sequence[LabelSchema]) -> None:
        super().__init__(schemas, "multi_hot")
        if self.schema.categorical:
            self.schema = LabelSchema(self.schema.dataset, self.schema.names, (self.schema.names,), False)
            self.schemas = [self.schema]


class OneHot(SingleDataset):
    """One categorical attribute (RaFD expressions, domains): one-hot and cross-entropy."""

    label_layout = "one_class"

    def __init__(self, schemas: Sequence[LabelSchema]) -> None:
        super().__init__(schemas, "one_hot")
        if not self.schema.categorical:
            raise MdtError(
                f"one_hot needs a dataset with one class per image, but '{self.schema.dataset}' has independent "
                f'attributes; use type = "multi_hot"'
            )


class MaskVector(LabelEncoder):
    """Several datasets at once: [labels of dataset 1, ..., labels of dataset n, dataset one-hot].

    A sample's labels fill its own dataset's part; the other parts are zero and the
    mask says which part is known. The classification loss looks only at that part.
    """

    def __init__(self, schemas: Sequence[LabelSchema]) -> None:
        if not schemas:
            raise MdtError("mask_vector needs at least one dataset")
        self.schemas = list(schemas)
        self.offsets = []
        offset = 0
        for schema in self.schemas:
            self.offsets.append(offset)
            offset += len(schema)
        self._label_total = offset

    @property
    def condition_dim(self) -> int:
        return self._label_total + len(self.schemas)

    @property
    def num_classes(self) -> int:
        return self._label_total

    def condition_names(self) -> list[str]:
        """Every dataset's labels, then the mask: one entry per dataset, 1 for the dataset whose labels are known."""
        labels = [f"{schema.dataset}.{name}" for schema in self.schemas for name in schema.names]
        return labels + [f"mask.{schema.dataset}" for schema in self.schemas]

    def _part(self, source: int) -> slice:
        return slice(self.offsets[source], self.offsets[source] + len(self.schemas[source]))

    def encode(self, labels, source):
        condition = torch.zeros(labels.shape[0], self.condition_dim, device=labels.device, dtype=labels.dtype)
        condition[:, self._part(source)] = labels
        condition[:, self._label_total + source] = 1.0
        return condition

    def classification_loss(self, logits, labels, source):
        return part_loss(self.schemas[source], logits[:, self._part(source)], labels)

    def predict(self, logits, source):
        return part_predict(self.schemas[source], logits[:, self._part(source)])
