"""The registry: duplicates name both origins, unknown names list what exists."""

from __future__ import annotations

import types

import pytest

import mdt
from mdt.errors import MdtError
from mdt.plugins import load_plugins
from mdt.registry import Registry


class make_generator(mdt.Network):
    """A generator factory used only by these tests."""


class other_generator(mdt.Network):
    """Another one, registered under the same name."""


class some_loss(mdt.Loss):
    """A loss used only by these tests."""


def test_duplicate_name_names_both_origins():
    registry = Registry()
    registry.add("generator", "unet", make_generator, plugin="first")
    with pytest.raises(MdtError) as caught:
        registry.add("generator", "unet", other_generator, plugin="second")
    message = str(caught.value)
    assert "generator 'unet' is registered twice" in message
    assert "plugin 'first', defined at " in message and "plugin 'second', defined at " in message
    assert message.count("test_registry.py") == 2 and "give one of them another name" in message
    assert "the same object twice" not in message


def test_a_third_party_plugin_that_takes_a_builtin_name_is_named_with_its_package_and_a_way_out():
    """A plugin registering mdt's own class under its built-in name: both origins point at
    one file, so the packages tell the user which plugin to change or remove."""
    from mdt.plugins import PluginInfo, _blamed_on

    registry = Registry()
    registry.add("generator", "unet", make_generator, plugin="mdt_stargan", distribution="mdt", version="0.1.0")
    info = PluginInfo("theirs", "their-package", "2.0", "theirs")
    with pytest.raises(MdtError) as caught, _blamed_on(info):
        registry.add("generator", "unet", make_generator, plugin="theirs", distribution="their-package", version="2.0")
    message = str(caught.value)
    assert "by plugin 'mdt_stargan' (mdt 0.1.0), defined at " in message
    assert "by plugin 'theirs' (their-package 2.0), defined at " in message and "(the same object twice)" in message
    assert "MDT_DISABLE_PLUGIN_AUTOLOAD=1" in message and "pip uninstall their-package" in message


def test_unknown_name_lists_registered_closest_first():
    registry = Registry()
    for name in ("stargan", "unet", "resnet"):
        registry.add("generator", name, make_generator, plugin="p")
    with pytest.raises(MdtError) as caught:
        registry.get("generator", "stargn")
    message = str(caught.value)
    assert message.startswith("unknown generator 'stargn'")
    assert message.index("'stargan'") < message.index("'unet'")


def test_unknown_name_in_an_empty_kind():
    with pytest.raises(MdtError, match="registered metrics, closest first: none"):
        Registry().get("metric", "fid")


def test_unknown_kind():
    with pytest.raises(MdtError, match="unknown component kind 'generatr'"):
        Registry().add("generatr", "x", make_generator, plugin="p")


def test_find_says_where_a_component_is_defined(registry):
    import inspect
    from pathlib import Path

    found = registry.find("generator", "stargan")
    assert found["plugin"] == "stargan"
    assert found["file"].endswith("networks.py")
    assert int(found["line"]) > 0
    assert "StarGAN generator" in found["docstring"]
    factory = registry.get("generator", "stargan").factory
    assert Path(found["file"]).resolve() == Path(inspect.getsourcefile(factory)).resolve()
    assert int(found["line"]) == inspect.getsourcelines(factory)[1]
    line = Path(found["file"]).read_text().splitlines()[int(found["line"]) - 1]
    assert line.startswith(f"class {factory.__name__}"), line  # the line that defines it


def test_builtin_plugins_come_through_the_entry_point_group():
    host = load_plugins()
    by_name = {p.name: p for p in host.plugins}
    assert {"datasets", "labels", "stargan", "metrics"} <= set(by_name)
    assert all(p.distribution == "mdt-translate" and p.version == mdt.__version__ for p in by_name.values())
    assert {c.name for c in by_name["stargan"].components if c.kind == "method"} == {"stargan"}


def test_a_misspelt_hook_is_an_error():
    plugin = types.ModuleType("typo_plugin")

    @mdt.hookimpl
    def register_component(register):  # missing the final "s"
        raise AssertionError("never called")

    plugin.register_component = register_component
    with pytest.raises(MdtError) as caught:
        load_plugins(extra={"typo_plugin": plugin})
    assert str(caught.value) == (
        "plugin 'typo_plugin' ((not installed)) implements hook 'register_component', which mdt "
        "does not define (did you mean 'register_components'?)"
    )


def test_a_plugin_whose_hook_raises_is_one_line():
    plugin = types.ModuleType("raising")

    @mdt.hookimpl
    def register_components(register):
        raise RuntimeError("boom in hook")

    plugin.register_components = register_components
    with pytest.raises(MdtError) as caught:
        load_plugins(extra={"raising": plugin})
    assert str(caught.value) == "plugin 'raising' ((not installed)) failed in register_components: RuntimeError: boom in hook"


def test_registering_an_instance_instead_of_a_class_is_refused():
    from mdt_stargan.losses import WassersteinAdversarial

    with pytest.raises(MdtError) as caught:
        Registry().add("loss", "inst", WassersteinAdversarial(), plugin="mine")
    assert str(caught.value) == (
        "plugin 'mine' registered loss 'inst' as an instance of WassersteinAdversarial; register the class (or a function that builds one)"
    )


def generator_plugin(module_name: str, generator_name: str) -> types.ModuleType:
    """A plugin module registering one generator, as a third party would write it."""
    plugin = types.ModuleType(module_name)

    @mdt.hookimpl
    def register_components(register):
        register("generator", generator_name, make_generator)

    plugin.register_components = register_components
    return plugin


def test_an_extra_plugin_registers_through_the_same_hook():
    host = load_plugins(extra={"extra_plugin": generator_plugin("extra_plugin", "extra")})
    assert host.registry.get("generator", "extra").plugin == "extra_plugin"


def test_a_plugin_clashing_with_a_builtin_name_is_an_error():
    with pytest.raises(MdtError, match=r"plugin 'stargan'.*plugin 'clash'"):
        load_plugins(extra={"clash": generator_plugin("clash", "stargan")})


def test_list_and_plugins_commands(cli):
    result = cli("list", "generator")
    assert result.exit_code == 0 and "stargan" in result.output and "StarGAN generator" in result.output
    result = cli("list", "generator", "stargan")
    assert "networks.py" in result.output and "label_dim: set by mdt" in result.output
    assert "takes: (images, labels)" in result.output and "returns: (image)" in result.output
    result = cli("list", "method", "stargan")  # a method's contract: its networks and what its losses may read
    assert "generator: set by mdt (the [networks.generator] network)" in result.output
    assert "network [networks.discriminator]: a discriminator taking (images), read for (scores, logits)" in result.output
    assert "losses may read in the discriminator phase:" in result.output and "real_scores" in result.output
    # What the check asks beyond each key's own range: a range on a value mdt fills in, and
    # how arguments must fit together (the component's arguments_problem, in its words).
    result = cli("list", "generator", "stargan_v2")
    assert "image_size: set by mdt ([run] image_size); it must be an integer that is a power of two of at least 16" in result.output
    result = cli("list", "discriminator", "stargan")
    assert "also checked: Both sides of the samples must be divisible by 2**layers" in result.output
    result = cli("plugins")
    assert result.exit_code == 0
    for name in ("datasets", "labels", "stargan", "metrics"):
        assert name in result.output
    assert "MDT_DISABLE_PLUGIN_AUTOLOAD is set" in result.output


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and mdt.__version__ in result.output


def test_a_plugin_that_fails_to_import_is_one_line(tmp_path, monkeypatch):
    """An installed third-party entry point whose module is broken: named, not a traceback."""
    info = tmp_path / "mdt_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mdt-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mdt]\nbroken = mdt_broken_plugin_module\n")
    (tmp_path / "mdt_broken_plugin_module.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MDT_DISABLE_PLUGIN_AUTOLOAD")
    with pytest.raises(MdtError, match=r"plugin 'broken' \(mdt-broken\) failed to import mdt_broken_plugin_module: boom at import"):
        load_plugins()
    monkeypatch.setenv("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert "broken" not in {p.name for p in load_plugins().plugins}  # the switch leaves it out


def plugin_with(module_name: str, hook) -> types.ModuleType:
    plugin = types.ModuleType(module_name)
    plugin.register_components = mdt.hookimpl(hook)
    return plugin


def test_a_hook_with_the_wrong_argument_name_is_one_line():
    def register_components(registry):  # the hook's argument is 'register'
        raise AssertionError("never called")

    with pytest.raises(MdtError) as caught:
        load_plugins(extra={"misnamed": plugin_with("misnamed", register_components)})
    assert str(caught.value) == (
        "plugin 'misnamed' ((not installed)): hook 'register_components' takes (registry) where mdt's hook gives (register)"
    )


@pytest.mark.parametrize(
    "hook,expected",
    [
        (
            lambda register: register("genrator", "x", make_generator),
            "plugin 'kindless' ((not installed)): unknown component kind 'genrator' (did you mean 'generator'?)",
        ),
        (
            lambda register: (_ for _ in ()).throw(MdtError("set FANCY_HOME first")),
            "plugin 'kindless' ((not installed)) in register_components: set FANCY_HOME first",
        ),
    ],
)
def test_an_error_in_a_registration_names_the_plugin(hook, expected):
    def register_components(register):
        hook(register)

    with pytest.raises(MdtError) as caught:
        load_plugins(extra={"kindless": plugin_with("kindless", register_components)})
    assert str(caught.value).startswith(expected), str(caught.value)


def test_an_argument_named_type_is_refused_at_registration():
    """A recipe table's 'type' key chooses the component, so such an argument could never be set."""

    class make(mdt.Network):
        def __init__(self, type: str = "a") -> None:
            super().__init__()

    with pytest.raises(MdtError) as caught:
        Registry().add("generator", "typed", make, plugin="mine")
    assert str(caught.value) == (
        "plugin 'mine' registered generator 'typed' with an argument named 'type', which a recipe "
        "cannot set: its table's 'type' key chooses the component; rename the argument"
    )


def test_a_broken_installed_plugin_says_how_to_run_without_it_and_keeps_its_traceback(tmp_path, monkeypatch):
    """``mdt --debug`` shows the plugin's own frames: the one-line error chains its cause."""
    info = tmp_path / "mdt_raises-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mdt-raises\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mdt]\nraises = mdt_raises_module\n")
    (tmp_path / "mdt_raises_module.py").write_text(
        "import mdt\n\n@mdt.hookimpl\ndef register_components(register):\n    raise KeyError('FANCY_HOME')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("MDT_DISABLE_PLUGIN_AUTOLOAD")
    with pytest.raises(MdtError) as caught:
        load_plugins()
    assert str(caught.value) == (
        "plugin 'raises' (mdt-raises) failed in register_components: KeyError: 'FANCY_HOME' "
        "(until it is fixed: MDT_DISABLE_PLUGIN_AUTOLOAD=1 runs mdt without third-party plugins, "
        "or pip uninstall mdt-raises)"
    )
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_class_that_does_not_subclass_its_kinds_base_is_refused_with_the_base_named():
    """mdt calls a component's hooks directly: a class that does not inherit their defaults
    would fail mid-run, so registering one is refused."""
    import torch

    class Plain(torch.nn.Module):
        pass

    with pytest.raises(MdtError) as caught:
        Registry().add("generator", "plain", Plain, plugin="mine")
    assert str(caught.value) == (
        "plugin 'mine' registered generator 'plain' as class Plain, which does not subclass mdt.Network; "
        "subclass it: it declares what mdt calls on a generator, with defaults (docs/writing-a-plugin.md)"
    )

    def loss(weight: float = 1.0):
        return weight

    with pytest.raises(MdtError, match=r"registered loss 'made' as function '.*loss', which does not subclass mdt.Loss"):
        Registry().add("loss", "made", loss, plugin="mine")
    registry = Registry()
    registry.add_kind("painter", "networks that paint", plugin="mine")  # a plugin's own kind: a kind of network
    with pytest.raises(MdtError, match=r"does not subclass mdt\.Network"):
        registry.add("painter", "brush", dict, plugin="mine")
    registry.add("painter", "brush", make_generator, plugin="mine")
    registry.add("importer", "anything", print, plugin="mine")  # called, never inspected


def test_an_unknown_name_says_when_it_is_another_kind_and_lists_at_most_eight():
    registry = Registry()
    for k in range(12):
        registry.add("loss", f"loss_{k:02d}", some_loss, plugin="many")
    registry.add("generator", "unet", make_generator, plugin="nets")
    with pytest.raises(MdtError) as caught:
        registry.get("loss", "unet")
    assert str(caught.value) == "unknown loss 'unet': 'unet' is a registered generator, not a loss"
    with pytest.raises(MdtError) as caught:
        registry.get("loss", "loss_1x")
    message = str(caught.value)
    assert message.count("'loss_") == 1 + 8 and message.endswith(" and 4 more (mdt list loss)")  # the name asked for, and eight


def test_unknown_names_say_when_third_party_plugins_are_off(monkeypatch):
    monkeypatch.setenv("MDT_DISABLE_PLUGIN_AUTOLOAD", "1")
    with pytest.raises(MdtError) as caught:
        load_plugins().registry.get("generator", "tiny_unet")
    assert str(caught.value).endswith("(MDT_DISABLE_PLUGIN_AUTOLOAD is set: third-party plugins are not loaded)")


def test_a_hook_without_the_marker_is_an_error_not_silence():
    plugin = types.ModuleType("unmarked")

    def register_components(register):  # no @mdt.hookimpl: pluggy would never call it
        register("generator", "never", make_generator)

    plugin.register_components = register_components
    with pytest.raises(MdtError) as caught:
        load_plugins(extra={"unmarked": plugin})
    assert str(caught.value) == (
        "plugin 'unmarked' ((not installed)) defines register_components without @mdt.hookimpl, so mdt would never call it; decorate it"
    )


def test_list_shows_what_each_argument_takes_ranged_or_not(cli):
    result = cli("list", "dataset", "celeba")
    assert result.exit_code == 0, result.output
    assert "  root: required; a string\n" in result.output
    assert "  crop_size: default 178; an integer of at least 0\n" in result.output
    assert "  attributes: default ('Black_Hair', 'Blond_Hair', 'Brown_Hair', 'Male', 'Young'); a list\n" in result.output
