"""What mdt asks of every component class it builds from a recipe table, before building it.

Each kind's base class (:mod:`mdt.interfaces`) derives from :class:`Component`; a plugin's
class overrides what applies to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class Component:
    """The class-level hooks of every kind, with their defaults."""

    #: Python packages the component imports when it is built or used (an MLflow logger:
    #: ``("mlflow",)``); a run refuses to start, naming the package, when one is missing.
    requires: ClassVar[tuple[str, ...]] = ()

    #: The optional extra of mdt's package that installs :attr:`requires` (``"audio"``),
    #: named in that message; empty for a plugin of another package.
    extra: ClassVar[str] = ""

    @staticmethod
    def arguments_problem(values: Mapping[str, Any]) -> str | None:
        """Why these constructor arguments cannot work together, or None. ``values`` are
        the table's values with the constructor's defaults filled in, and ``[run]``'s
        ``image_size`` and ``iterations``; ``mdt recipe check`` asks before anything is
        built (StarGAN's discriminator halves the image ``layers`` times)."""
        return None
