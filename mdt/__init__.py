"""mdt: multi-domain image-to-image translation, assembled from plugins by recipes."""

__version__ = "0.1.0"

from mdt.hookspecs import hookimpl  # noqa: E402  (plugins write @mdt.hookimpl)

__all__ = ["__version__", "hookimpl"]
