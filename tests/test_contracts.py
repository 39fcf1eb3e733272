"""Contracts checked before anything is built: a method's roles against the networks a
recipe chooses, and its published step states against what each loss reads."""

from __future__ import annotations

from typing import Annotated

import pytest
import torch
from conftest import REPO, plugin_module
from test_recipe_errors import one_line_error as only_line

from mdt.contracts import NeedsOutput, state_fields
from mdt.interfaces import Network
from mdt.loss import Loss
from mdt.plugins import load_plugins
from mdt.recipe import load_recipe

STARGAN = REPO / "recipes" / "stargan_celeba.toml"
V2 = REPO / "recipes" / "stargan_v2_quickstart.toml"


def one_line_error(result, expected: str) -> None:
    """Exit code 2, one line, no traceback, and that line says ``expected``."""
    assert expected in only_line(result), result.output


def check(cli, recipe, *sets):
    args = [a for s in sets for a in ("--set", s)]
    return cli("recipe", "check", recipe, *args)


def test_a_loss_reading_what_the_method_does_not_offer(cli):
    result = check(cli, STARGAN, "losses.adversarial.type=least_squares")
    one_line_error(
        result,
        "[losses.adversarial] loss 'least_squares' reads 'real_scores_a', which method 'stargan' does not offer in its discriminator phase",
    )


def test_r1_fits_stargan_in_place_of_the_gradient_penalty(cli):
    result = check(cli, STARGAN, "losses.gradient_penalty.type=r1")
    assert result.exit_code == 0, result.output


def test_another_methods_loss_names_the_field_this_method_lacks(cli, tmp_path):
    recipe = tmp_path / "odd.toml"
    recipe.write_text(STARGAN.read_text() + '\n[losses.style]\ntype = "style_reconstruction"\n')
    result = check(cli, recipe)
    one_line_error(result, "[losses.style] loss 'style_reconstruction' reads 'predicted_style', which method 'stargan' does not offer")


def test_a_network_that_takes_other_inputs(cli):
    result = check(cli, STARGAN, "networks.generator.type=stargan_v2")
    one_line_error(
        result,
        "[networks.generator] type 'stargan_v2' takes (images, style, landmark_masks), but method 'stargan' gives its generator (images, labels)",
    )


def test_a_network_that_lacks_an_output(cli):
    result = check(cli, V2, "networks.discriminator.type=stargan")
    one_line_error(
        result,
        "[networks.discriminator] type 'stargan' returns (scores, logits), but method 'stargan_v2' reads 'domain_scores' of its discriminator",
    )


def test_a_missing_and_a_foreign_network_table(cli, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(STARGAN.read_text().replace("[networks.discriminator]", "[networks.critic]"))
    one_line_error(check(cli, recipe), "method 'stargan' needs a [networks.discriminator] table (registered discriminators: ")
    recipe.write_text(STARGAN.read_text() + '\n[networks.style_encoder]\ntype = "stargan_v2"\n')
    one_line_error(
        check(cli, recipe), "[networks.style_encoder] is not a network of method 'stargan'; its networks: generator, discriminator"
    )


def mask_plugin():
    """A generator with an attention mask, a loss that reads it, and a method that offers
    it only when its generator returns one — a third party's plugin."""
    from mdt_stargan.method import StarGAN, StepState
    from mdt_stargan.networks import StarGANGenerator

    class MaskedState(StepState):
        @property
        def fake_mask(self) -> Annotated[torch.Tensor, NeedsOutput("generator", "mask")]:
            """The generator's attention mask of the translations."""
            return torch.zeros(1)

    class Masked(StarGAN):
        """StarGAN whose losses may read an attention mask."""

        phases = {"discriminator": MaskedState, "generator": MaskedState}

    class MaskedGenerator(StarGANGenerator):
        """A generator that also returns a mask."""

        outputs = ("image", "mask")

    class MaskMean(Loss):
        """Keeps the mask small."""

        reads = {"generator": ("fake_mask",)}

    return plugin_module("masks", ("method", "masked", Masked), ("generator", "masked", MaskedGenerator), ("loss", "mask_mean", MaskMean))


def test_a_loss_reading_an_output_the_chosen_network_lacks():
    from mdt.errors import MdtError

    registry = load_plugins(extra={"masks": mask_plugin()}).registry
    sets = ["method.type=masked", "networks.generator.type=masked"]
    recipe = load_recipe(STARGAN, sets, registry)
    recipe.data["losses"]["mask"] = {"type": "mask_mean"}
    from mdt.recipe_check import validate

    validate(recipe, registry)  # the masked generator returns a mask: fine
    recipe.data["networks"]["generator"]["type"] = "stargan"
    with pytest.raises(MdtError) as caught:
        validate(recipe, registry)
    assert str(caught.value).endswith(
        "[losses.mask] loss 'mask_mean' reads 'fake_mask', which method 'masked' offers only when its generator returns 'mask'; "
        "the chosen generator returns (image)"
    )


def test_published_states_name_their_fields():
    from mdt_stargan.method import StepState

    fields = state_fields(StepState)
    assert {"real", "fake", "real_scores", "fake_logits", "reconstruction", "mix_weights", "encoder"} <= set(fields)
    assert "autocast" not in fields and not any(f.startswith("_") for f in fields)
    assert fields["reconstruction"].startswith("G(fake")


def test_old_recipes_read_networks_the_new_way_with_a_notice(cli, tmp_path):
    old = REPO / "tests" / "fixtures" / "legacy" / "v1" / "recipe.toml"
    assert "[generator]" in old.read_text()
    result = cli("recipe", "show", old, "--set", "generator.conv_dim=16")
    assert result.exit_code == 0, result.output
    assert "notice: " in result.output and "[generator] is read as [networks.generator]" in result.output
    assert '[networks.generator]\ntype = "stargan"\nconv_dim = 16' in result.output


def test_a_metric_that_does_not_apply_is_refused_before_training(cli, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text((REPO / "recipes" / "quickstart.toml").read_text() + '\n[metrics.diversity]\ntype = "diversity"\n')
    result = cli("run", recipe, "--out", "run", "--set", "run.image_size=32", "--set", "datasets.faces.size=16")
    one_line_error(result, "[metrics.diversity] does not apply to the translations of method 'stargan'; remove it")
    assert not (tmp_path / "run").exists()


def test_a_loss_of_the_wrong_method_is_named_before_its_keys(cli):
    # The diversity table's decay_iterations is no key of domain_classification: the contract says more.
    result = check(cli, V2, "losses.diversity.type=domain_classification")
    one_line_error(result, "[losses.diversity] loss 'domain_classification' reads 'encoder', which method 'stargan_v2' does not offer")


def test_a_model_trained_with_a_plugin_loss_translates_without_that_plugin(tmp_path):
    """Losses only train: a model shared with someone who lacks the plugin of one of its
    losses still loads, translates and shows its checkpoint."""
    from mdt.engine import train
    from mdt.inference import load_translator

    class Smooth(Loss):
        """Keeps the translations smooth."""

        reads = {"generator": ("fake",)}

        def __call__(self, phase, state):
            return (state.fake[..., 1:] - state.fake[..., :-1]).abs().mean(), {}

    with_plugin = load_plugins(extra={"smooth": plugin_module("smooth", ("loss", "smoothness", Smooth))}).registry
    from conftest import SMALL

    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", [*SMALL, "datasets.faces.size=8", "datasets.faces.test_size=2"], with_plugin)
    recipe.data.pop("metrics", None), recipe.data.pop("classifier", None)
    recipe.data["losses"]["smooth"] = {"type": "smoothness", "weight": 0.5}
    train(recipe, with_plugin, tmp_path / "run")
    translator = load_translator(tmp_path / "run", device="cpu", registry=load_plugins().registry)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    without = translator.translator.translate(images, {"Blond_Hair": 1.0})
    assert without.shape == (2, 3, 32, 32)
    # the same model as with the plugin loaded: every trained weight read, the same translation
    same_model = load_translator(tmp_path / "run", device="cpu", registry=with_plugin)
    assert torch.equal(without, same_model.translator.translate(images, {"Blond_Hair": 1.0}))
    assert not torch.equal(without, same_model.translator.translate(images, {"Brown_Hair": 1.0}))  # the request matters


def declaration_slips():
    """A third party's usual slips in declaring a network or a loss."""
    from mdt_stargan.networks import StarGANGenerator

    class Undeclared(Network):  # inputs and outputs left at their default: not declared
        def forward(self, images, labels):
            return images

    class StringInputs(StarGANGenerator):
        inputs = "images"  # the missing comma: a string

    class StringReads(Loss):
        reads = {"generator": "fake"}

    class TypoReads(Loss):
        reads = {"generator": ("fakes",)}

    class TupleReads(Loss):
        reads = ("fake",)

    class WarmupReads(Loss):  # a phase of another method's (a warm-up update StarGAN does not make)
        reads = {"warmup": ("real",)}

    return plugin_module(
        "slips",
        ("generator", "undeclared", Undeclared),
        ("generator", "string_inputs", StringInputs),
        ("loss", "string_reads", StringReads),
        ("loss", "typo_reads", TypoReads),
        ("loss", "tuple_reads", TupleReads),
        ("loss", "warmup_reads", WarmupReads),
    )


@pytest.mark.parametrize(
    "sets,expected",
    [
        (
            ["networks.generator.type=undeclared"],
            "type 'undeclared' declares no inputs; method 'stargan' gives its generator (images, labels)",
        ),
        (
            ["networks.generator.type=string_inputs"],
            "type 'string_inputs' declares inputs = 'images', a string; write a tuple of names: ('images',)",
        ),
        (
            ["losses.adversarial.type=string_reads"],
            "loss 'string_reads' declares reads['generator'] = 'fake', a string; write a tuple of field names: ('fake',)",
        ),
        (["losses.adversarial.type=tuple_reads"], "loss 'tuple_reads' declares reads = ('fake',); write a dict of phase: (field, ...)"),
        (
            ["losses.adversarial.type=typo_reads"],
            "loss 'typo_reads' reads 'fakes', which method 'stargan' does not offer in its generator phase (did you mean 'fake'?)",
        ),
        (
            ["losses.adversarial.type=warmup_reads"],
            "loss 'warmup_reads' takes part in the 'warmup' phase, which method 'stargan' does not run (discriminator, generator)",
        ),
    ],
)
def test_declaration_slips_are_named_by_the_check(sets, expected):
    from mdt.errors import MdtError
    from mdt.recipe_check import validate

    registry = load_plugins(extra={"slips": declaration_slips()}).registry
    recipe = load_recipe(STARGAN, [], registry)
    for item in sets:
        key, value = item.split("=")
        table, field = key.rsplit(".", 1)
        node = recipe.data
        for part in table.split("."):
            node = node[part]
        node[field] = value
    with pytest.raises(MdtError) as caught:
        validate(recipe, registry)
    assert expected in str(caught.value), str(caught.value)


def test_a_loss_that_forgets_its_weight_is_named_when_built():
    from mdt.build import build
    from mdt.errors import MdtError

    class NoWeight(Loss):
        reads = {"generator": ("fake",)}

        def __init__(self, power: float = 1.0) -> None:  # never calls super().__init__(weight)
            self.power = power

    registry = load_plugins(extra={"no_weight": plugin_module("no_weight", ("loss", "no_weight", NoWeight))}).registry
    from conftest import SMALL

    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", [*SMALL, "datasets.faces.size=8", "datasets.faces.test_size=2"], registry)
    recipe.data["losses"]["smooth"] = {"type": "no_weight"}
    with pytest.raises(MdtError) as caught:
        build(recipe, registry)
    assert "[losses.smooth] loss 'no_weight' has no number 'weight' once built" in str(caught.value)


def test_a_loss_that_takes_no_weight_fails_the_check():
    """The check, not only the build, refuses a loss whose constructor has no weight."""
    from mdt.errors import MdtError
    from mdt.recipe_check import validate

    class NoWeight(Loss):
        reads = {"generator": ("fake",)}

        def __init__(self, power: float = 1.0) -> None:
            self.power = power

    registry = load_plugins(extra={"no_weight": plugin_module("no_weight", ("loss", "no_weight", NoWeight))}).registry
    recipe = load_recipe(REPO / "recipes" / "quickstart.toml", [], registry)
    recipe.data["losses"]["smooth"] = {"type": "no_weight"}
    with pytest.raises(MdtError) as caught:
        validate(recipe, registry)
    assert str(caught.value).endswith(
        "[losses.smooth] loss 'no_weight' takes no 'weight' argument; a loss is weighted in its "
        "method's sum (subclass mdt.loss.Loss, whose constructor takes it)"
    )


class Unannotated(Loss):
    """A third party's loss whose arguments carry defaults but no annotations."""

    reads = {"generator": ("fake",)}

    def __init__(self, weight=1.0, power=2, names=(), smooth=True, note="", anything=None) -> None:
        super().__init__(weight)
        self.power, self.names, self.smooth, self.anything = power, names, smooth, anything

    def __call__(self, phase, state):
        return state.fake.abs().pow(self.power).mean(), {}


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("power", "2", "key 'power' = \"2\": expected an integer"),
        ("power", 1.5, "key 'power' = 1.5: expected an integer"),
        ("weight", "high", "key 'weight' = \"high\": expected a number"),
        ("names", "eyes", "key 'names' = \"eyes\": expected a list"),
        ("smooth", 1, "key 'smooth' = 1: expected true or false"),
        ("note", 3, "key 'note' = 3: expected a string"),
    ],
)
def test_an_unannotated_argument_takes_its_defaults_type(key, value, expected):
    """Where a plugin annotates nothing, the recipe check still refuses a value its default
    shows is wrong, naming the table and key; a default of None takes anything."""
    from mdt.errors import MdtError
    from mdt.recipe_check import validate

    registry = load_plugins(extra={"bare": plugin_module("bare", ("loss", "bare", Unannotated))}).registry
    recipe = load_recipe(STARGAN, [], registry)
    recipe.data["losses"]["bare"] = {
        "type": "bare",
        "weight": 0.5,
        "power": 3,
        "names": ["a"],
        "smooth": False,
        "note": "n",
        "anything": "x",
    }
    validate(recipe, registry)  # values of the defaults' types, and anything for None, pass
    recipe.data["losses"]["bare"][key] = value
    with pytest.raises(MdtError) as caught:
        validate(recipe, registry)
    assert f"[losses.bare] {expected}" in str(caught.value), str(caught.value)


def test_a_constructor_asking_for_what_its_section_is_not_given_fails_the_check():
    """A generator asking for the dataset split: `recipe check` refuses it as the build
    would, rather than passing a recipe that `mdt run` then refuses."""
    from mdt_stargan.networks import StarGANGenerator

    from mdt.errors import MdtError

    class SplitGenerator(StarGANGenerator):
        def __init__(self, label_dim: int, split: str) -> None:
            super().__init__(label_dim)

    registry = load_plugins(extra={"splits": plugin_module("splits", ("generator", "split_aware", SplitGenerator))}).registry
    with pytest.raises(MdtError) as caught:
        load_recipe(STARGAN, ["networks.generator={type='split_aware'}"], registry)  # the check runs as it loads
    assert str(caught.value).endswith(
        "[networks.generator] type 'split_aware' asks for 'split' (the dataset split, "
        "'train' or 'test'), which mdt does not provide to a generator"
    )
