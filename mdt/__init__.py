"""mdt: multi-domain image-to-image translation, assembled from plugins by recipes.

A plugin registers its components with ``@mdt.hookimpl`` (mdt/hookspecs.py); each class
subclasses its kind's base, which declares everything mdt calls on it (mdt/interfaces.py).
"""

__version__ = "0.1.0"

from mdt.hookspecs import hookimpl  # noqa: E402  (plugins write @mdt.hookimpl)
from mdt.interfaces import (  # noqa: E402  (the bases a plugin's classes subclass)
    Augmentation, Classifier, Component, Dataset, LabelEncoder, Logger, Loss, Method, Metric, Network, Role, Sampler, Translator)

__all__ = ["Augmentation", "Classifier", "Component", "Dataset", "LabelEncoder", "Logger", "Loss", "Method", "Metric", "Network",
           "Role", "Sampler", "Translator", "__version__", "hookimpl"]
