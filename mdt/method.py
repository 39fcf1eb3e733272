"""Interfaces of ``method`` components (training algorithms) and of what they hand out.

The engine owns data, logging, sampling and checkpoints; a method owns its networks,
optimizers and the order of its update steps. A method declares the networks it needs
as :class:`Role` objects; the recipe has one ``[networks.<role>]`` table per role and
the core builds them and passes them to the method's constructor by role name. A
method also hands out a :class:`Translator`, which ``mdt translate``, metrics and the
Python API use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch

from mdt.component import Component
from mdt.data import Batch, Stream
from mdt.errors import MdtError
from mdt.labels import LabelSchema
from mdt.options import Option
from mdt.update import Updates


def main_output(result: Any) -> Any:
    """A network's first declared output: the result itself, or the first of a tuple
    (a generator that also returns an attention mask returns ``(image, mask, ...)``)."""
    return result[0] if isinstance(result, tuple) else result


def output(result: Any, network: Any, name: str) -> Any:
    """The output ``name`` of ``network``'s ``result``: at its place in the outputs the
    network's class declares (returned as a tuple in that order, or alone when first), so
    a plugin's network that returns a plain tuple works as well as a named one."""
    declared = list(network.outputs or ())
    if name not in declared:
        raise MdtError(f"network {type(network).__name__} declares no output '{name}' (its outputs: {', '.join(declared) or 'none'})")
    index = declared.index(name)
    if isinstance(result, (tuple, list)):
        return result[index]
    if index == 0:
        return result
    raise MdtError(f"network {type(network).__name__} declares the outputs ({', '.join(declared)}) but returned one tensor")


def in_eval_mode(network: Any) -> Any:
    """``network`` switched to eval mode, walking its modules only when it is not there
    already: a translator calls this on every request, and the walk costs about as much
    as a small network's forward on one image."""
    return network.eval() if network.training else network


@dataclass(frozen=True)
class Role:
    """A network a method needs, built from the recipe's ``[networks.<role name>]`` table.

    ``kind`` is the registry kind its table's ``type`` names. ``inputs`` are what the
    method passes the network, in order, and ``outputs`` what it reads of the result (by
    name: "images", "labels", "style", ...; see docs/writing-a-plugin.md); a network
    class declares its own ``inputs`` and ``outputs``, and ``mdt recipe check`` refuses a
    network whose inputs differ or that lacks an output. ``optimizer`` names the entry of
    :meth:`Method.optimizers` that trains it; ``inference`` says a translator needs it.
    With ``many`` the method receives a function that builds a fresh network per call
    (one per pair of domains, say) instead of one network. Arguments that several roles'
    networks must agree on are the method's to check (:meth:`Method.networks_problem`).
    """

    kind: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    optimizer: str | None = None
    inference: bool = False
    many: bool = False
    description: str = ""


def optimizer_problem(method) -> str | None:
    """A role whose ``optimizer`` names no entry of the method's ``optimizers()``: a
    network the method says it trains but no optimizer would (checked before training)."""
    optimizers = method.optimizers()
    for name, role in type(method).roles.items():
        if role.optimizer and role.optimizer not in optimizers:
            return (
                f"method '{type(method).__name__}' says its {name} is trained by optimizer '{role.optimizer}', "
                f"but its optimizers() are: {', '.join(optimizers) or 'none'}"
            )
    return None


class Translator:
    """Translates batches of samples (B, C, H, W) in [-1, 1] (RGB images: C = 3) on the method's device.

    ``options`` describe what a user may ask (see :mod:`mdt.options`): ``mdt translate``
    makes its flags from them, ``mdt serve`` its controls, and the Python API checks
    requests against them. ``varies`` names an int option whose successive values give
    different outputs (a style drawn from noise): then ``mdt translate --num K`` writes K
    outputs per input and ``grid`` takes ``num`` columns.
    """

    image_size: int
    schemas: list[LabelSchema]  # the labels the model knows, one schema per dataset
    missing_networks: frozenset[str] = frozenset()  # not in the checkpoint (an import without D)
    options: tuple[Option, ...] = ()
    varies: str | None = None

    def translate(self, images: torch.Tensor, **request: Any) -> torch.Tensor:
        """One output per input for ``request`` (keywords: the ``options``)."""
        raise NotImplementedError

    def grid(self, images: torch.Tensor, **request: Any) -> tuple[list[list[torch.Tensor | None]], list[str]]:
        """Rows (input, then one output per column; a first row may hold column images
        with None first) and the column titles. Besides the ``grid`` options, the engine
        passes ``source`` and ``labels``: what it knows of its sample images."""
        raise NotImplementedError

    def to_labels(
        self, images: torch.Tensor, labels: torch.Tensor, dataset: int, base: torch.Tensor | None = None, **request: Any
    ) -> torch.Tensor:
        """For metrics: translate to exact labels (B, n) of ``dataset``; ``base`` are the
        inputs' own labels in ``dataset``'s space. ``request`` holds values of this
        translator's own options that choose among its outputs: its ``varies`` option,
        or an image option with one image per input (a reference's style)."""
        raise NotImplementedError

    def targets(self) -> list[tuple[str, int, dict[str, float]]] | None:
        """The targets this model translates to, for metrics: (title, dataset, labels to
        set). None: every column of the label encoder (a model of all domains)."""
        return None

    def accepts(self, labels: torch.Tensor, dataset: int) -> torch.Tensor | None:
        """(B,) which inputs of ``dataset``, by their labels, this model translates (a
        two-domain model: the images of its two domains). None: all of them."""
        return None

    def reads_labels(self) -> bool:
        """Whether :meth:`read_labels` reads inputs' labels (StarGAN: its discriminator's
        classifier, when the checkpoint has one); the ``label_reading`` metric measures it."""
        return False

    def read_labels(self, images: torch.Tensor, dataset: int) -> torch.Tensor:
        """(B, n) the labels of ``dataset`` the model itself reads off ``images``: what it
        takes for an input's labels a user did not give."""
        raise MdtError("this model reads no labels off its inputs; give them")

    def reconstruct(
        self,
        translated: torch.Tensor,
        originals: torch.Tensor,
        labels: torch.Tensor,
        dataset: int,
        translated_labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The cycle: ``translated`` images (of ``translated_labels``) back to the
        ``originals``' ``labels``."""
        return self.to_labels(translated, labels, dataset, base=translated_labels)


class Method(Component):
    """A training algorithm: built from networks, losses and a label encoder.

    Its ``train_step`` names the updates of one iteration in its paper's order and lets
    :attr:`update` perform each (:mod:`mdt.update`): which phase, the step states its
    losses read, the optimizers to step and the networks to hold still.
    """

    #: The phases of its updates and the step-state class of each, whose public fields
    #: are what a loss may read in it ({"discriminator": StepState, ...}; mdt.contracts).
    phases: dict[str, type] = {}

    #: The recipe's losses, by table name (the constructor's ``losses`` argument).
    losses: dict[str, Any] = {}

    #: What its network forwards compute in: "fp32" or "bf16" (the constructor's
    #: ``precision`` argument, which the engine settles from ``[run] precision``).
    precision: str = "fp32"

    #: What it can compute in. A method whose step states run its networks under
    #: ``self.update.autocast`` (every built-in one) declares ("fp32", "bf16"); where
    #: "auto" would choose a precision the method lacks, the run computes in fp32 and says so.
    precisions: tuple[str, ...] = ("fp32",)

    #: The batches each iteration takes from every dataset, by role, and how each is
    #: drawn: a registered sampler's name, or a :class:`mdt.data.Stream` with options.
    #: StarGAN takes one shuffled batch; StarGAN v2 a class-balanced source batch and
    #: class-balanced reference pairs; CycleGAN one stream per domain.
    samplers: dict[str, str | Stream] = {"images": "shuffled"}

    #: The paper it implements, as a BibTeX entry: the model cards of its models cite it.
    citation: str = ""

    #: The networks the recipe builds for this method, by role name (the constructor's
    #: parameters of those names receive them).
    roles: dict[str, Role] = {}

    #: The labels it needs, as a key of :data:`mdt.labels.LABEL_LAYOUTS` ("one_class":
    #: one class per image, as StarGAN v2's domains); None: any. ``mdt recipe check``
    #: refuses a ``[labels]`` encoder that declares another.
    label_layout: str | None = None

    #: Networks (keys of :meth:`networks`) a translator needs; any other may be absent
    #: from a checkpoint (an imported generator without its discriminator). Default: the
    #: roles marked ``inference``.
    @property
    def inference_networks(self) -> tuple[str, ...]:
        return tuple(name for name, role in self.roles.items() if role.inference)

    @staticmethod
    def networks_problem(arguments: Mapping[str, Mapping[str, Any]]) -> str | None:
        """Why its networks, built with these arguments, cannot work together, or None.
        ``arguments`` holds each role's network arguments, the recipe's values with the
        constructor's defaults filled in; ``mdt recipe check`` asks before anything is built
        (StarGAN v2's generator, mapping network and style encoder take one ``style_dim``)."""
        return None

    @cached_property
    def update(self) -> Updates:
        """Performs this method's updates (:class:`mdt.update.Updates`)."""
        return Updates(self)

    def networks(self) -> dict[str, torch.nn.Module]:
        """Networks saved in checkpoints, by name."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Optimizers saved in checkpoints, by name."""
        return {}

    def train_step(self, batches: Sequence[Batch], step: int) -> dict[str, float]:
        """One iteration: one batch per dataset and sampler role; returns the logged values."""
        raise NotImplementedError

    def translator(self) -> Translator:
        raise NotImplementedError

    def check_ready(self) -> None:
        """Raise :class:`mdt.errors.MdtError` if training cannot start (a missing weights
        file, ...); the engine asks before it writes anything, and puts the recipe and
        its [method] table before the message."""

    def state(self) -> dict[str, Any]:
        """State beyond networks and optimizers, saved in checkpoints: JSON values, and
        tensors at any depth (CycleGAN's pool of earlier fakes)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state` returned."""
