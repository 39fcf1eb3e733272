"""mdt: multi-domain image-to-image translation, assembled from plugins by recipes.

From Python, ``mdt.train``, ``mdt.evaluate``, ``mdt.load_translator`` and ``mdt.load_recipe``
do what ``mdt run``, ``mdt eval`` and ``mdt translate`` do (mdt/api.py, docs/api.md).
A plugin registers its components with ``@mdt.hookimpl`` (mdt/hookspecs.py); each class
subclasses its kind's base, ``mdt.Network``, ``mdt.Loss``, ..., which declares everything
mdt calls on it (mdt/interfaces.py). These are imported on first use, so that ``import mdt``
stays quick.
"""

try:
    from mdt._version import __version__  # written from the git tag when the package is built or installed
except ImportError:  # a source tree that was never installed
    __version__ = "0+unknown"

from typing import TYPE_CHECKING

from mdt.hookspecs import hookimpl

if TYPE_CHECKING:  # what type checkers and editors see; at run time __getattr__ imports on first use
    from mdt.api import evaluate, load_recipe, load_translator, train
    from mdt.interfaces import (
        Augmentation,
        Classifier,
        Component,
        Dataset,
        LabelEncoder,
        Logger,
        Loss,
        Method,
        Metric,
        Network,
        Role,
        Sampler,
        Translator,
    )

__all__ = [
    "Augmentation",
    "Classifier",
    "Component",
    "Dataset",
    "LabelEncoder",
    "Logger",
    "Loss",
    "Method",
    "Metric",
    "Network",
    "Role",
    "Sampler",
    "Translator",
    "__version__",
    "evaluate",
    "hookimpl",
    "load_recipe",
    "load_translator",
    "train",
]
API = ("evaluate", "load_recipe", "load_translator", "train")
BASES = tuple(name for name in __all__ if name[0].isupper())


def __getattr__(name: str):
    if name in API:
        from mdt import api

        return vars(api)[name]
    if name in BASES:
        from mdt import interfaces

        return vars(interfaces)[name]
    raise AttributeError(f"module 'mdt' has no attribute '{name}'")
