"""mdt: multi-domain image-to-image translation, assembled from plugins by recipes.

A plugin registers its components with ``@mdt.hookimpl`` (mdt/hookspecs.py); each class
subclasses its kind's base, ``mdt.Network``, ``mdt.Loss``, ..., which declares everything
mdt calls on it (mdt/interfaces.py). The bases are imported on first use, so that
``import mdt`` stays quick.
"""

__version__ = "0.1.0"

from mdt.hookspecs import hookimpl  # noqa: E402  (plugins write @mdt.hookimpl)

BASES = ("Augmentation", "Classifier", "Component", "Dataset", "LabelEncoder", "Logger", "Loss", "Method", "Metric", "Network",
         "Role", "Sampler", "Translator")
__all__ = [*BASES, "__version__", "hookimpl"]


def __getattr__(name: str):
    if name in BASES:
        from mdt import interfaces

        return vars(interfaces)[name]
    raise AttributeError(f"module 'mdt' has no attribute '{name}'")
