"""StarGAN as the paper and its official code define it."""

from __future__ import annotations

import itertools

import pytest
import torch
from mdt_labels.encoders import MaskVector, MultiHot, OneHot
from mdt_stargan.networks import StarGANDiscriminator, StarGANGenerator

from mdt.labels import LabelSchema, set_labels
from mdt.schedule import linear_decay

CELEBA = LabelSchema("celeba", ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"), (("Black_Hair", "Blond_Hair", "Brown_Hair"),))
RAFD = LabelSchema("rafd", ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"), categorical=True)


def count(module):
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_at_the_paper_settings():
    assert count(StarGANGenerator(label_dim=5)) == 8_430_528
    assert count(StarGANDiscriminator(image_size=128, num_classes=5)) == 44_762_048


def test_generator_outputs_are_images_in_the_data_range():
    generator = StarGANGenerator(label_dim=3, conv_dim=8, residual_blocks=1)
    out = generator(torch.randn(2, 3, 32, 32) * 5, torch.rand(2, 3))
    assert out.shape == (2, 3, 32, 32) and out.min() >= -1 and out.max() <= 1  # tanh, as the paper


def test_discriminator_output_shapes_at_128():
    scores, logits = StarGANDiscriminator(128, 5, conv_dim=8)(torch.rand(2, 3, 128, 128))
    assert scores.shape == (2, 1, 2, 2) and logits.shape == (2, 5)


def test_learning_rate_decays_linearly_to_zero():
    assert linear_decay(0, 1000, 400) == 1.0
    assert linear_decay(600, 1000, 400) == 1.0
    assert linear_decay(800, 1000, 400) == pytest.approx(0.5)
    assert linear_decay(1000, 1000, 400) == 0.0
    factors = [linear_decay(s, 1000, 400) for s in range(1001)]
    assert all(a >= b for a, b in itertools.pairwise(factors))


def test_mask_vector_layout():
    encoder = MaskVector([CELEBA, RAFD])
    assert encoder.condition_dim == 5 + 8 + 2 and encoder.num_classes == 13
    celeba = encoder.encode(torch.tensor([[0.0, 1, 0, 1, 0]]), 0)
    assert celeba.tolist() == [[0, 1, 0, 1, 0] + [0] * 8 + [1, 0]]
    happy = torch.zeros(1, 8)
    happy[0, 4] = 1
    assert encoder.encode(happy, 1).tolist() == [[0] * 5 + happy[0].tolist() + [0, 1]]


def test_mask_vector_loss_ignores_the_unknown_part():
    encoder = MaskVector([CELEBA, RAFD])
    labels = torch.tensor([[1.0, 0, 0, 1, 1], [0, 0, 1, 0, 0]])
    logits = torch.randn(2, 13, requires_grad=True)
    loss = encoder.classification_loss(logits, labels, 0)
    loss.backward()
    assert logits.grad[:, 5:].abs().sum() == 0 and logits.grad[:, :5].abs().sum() > 0
    reference = MultiHot([CELEBA]).classification_loss(logits[:, :5], labels, 0)
    assert loss.item() == pytest.approx(reference.item())
    expression = torch.nn.functional.one_hot(torch.tensor([2, 6]), 8).float()
    assert encoder.classification_loss(logits, expression, 1).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:, 5:], torch.tensor([2, 6])).item()
    )


def test_binary_loss_uses_the_official_scaling():
    logits, labels = torch.randn(4, 5), torch.randint(0, 2, (4, 5)).float()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / 4
    assert MultiHot([CELEBA]).classification_loss(logits, labels, 0).item() == pytest.approx(expected.item())


def test_the_generators_classification_term_alone_can_be_scaled():
    """generator_scale multiplies G's term only: D's classifier learns as before."""
    from types import SimpleNamespace

    from mdt_stargan.losses import DomainClassification

    from mdt.loss import weighted_total

    real_logits, fake_logits = torch.randn(4, 5), torch.randn(4, 5)
    labels, targets = torch.randint(0, 2, (4, 5)).float(), torch.randint(0, 2, (4, 5)).float()
    state = SimpleNamespace(
        encoder=MultiHot([CELEBA]), real_logits=real_logits, fake_logits=fake_logits, labels=labels, target_labels=targets, source=0
    )

    def bce(logits, truth):  # the official scaling: summed over attributes, averaged over the batch
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, truth, reduction="sum").item() / 4

    losses = {"classification": DomainClassification(2.0, generator_scale=3.0)}
    d_total, _ = weighted_total(losses, "discriminator", state, 0, "D", torch.device("cpu"))
    g_total, logged = weighted_total(losses, "generator", state, 0, "G", torch.device("cpu"))
    assert d_total.item() == pytest.approx(2.0 * bce(real_logits, labels))
    assert g_total.item() == pytest.approx(2.0 * 3.0 * bce(fake_logits, targets))
    assert logged["G/classification/unscaled"].item() == pytest.approx(bce(fake_logits, targets))


def test_translation_source_teaches_ds_classifier_the_sources_labels_on_translations():
    """translation_source: D's term is BCE(D_cls(G(x, c)), c'), c' the source's own labels
    (not the target's, not on real images); G's phase does not read it."""
    from types import SimpleNamespace

    from mdt_stargan.losses import TranslationSource

    from mdt.loss import weighted_total

    fake_logits = torch.randn(4, 5, requires_grad=True)
    labels, targets = torch.randint(0, 2, (4, 5)).float(), torch.randint(0, 2, (4, 5)).float()
    state = SimpleNamespace(
        encoder=MultiHot([CELEBA]), real_logits=torch.randn(4, 5), fake_logits=fake_logits, labels=labels, target_labels=targets, source=0
    )
    expected = torch.nn.functional.binary_cross_entropy_with_logits(fake_logits, labels, reduction="sum").item() / 4
    losses = {"translation_source": TranslationSource(0.5)}
    total, logged = weighted_total(losses, "discriminator", state, 0, "D", torch.device("cpu"))
    assert total.item() == pytest.approx(0.5 * expected)
    assert logged["D/translation_source"].item() == pytest.approx(expected)
    assert "generator" not in TranslationSource.reads


def test_translation_source_trains_with_stargan(cli, tmp_path):
    """A recipe adding translation_source passes the recipe check, and D's term is in its log."""
    import json

    from conftest import REPO, small

    args = small("datasets.faces.size=16", "datasets.faces.test_size=4", "classifier.steps=1", "metrics.accuracy.max_images=2")
    args += ["--set", "losses.translation_source.type=translation_source", "--set", "method.d_steps_per_g=1"]
    result = cli("run", REPO / "recipes" / "quickstart.toml", "--out", "run", *args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    assert lines and all(line["D/translation_source"] > 0 for line in lines)


def test_one_hot_refuses_independent_attributes():
    from mdt.errors import MdtError

    with pytest.raises(MdtError, match='use type = "multi_hot"'):
        OneHot([CELEBA])


def test_setting_a_hair_colour_clears_the_others():
    labels = torch.tensor([[1.0, 0, 0, 1, 0]])
    assert set_labels(CELEBA, labels, {"Blond_Hair": 1}).tolist() == [[0, 1, 0, 1, 0]]
    assert set_labels(CELEBA, labels, {"Male": 0}).tolist() == [[1, 0, 0, 0, 0]]


def test_training_targets_are_a_shuffle_of_the_batch():
    labels = torch.eye(5)
    targets = MultiHot([CELEBA]).sample_targets(labels, 0, torch.Generator().manual_seed(0))
    assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, labels.tolist()))


def test_each_step_updates_only_its_network(registry, tmp_path):
    from test_components import built

    components = built(registry, tmp_path)
    method = components.method
    generator = [p.detach().clone() for p in method.generator.parameters()]
    discriminator = [p.detach().clone() for p in method.discriminator.parameters()]
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    from mdt.data import Batch

    batch = Batch(components.augmentation(raw), labels, 0)
    method.d_steps_per_g = 2
    values = method.train_step([batch], 0)  # (0 + 1) % 2 != 0: discriminator only
    assert "G/total" not in values
    assert all(torch.equal(a, b) for a, b in zip(generator, method.generator.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(discriminator, method.discriminator.parameters(), strict=True))
    values = method.train_step([batch], 1)
    assert "G/total" in values and "G/reconstruction" in values
    assert not all(torch.equal(a, b) for a, b in zip(generator, method.generator.parameters(), strict=True))


def test_the_generator_waits_for_generator_start(registry, tmp_path):
    """generator_start 2 with a G step every iteration: iterations 0 and 1 train D alone, 2 both."""
    from test_components import built

    from mdt.data import Batch

    components = built(registry, tmp_path)
    method = components.method
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(4)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(4)])
    batch = Batch(components.augmentation(raw), labels, 0)
    method.d_steps_per_g, method.generator_start, method.decay_iterations = 1, 2, 0  # constant rates
    generator = [p.detach().clone() for p in method.generator.parameters()]
    for step in (0, 1):
        discriminator = [p.detach().clone() for p in method.discriminator.parameters()]
        assert "G/total" not in method.train_step([batch], step)
        assert all(torch.equal(a, b) for a, b in zip(generator, method.generator.parameters(), strict=True))
        assert not all(torch.equal(a, b) for a, b in zip(discriminator, method.discriminator.parameters(), strict=True))
    assert "G/total" in method.train_step([batch], 2)
    assert not all(torch.equal(a, b) for a, b in zip(generator, method.generator.parameters(), strict=True))


def test_inference_normalises_each_image_by_its_own_statistics():
    """Regression: eval mode must not switch to running averages (that garbled every sample grid)."""
    generator = StarGANGenerator(5, conv_dim=8, residual_blocks=1)
    images, condition = torch.rand(2, 3, 32, 32), torch.rand(2, 5)
    generator.train()
    generator(images, condition)  # moves the running statistics away from their start
    with torch.no_grad():
        in_training_mode = generator(images, condition)
        generator.eval()
        in_eval_mode = generator(images, condition)
    torch.testing.assert_close(in_eval_mode, in_training_mode)


def test_a_decay_window_longer_than_the_run_is_clamped_to_the_run(cli, tmp_path):
    """The paper recipe shortened with --set run.iterations keeps decay_iterations = 100000:
    the learning rate must start at its full value, not at iterations / 100000 of it."""
    assert linear_decay(0, 3000, 100000) == 1.0
    assert linear_decay(1500, 3000, 100000) == pytest.approx(0.5)
    assert linear_decay(2999, 3000, 100000) == pytest.approx(1 / 3000)
    from conftest import REPO, small

    args = small(
        "datasets.faces.size=16",
        "datasets.faces.test_size=4",
        "classifier.steps=1",
        "metrics.accuracy.max_images=2",
        "run.iterations=4",
        "method.decay_iterations=100000",
        "method.lr_generator=0.001",
    )
    assert cli("run", REPO / "recipes" / "quickstart.toml", "--out", "run", *args).exit_code == 0
    import json

    rates = [json.loads(line)["lr"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines() if '"train"' in line]
    assert rates == pytest.approx([0.001, 0.00075, 0.0005, 0.00025])


def test_each_network_trains_at_its_own_decaying_rate():
    """lr_generator and lr_discriminator apart, both falling over the last decay_iterations."""
    from mdt_stargan.losses import WassersteinAdversarial
    from mdt_stargan.method import StarGAN

    from mdt.data import Batch

    G, D = StarGANGenerator(5, conv_dim=8, residual_blocks=1), StarGANDiscriminator(32, 5, conv_dim=8, layers=3)
    method = StarGAN(
        G,
        D,
        MultiHot([CELEBA]),
        {"adversarial": WassersteinAdversarial(1.0)},
        iterations=10,
        image_size=32,
        lr_generator=3e-4,
        lr_discriminator=1e-4,
        d_steps_per_g=1,
        decay_iterations=4,
    )
    batch = Batch(torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1]]), 0)
    for step, factor in ((0, 1.0), (6, 1.0), (7, 0.75), (9, 0.25)):
        values = method.train_step([batch], step)
        assert method.optimizers()["generator"].param_groups[0]["lr"] == pytest.approx(3e-4 * factor), step
        assert method.optimizers()["discriminator"].param_groups[0]["lr"] == pytest.approx(1e-4 * factor), step
        assert values["lr"] == pytest.approx(3e-4 * factor)


def test_identity_loss_is_the_l1_of_the_generator_asked_for_the_inputs_own_labels(registry, tmp_path):
    """The step state's `identity` is G(x, c_x), computed on its own from the generator."""
    from mdt_stargan.losses import IdentityL1
    from mdt_stargan.method import StepState
    from test_components import built

    from mdt.data import Batch

    components = built(registry, tmp_path)
    method = components.method
    raw = torch.stack([components.train_sets[0][i]["image"] for i in range(3)])
    labels = torch.stack([components.train_sets[0][i]["label"] for i in range(3)])
    real = components.augmentation(raw)
    state = StepState("generator", method, Batch(real, labels, 0), labels.flip(0))
    value, _ = IdentityL1()("generator", state)
    with torch.no_grad():
        expected = (method.generator(real, components.label_encoder.encode(labels, 0)) - real).abs().mean()
    assert float(value) == pytest.approx(float(expected), rel=1e-6) and float(value) > 0
    value.backward()  # the loss trains the generator
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in method.generator.parameters())


def _official_iteration(G, D, g_opt, d_opt, x_real, label_org, label_trg, alpha):
    """One iteration that updates both networks, as the official solver.py writes it out
    (WGAN-GP; lambda_cls 1, lambda_gp 10, lambda_rec 10), from the weights' state in."""
    import torch.nn.functional as F

    def cls(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / logits.size(0)

    out_src, out_cls = D(x_real)
    d_loss = -out_src.mean() + cls(out_cls, label_org)
    x_fake = G(x_real, label_trg)
    out_src, _ = D(x_fake.detach())
    d_loss = d_loss + out_src.mean()
    x_hat = (alpha * x_real + (1 - alpha) * x_fake.detach()).requires_grad_(True)
    out_src, _ = D(x_hat)
    (grad,) = torch.autograd.grad(out_src, x_hat, torch.ones_like(out_src), create_graph=True)
    d_loss = d_loss + 10 * ((grad.view(grad.size(0), -1).norm(2, dim=1) - 1) ** 2).mean()
    d_opt.zero_grad()
    g_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    d_grads = [p.grad.clone() for p in D.parameters()]
    x_fake = G(x_real, label_trg)  # generated again for the generator's update
    out_src, out_cls = D(x_fake)
    g_loss = -out_src.mean() + cls(out_cls, label_trg) + 10 * (x_real - G(x_fake, label_org)).abs().mean()
    d_opt.zero_grad()
    g_opt.zero_grad()
    g_loss.backward()
    return d_grads, [p.grad.clone() for p in G.parameters()]


def test_an_iteration_that_updates_both_networks_is_the_official_one():
    """mdt's StarGAN iteration against the official iteration written out: D's gradients of
    its update and G's of its own, at the paper's loss weights."""
    import copy

    from mdt_stargan.losses import CycleReconstruction, DomainClassification, GradientPenalty, WassersteinAdversarial
    from mdt_stargan.method import StarGAN

    from mdt.data import Batch

    torch.manual_seed(0)
    G, D = StarGANGenerator(5, conv_dim=8, residual_blocks=1), StarGANDiscriminator(32, 5, conv_dim=8, layers=4)
    official_G, official_D = copy.deepcopy(G), copy.deepcopy(D)
    losses = {
        "adversarial": WassersteinAdversarial(1.0),
        "gradient_penalty": GradientPenalty(10.0),
        "classification": DomainClassification(1.0),
        "reconstruction": CycleReconstruction(10.0),
    }
    method = StarGAN(G, D, MultiHot([CELEBA]), losses, iterations=10**6, image_size=32, d_steps_per_g=5, decay_iterations=1)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    labels = torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0], [0, 1, 0, 1, 1], [0, 0, 0, 0, 1]])

    from test_method_iterations import recorded_steps

    steps = recorded_steps(method.optimizers())  # each optimizer's gradients when it steps
    torch.manual_seed(7)
    values = method.train_step([Batch(images, labels, 0)], 4)  # (4 + 1) % 5 == 0: both networks
    assert "G/total" in values and [name for name, _ in steps] == ["discriminator", "generator"]
    torch.manual_seed(7)  # the same draws, in the same order: the target shuffle, then the penalty's mix
    targets = labels[torch.randperm(6)]
    alpha = torch.rand(6, 1, 1, 1)
    adam = {"lr": 1e-4, "betas": (0.5, 0.999)}
    d_grads, g_grads = _official_iteration(
        official_G,
        official_D,
        torch.optim.Adam(official_G.parameters(), **adam),
        torch.optim.Adam(official_D.parameters(), **adam),
        images,
        labels,
        targets,
        alpha,
    )
    for (name, _), grad, expected in zip(D.named_parameters(), steps[0][1], d_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6, msg=f"D {name}")
    for (name, _), grad, expected in zip(G.named_parameters(), steps[1][1], g_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-6, msg=f"G {name}")
    # The official code runs G three times (the fakes twice, then the way back), and G's
    # instance norms update their running statistics each time: a checkpoint holds them.
    for (name, b), expected in zip(G.named_buffers(), official_G.buffers(), strict=True):
        assert torch.equal(b, expected), f"G {name}"


class _WithDropout(torch.nn.Module):
    """A generator whose output depends on random draws: its fakes cannot be reused."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, x, c):
        return torch.nn.functional.dropout(self.generator(x, c), 0.1, self.training)


@pytest.mark.parametrize("stochastic", [False, True])
def test_an_iteration_with_both_updates_runs_g_for_the_fakes_once(stochastic):
    """The official code generates the fakes in D's update and again in G's; mdt reuses the
    first when a second forward could not differ (the test above checks the values)."""
    from mdt_stargan.losses import CycleReconstruction, DomainClassification, GradientPenalty, WassersteinAdversarial
    from mdt_stargan.method import StarGAN

    from mdt.data import Batch

    torch.manual_seed(0)
    G = StarGANGenerator(5, conv_dim=8, residual_blocks=1)
    G = _WithDropout(G) if stochastic else G
    D = StarGANDiscriminator(32, 5, conv_dim=8, layers=4)
    losses = {
        "adversarial": WassersteinAdversarial(1.0),
        "gradient_penalty": GradientPenalty(10.0),
        "classification": DomainClassification(1.0),
        "reconstruction": CycleReconstruction(10.0),
    }
    method = StarGAN(G, D, MultiHot([CELEBA]), losses, iterations=100, image_size=32, d_steps_per_g=5)
    calls = []
    G.register_forward_hook(lambda *_: calls.append(1))
    batch = Batch(torch.rand(4, 3, 32, 32) * 2 - 1, torch.tensor([[1.0, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 0, 0, 0, 0]]), 0)
    method.train_step([batch], 0)
    assert len(calls) == 1  # D's update alone: the fakes
    calls.clear()
    method.train_step([batch], 4)
    assert len(calls) == (3 if stochastic else 2)  # the fakes (once or twice) and the way back
