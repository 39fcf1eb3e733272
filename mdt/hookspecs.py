"""The contract between mdt and its plugins: one hook.

A plugin is a module listed under the ``mdt`` entry-point group. It implements
``register_components`` and calls ``register`` once per component::

    import mdt

    @mdt.hookimpl
    def register_components(register):
        register("generator", "tiny_unet", TinyUNet)

The built-in plugins under ``plugins/`` use exactly this path.
"""

from __future__ import annotations

import pluggy

PROJECT = "mdt"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_components(register):  # pragma: no cover - a specification, never called
    """Add this plugin's components to the registry.

    ``register(kind, name, factory)`` adds one component. ``kind`` is one of
    :data:`mdt.registry.CORE_KINDS` or a kind a plugin declared; ``name`` is what
    recipes write as ``type``; ``factory`` is a class or function whose keyword
    arguments are the recipe keys.

    ``register("kind", name, description)`` declares a new kind (StarGAN v2 declares two,
    for its mapping network and its style encoder); a method's roles may then name it.
    """
