"""The plugin host: finds plugins through entry points and fills the registry.

Every plugin, built in or third party, is a module named in the ``mdt`` entry-point
group. Built-in ones belong to the ``mdt`` distribution itself. Setting
``MDT_DISABLE_PLUGIN_AUTOLOAD=1`` loads only those (for tests and debugging).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pluggy

from mdt import hookspecs
from mdt.errors import MdtError, did_you_mean
from mdt.extras import DISTRIBUTION
from mdt.registry import KIND, Component, Kind, Registry

ENTRY_POINT_GROUP = "mdt"
BUILTIN_DISTRIBUTION = DISTRIBUTION  # the distribution mdt itself is installed as
AUTOLOAD_ENV = "MDT_DISABLE_PLUGIN_AUTOLOAD"
NOT_INSTALLED = "(not installed)"  # the distribution of a plugin module given to load_plugins(extra=...)


@dataclass
class PluginInfo:
    """What ``mdt plugins`` shows about one plugin."""

    name: str
    distribution: str
    version: str
    module: str
    components: list[Component] = field(default_factory=list)
    kinds: list[Kind] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION


@dataclass
class PluginHost:
    registry: Registry
    plugins: list[PluginInfo]


def autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, importlib.metadata.Distribution]]:
    seen: set[tuple[str, str]] = set()
    found = []
    for dist in importlib.metadata.distributions():
        dist_name = (dist.metadata["Name"] or "").lower()
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP or (dist_name, ep.name) in seen:
                continue
            seen.add((dist_name, ep.name))
            found.append((ep, dist))
    return sorted(found, key=lambda pair: (pair[1].metadata["Name"] != BUILTIN_DISTRIBUTION, pair[0].name))


# (plugin, its info, kind, name, factory or description): the last is whatever the plugin passed, unchecked
# until the registry's add or add_kind receives it
Call = tuple[str, "PluginInfo", str, str, Any]


def load_plugins(extra: dict[str, ModuleType] | None = None) -> PluginHost:
    """Load every plugin and return the filled registry.

    ``extra`` registers additional plugin modules by name, as if found through entry
    points (used by tests that exercise a plugin without installing it).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    only_builtin = autoload_disabled()
    infos = _load_entry_points(manager, only_builtin)
    for name, module in (extra or {}).items():
        infos[name] = PluginInfo(name, NOT_INSTALLED, "", module.__name__)
        _register(manager, module, infos[name])
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        name = manager.get_name(exc.plugin) or str(exc.plugin)
        known = _hook_names()
        hook = next((n for n in _implemented(manager, exc.plugin) if n not in known), "?")
        raise MdtError(
            f"plugin '{name}' ({infos[name].distribution if name in infos else '?'}) implements hook "
            f"'{hook}', which mdt does not define{did_you_mean(hook, known)}"
        ) from None
    registry = _filled(_collected_calls(manager, infos))
    if only_builtin:
        registry.unknown_note = f" ({AUTOLOAD_ENV} is set: third-party plugins are not loaded)"
    return PluginHost(registry, list(infos.values()))


def _load_entry_points(manager: pluggy.PluginManager, only_builtin: bool) -> dict[str, PluginInfo]:
    """Import and register every plugin of the entry-point group (mdt's own alone when asked)."""
    infos: dict[str, PluginInfo] = {}
    for ep, dist in _entry_points():
        dist_name = dist.metadata["Name"] or "?"
        if only_builtin and dist_name != BUILTIN_DISTRIBUTION:
            continue
        if manager.has_plugin(ep.name):
            other = infos[ep.name].distribution
            raise MdtError(f"two plugins are named '{ep.name}': from distributions '{other}' and '{dist_name}'")
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide behind a traceback
            raise MdtError(f"plugin '{ep.name}' ({dist_name}) failed to import {ep.value}: {exc}{_way_out(dist_name)}") from exc
        infos[ep.name] = PluginInfo(ep.name, dist_name, dist.version, ep.value)
        _register(manager, module, infos[ep.name])
    return infos


def _collected_calls(manager: pluggy.PluginManager, infos: dict[str, PluginInfo]) -> list[Call]:
    """Each plugin's ``register`` calls, collected before any is applied, so that a kind
    declared by one plugin can hold components of any other, whatever order they load in."""
    calls: list[Call] = []
    plugins = manager.get_plugins()
    for name, info in infos.items():
        plugin = manager.get_plugin(name)
        caller = manager.subset_hook_caller("register_components", [p for p in plugins if p is not plugin])

        def register(kind: str, component_name: str, factory, _plugin: str = name, _info: PluginInfo = info) -> None:
            calls.append((_plugin, _info, kind, component_name, factory))

        try:
            caller(register=register)
        except MdtError as exc:
            raise MdtError(f"plugin '{name}' ({info.distribution}) in register_components: {exc}{_way_out(info)}") from exc
        except Exception as exc:  # a broken third-party plugin must not hide behind a traceback
            raise MdtError(
                f"plugin '{name}' ({info.distribution}) failed in register_components: {type(exc).__name__}: {exc}{_way_out(info)}"
            ) from exc
    return calls


def _filled(calls: list[Call]) -> Registry:
    """A registry of the calls' kinds first, then their components; an error names its plugin."""
    registry = Registry()
    for plugin_name, info, kind, component_name, description in calls:
        if kind == KIND:
            with _blamed_on(info):
                info.kinds.append(registry.add_kind(component_name, description, plugin=plugin_name))
    for plugin_name, info, kind, component_name, factory in calls:
        if kind != KIND:
            with _blamed_on(info):
                info.components.append(
                    registry.add(kind, component_name, factory, plugin=plugin_name, distribution=info.distribution, version=info.version)
                )
    return registry


def _register(manager: pluggy.PluginManager, module, info: PluginInfo) -> None:
    """Register a plugin module; a hook whose arguments are not the hook's is one line."""
    defined = vars(module)
    unmarked = [n for n in _hook_names() if callable(defined.get(n)) and manager.parse_hookimpl_opts(module, n) is None]
    if unmarked:
        raise MdtError(
            f"plugin '{info.name}' ({info.distribution}) defines {unmarked[0]} without @mdt.hookimpl, so mdt "
            f"would never call it; decorate it{_way_out(info)}"
        )
    try:
        manager.register(module, name=info.name)
    except pluggy.PluginValidationError as exc:
        specs = vars(hookspecs)
        wrong = [n for n in _implemented(manager, module) if n in _hook_names() and set(_arguments(defined[n])) - set(_arguments(specs[n]))]
        what = (
            ", ".join(
                f"'{n}' takes ({', '.join(_arguments(defined[n]))}) where mdt's hook gives ({', '.join(_arguments(specs[n]))})"
                for n in wrong
            )
            or str(exc).splitlines()[0]
        )
        raise MdtError(f"plugin '{info.name}' ({info.distribution}): hook {what}{_way_out(info)}") from exc


def _hook_names() -> list[str]:
    """The hooks mdt defines (mdt.hookspecs)."""
    reader = pluggy.PluginManager(hookspecs.PROJECT)
    return [n for n in vars(hookspecs) if reader.parse_hookspec_opts(hookspecs, n) is not None]


def _implemented(manager: pluggy.PluginManager, module) -> list[str]:
    """The names a plugin module marks with ``@mdt.hookimpl``."""
    return [n for n in list(vars(module)) if manager.parse_hookimpl_opts(module, n) is not None]


def _arguments(function) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


@contextlib.contextmanager
def _blamed_on(info: PluginInfo):
    """A registration's error names the plugin that made it, where it does not already."""
    try:
        yield
    except MdtError as exc:
        if "plugin '" in str(exc):
            raise MdtError(f"{exc}{_way_out(info)}") from exc
        raise MdtError(f"plugin '{info.name}' ({info.distribution}): {exc}{_way_out(info)}") from exc


def _way_out(info: PluginInfo | str) -> str:
    """How to get the other commands back while a third-party plugin is broken."""
    distribution = info if isinstance(info, str) else info.distribution
    if distribution in (BUILTIN_DISTRIBUTION, NOT_INSTALLED):
        return ""
    return f" (until it is fixed: {AUTOLOAD_ENV}=1 runs mdt without third-party plugins, or pip uninstall {distribution})"


@functools.cache
def default_host() -> PluginHost:
    """The host for this process: plugins are loaded once, on first use."""
    return load_plugins()


def get_registry() -> Registry:
    return default_host().registry


def third_party_components(recipe, registry: Registry) -> list[dict[str, str]]:
    """The components of ``recipe`` that come from installed third-party plugins: what a
    checkpoint records, so that where one is missing mdt can say which package to install."""
    used = []
    for table in recipe.tables():
        component = registry.get(table.kind, table.type)
        if component.distribution not in ("", BUILTIN_DISTRIBUTION, NOT_INSTALLED):
            entry = {
                "kind": table.kind,
                "name": table.type,
                "plugin": component.plugin,
                "distribution": component.distribution,
                "version": component.version,
            }
            if entry not in used:
                used.append(entry)
    return used
