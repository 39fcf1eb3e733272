"""What to install for a feature of an optional extra (``demo``, ``export``, ``hub``,
``trackers``), said as a command that works wherever mdt came from: a clone, a wheel, the
package index. The extras are pyproject.toml's; the installed metadata lists them."""

from __future__ import annotations

import importlib.metadata

DISTRIBUTION = "mdt-translate"


def install_hint(extra: str) -> str:
    """``pip install 'gradio>=5'`` for the demo extra: its packages, read from the installed metadata."""
    try:
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        requirements = []
    packages = [r.split(";")[0].strip() for r in requirements if r.replace("'", '"').endswith(f'extra == "{extra}"')]
    if not packages:
        return f"pip install '{DISTRIBUTION}[{extra}]'"
    return "pip install " + " ".join(f"'{p}'" for p in packages) + f" (the {extra} extra)"
