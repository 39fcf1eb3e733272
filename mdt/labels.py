"""What labels mean, and the interface every label encoder implements.

A dataset describes its labels with a :class:`LabelSchema`: one 0/1 value per
attribute name, plus groups of names that exclude each other (hair colours) or a
single categorical choice (expressions). A label encoder turns a batch of labels in a
dataset's own space into the condition vector the generator sees and into the
classification loss the discriminator trains with. The engine never looks at dataset
names: the encoder decides dimensions and losses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mdt.component import Component
from mdt.errors import MdtError, did_you_mean

#: A continuous label read within this of the wanted value counts as right: one step of
#: five intensity levels, as action-unit intensities (0-5) are coded.
CONTINUOUS_TOLERANCE = 0.2


@dataclass(frozen=True)
class LabelSchema:
    """The labels of one dataset: one value per name, 0 or 1, or with ``continuous`` any
    value in [0, 1] (an attribute's strength, an action unit's intensity).

    ``exclusive`` lists groups of names of which at most one is 1 (CelebA's hair
    colours). ``categorical`` means exactly one name is 1 (one class per image).
    """

    dataset: str
    names: tuple[str, ...]
    exclusive: tuple[tuple[str, ...], ...] = ()
    categorical: bool = False
    continuous: bool = False

    def __post_init__(self) -> None:
        twice = sorted({name for name in self.names if self.names.count(name) > 1})
        if twice:  # two columns of one meaning: a model that learns both of them, contradicting each other
            raise ValueError(f"label '{twice[0]}' is listed twice; list each label once")
        for group in self.exclusive:
            for name in group:
                if name not in self.names:
                    raise ValueError(f"exclusive group names '{name}', which is not one of {self.names}")
        if self.continuous and (self.categorical or self.exclusive):
            raise ValueError("continuous labels are independent: neither categorical nor in exclusive groups")

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        if name not in self.names:
            raise MdtError(
                f"'{name}' is not a label of dataset '{self.dataset}'{did_you_mean(name, self.names)}; labels: {', '.join(self.names)}"
            )
        return self.names.index(name)

    def group_of(self, name: str) -> tuple[str, ...]:
        """The names that exclude ``name`` (itself included), or just ``(name,)``."""
        if self.categorical:
            return self.names
        for group in self.exclusive:
            if name in group:
                return group
        return (name,)

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "names": list(self.names),
            "exclusive": [list(g) for g in self.exclusive],
            "categorical": self.categorical,
            "continuous": self.continuous,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> LabelSchema:
        return cls(
            dataset=data["dataset"],
            names=tuple(data["names"]),
            exclusive=tuple(tuple(g) for g in data.get("exclusive", [])),
            categorical=bool(data.get("categorical", False)),
            continuous=bool(data.get("continuous", False)),
        )


def schemas_to_json(schemas: Sequence[LabelSchema]) -> str:
    return json.dumps([s.to_json() for s in schemas])


def schemas_from_json(text: str) -> list[LabelSchema]:
    return [LabelSchema.from_json(d) for d in json.loads(text)]


def parse_assignments(text: str | None, what: str) -> dict[str, float]:
    """``"Blond_Hair,Male=0"`` -> ``{"Blond_Hair": 1.0, "Male": 0.0}``: a bare name means 1.
    ``what`` names the text in errors (``--to``, ``domain``)."""
    if not text:
        return {}
    values = {}
    for part in text.split(","):
        name, sep, raw = part.strip().partition("=")
        name = name.strip()
        if not name:
            raise MdtError(f"{what} '{text}': empty label name; write names like Blond_Hair,Male=0")
        if name in values:  # Male,Male=0: which did they mean?
            raise MdtError(f"{what} '{text}' names '{name}' twice; give each label once")
        if not sep:
            values[name] = 1.0
            continue
        try:
            values[name] = float(raw)
        except ValueError:
            raise MdtError(f"{what} '{part.strip()}': the value must be a number such as 0 or 1") from None
    return values


def matching(schema: LabelSchema, labels: torch.Tensor, assignments: Mapping[str, float]) -> torch.Tensor:
    """(N,) which rows of ``labels`` (N, len(schema)) have every named value."""
    keep = torch.ones(labels.shape[0], dtype=torch.bool)
    for name, value in assignments.items():
        keep &= labels[:, schema.index(name)].cpu() == value
    return keep


def set_labels(schema: LabelSchema, labels: torch.Tensor, assignments: Mapping[str, float]) -> torch.Tensor:
    """``labels`` (B, len(schema)) with named values set; setting a name to 1 clears
    the others of its exclusive group, so hair colours stay exclusive."""
    labels = labels.clone()
    chosen = [name for name, value in assignments.items() if value == 1 and not schema.continuous]
    for name in chosen:
        rivals = [other for other in chosen if other != name and other in schema.group_of(name)]
        if rivals:
            raise MdtError(f"'{name}' and '{rivals[0]}' exclude each other in '{schema.dataset}'; choose only one of them")
    for name, value in assignments.items():
        column = schema.index(name)
        if schema.continuous and not 0 <= value <= 1:
            raise MdtError(f"label '{name}' must be set to a value in [0, 1], not {value}")
        if not schema.continuous and value not in (0, 1):
            raise MdtError(f"label '{name}' must be set to 0 or 1, not {value}")
        if schema.categorical and value == 0:
            raise MdtError(f"'{name}' is one class of '{schema.dataset}'; name the class you want instead of '{name}=0'")
        if value == 1:
            for other in schema.group_of(name):
                labels[:, schema.index(other)] = 0.0
        labels[:, column] = float(value)
    return labels


def column_labels(schema: LabelSchema, base: torch.Tensor, assignments: Mapping[str, float]) -> torch.Tensor:
    """Labels for one sample-grid column: a single binary attribute outside any group is
    flipped (StarGAN's grids); anything else is set as :func:`set_labels` does."""
    if len(assignments) == 1 and not schema.categorical and not schema.continuous:
        name = next(iter(assignments))
        if len(schema.group_of(name)) == 1:
            flipped = base.clone()
            column = schema.index(name)
            flipped[:, column] = 1.0 - flipped[:, column]
            return flipped
    return set_labels(schema, base, assignments)


def part_loss(schema: LabelSchema, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for a categorical schema; for continuous labels the squared error
    (a regression), else binary cross-entropy; both summed over attributes and averaged
    over the batch (the official StarGAN scaling)."""
    if schema.categorical:
        return F.cross_entropy(logits, labels.argmax(dim=1))
    if schema.continuous:
        return F.mse_loss(logits, labels, reduction="sum") / logits.shape[0]
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / logits.shape[0]


def part_agrees(schema: LabelSchema, predicted: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """(B, n) which read labels are right: equal, or for continuous labels within
    :data:`CONTINUOUS_TOLERANCE`."""
    if schema.continuous:
        return (predicted - wanted).abs() <= CONTINUOUS_TOLERANCE + 1e-6
    return predicted == wanted


def part_predict(schema: LabelSchema, logits: torch.Tensor) -> torch.Tensor:
    """Labels read off a classifier's outputs: the most likely class, each attribute's
    sign (an exclusive group's most likely member), or a continuous value in [0, 1]."""
    if schema.continuous:
        return logits.clamp(0, 1)
    if schema.categorical:
        return F.one_hot(logits.argmax(dim=1), len(schema)).float()
    predicted = (logits > 0).float()
    for group in schema.exclusive:
        # A reading of an exclusive group keeps only its most likely member.
        columns = [schema.index(n) for n in group]
        part = logits[:, columns]
        best = F.one_hot(part.argmax(dim=1), len(columns)).float() * (part.max(dim=1, keepdim=True).values > 0)
        predicted[:, columns] = best
    return predicted


LABEL_LAYOUTS = {  # what a label encoder gives and a method may need (their ``label_layout``)
    "one_class": "one class per image (a one-hot condition)",
    "attributes": "independent attributes (a multi-hot condition)",
}


class LabelEncoder(Component):
    """Interface of the ``label_encoder`` components.

    ``source`` is the index of the dataset a batch comes from (0 when there is one),
    and ``labels`` are always in that dataset's own space: (B, len(schemas[source])).
    ``label_layout`` (a key of :data:`LABEL_LAYOUTS`, or None where it depends on the
    datasets) lets ``mdt recipe check`` match the encoder with its method.
    """

    schemas: list[LabelSchema]
    label_layout: str | None = None

    @property
    def condition_dim(self) -> int:
        """Length of the vector the generator is conditioned on."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        """Number of outputs of the discriminator's classifier."""
        raise NotImplementedError

    def encode(self, labels: torch.Tensor, source: int) -> torch.Tensor:
        """Condition vectors (B, condition_dim) for labels of dataset ``source``."""
        raise NotImplementedError

    def condition_names(self) -> list[str]:
        """What each entry of the condition vector is (``dataset.label``), for exported
        models' metadata. The default: every dataset's labels in order, where that is the
        condition's length; an encoder that adds entries of its own names them."""
        names = [f"{schema.dataset}.{name}" for schema in self.schemas for name in schema.names]
        return names if len(names) == self.condition_dim else [f"condition_{i}" for i in range(self.condition_dim)]

    def sample_targets(self, labels: torch.Tensor, source: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Target labels for training: the batch's own labels, shuffled (as StarGAN does)."""
        order = torch.randperm(labels.shape[0], generator=generator).to(labels.device)
        return labels[order]

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor, source: int) -> torch.Tensor:
        """Classification loss of ``logits`` (B, num_classes) on the part of dataset ``source``."""
        raise NotImplementedError

    def predict(self, logits: torch.Tensor, source: int) -> torch.Tensor:
        """Labels of dataset ``source`` read from classifier logits."""
        raise NotImplementedError

    def targets(self) -> list[tuple[str, int, dict[str, float]]]:
        """The columns of a sample grid: (title, target dataset, assignments)."""
        return [(name, source, {name: 1.0}) for source, schema in enumerate(self.schemas) for name in schema.names]

    def find(self, name: str) -> tuple[int, str]:
        """(dataset index, label name) for ``name`` or ``dataset.name``."""
        dataset, dot, label = name.rpartition(".")
        matches = [
            (i, label if dot else name)
            for i, s in enumerate(self.schemas)
            if (label if dot else name) in s.names and (not dot or s.dataset == dataset)
        ]
        if not matches:
            every = [n for s in self.schemas for n in s.names]
            raise MdtError(f"unknown label '{name}'{did_you_mean(label or name, every)}; labels: {', '.join(every)}")
        if len(matches) > 1:
            options = ", ".join(f"{self.schemas[i].dataset}.{n}" for i, n in matches)
            raise MdtError(f"label '{name}' is in several datasets; write one of {options}")
        return matches[0]
