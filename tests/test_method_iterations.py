"""Each method's whole training iteration against an independent definition of it.

The reference loops below are written out here from the papers and the official code's
semantics (clovaai/stargan-v2 ``core/solver.py``, junyanz/pytorch-CycleGAN-and-pix2pix
``models/cycle_gan_model.py``, albertpumarola/GANimation ``models/ganimation.py``), with
the same networks (deep copies), the same random draws in the same order and
``torch.optim.Adam``. Gradients are compared at every optimizer step, before it is taken,
and the logged losses against the reference's; the weights after the iteration follow.
StarGAN v1's iteration is checked the same way in tests/test_stargan.py.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from mdt_labels.encoders import MultiHot, OneHot

from mdt.data import Batch
from mdt.labels import LabelSchema


def rounding_tolerance(expected: torch.Tensor) -> float:
    """How far two sides' values may differ by float rounding alone: after a few Adam
    steps (torch's fused form in mdt, its plain form here) the weights differ in the last
    bits, and so do gradients, by about 1e-5 of the tensor's largest entry. A wrong loss
    term moves them by far more."""
    return max(1e-6, 2e-5 * float(expected.abs().max()))


def assert_near(a: torch.Tensor, b: torch.Tensor, msg: str) -> None:
    a, b = a.detach(), b.detach()
    torch.testing.assert_close(a, b, rtol=1e-4, atol=rounding_tolerance(b), msg=msg)


def recorded_steps(optimizers: dict[str, torch.optim.Optimizer]) -> list[tuple[str, list[torch.Tensor | None]]]:
    """Every ``step()`` of these optimizers, in order: (name, each parameter's gradient)."""
    steps = []
    for name, optimizer in optimizers.items():

        def record(opt, args, kwargs, name=name):
            steps.append((name, [None if p.grad is None else p.grad.clone() for g in opt.param_groups for p in g["params"]]))

        optimizer.register_step_pre_hook(record)
    return steps


def recorded_weights(optimizers: dict[str, torch.optim.Optimizer]) -> list[list[torch.Tensor]]:
    """Every parameter's value just after each ``step()`` of these optimizers, in order."""
    after = []
    for optimizer in optimizers.values():
        optimizer.register_step_post_hook(
            lambda opt, args, kwargs: after.append([p.detach().clone() for g in opt.param_groups for p in g["params"]])
        )
    return after


def take_ours_where_undetermined(ours_after: list[list[torch.Tensor]]):
    """A hook for a reference's k-th optimizer step: entries whose effective gradient (the
    gradient plus weight decay's pull) is within rounding of zero take our value.

    Adam's first steps move an entry by about lr * g / (|g| + eps): nearly ±lr whatever
    g's size, so where g is rounding noise the step's sign is too. Such entries are not
    only biases before a normalisation (true gradient 0) but any weight whose gradient
    weight decay happens to cancel; one of them (g = 1.7e-5 against a pull of 1e-4 x
    0.172) moved the next update's gradients by 2% and failed the comparison on one CPU
    and not another. The test cannot tell these steps' right sign, so it does not ask:
    both sides go on from the same weights, and every other entry is still compared."""

    def settle(k: int, optimizer: torch.optim.Optimizer, grads: list[torch.Tensor | None], before: list[torch.Tensor]) -> None:
        decay = optimizer.param_groups[0]["weight_decay"]
        params = [p for g in optimizer.param_groups for p in g["params"]]
        with torch.no_grad():
            for p, grad, start, mine in zip(params, grads, before, ours_after[k], strict=True):
                if grad is not None:
                    undetermined = (grad + decay * start).abs() <= rounding_tolerance(grad)
                    p[undetermined] = mine[undetermined]

    return settle


def assert_same_steps(ours, theirs) -> None:
    assert [name for name, _ in ours] == [name for name, _ in theirs]
    for k, ((name, mine), (_, expected)) in enumerate(zip(ours, theirs, strict=True)):
        assert len(mine) == len(expected)
        for i, (a, b) in enumerate(zip(mine, expected, strict=True)):
            assert (a is None) == (b is None), f"step {k} ({name}), parameter {i}: gradient present in one only"
            if a is not None:
                assert_near(a, b, f"step {k} ({name}), parameter {i}")


def assert_same_weights(ours: torch.nn.Module, theirs: torch.nn.Module, what: str) -> None:
    """The weights (and buffers) after the iteration."""
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items(), strict=True):
        assert_near(a, b, f"{what} {name}")


# ---------------------------------------------------------------- StarGAN v2

DOMAINS = LabelSchema("animals", ("cat", "dog", "wild"), categorical=True)
V2_WEIGHTS = {"r1": 1.5, "style": 0.7, "diversity": 2.0, "cycle": 1.3}  # not 1, so that each weight is seen
DIVERSITY_DECAY = 10


def v2_networks():
    from mdt_stargan_v2.networks import MappingNetwork, StarGANv2Discriminator, StarGANv2Generator, StyleEncoder

    torch.manual_seed(0)
    return {
        "generator": StarGANv2Generator(16, style_dim=8, base_channels=8, max_channels=16),
        "discriminator": StarGANv2Discriminator(16, 3, base_channels=8, max_channels=16),
        "mapping_network": MappingNetwork(3, latent_dim=4, style_dim=8, hidden=16),
        "style_encoder": StyleEncoder(16, 3, style_dim=8, base_channels=8, max_channels=16),
    }


def v2_method(networks):
    from mdt_stargan.losses import CycleReconstruction
    from mdt_stargan_v2.losses import DiversitySensitive, NonSaturatingAdversarial, R1Penalty, StyleReconstruction
    from mdt_stargan_v2.method import StarGANv2

    losses = {
        "adversarial": NonSaturatingAdversarial(1.0),
        "r1": R1Penalty(V2_WEIGHTS["r1"]),
        "style": StyleReconstruction(V2_WEIGHTS["style"]),
        "diversity": DiversitySensitive(V2_WEIGHTS["diversity"], decay_iterations=DIVERSITY_DECAY),
        "cycle": CycleReconstruction(V2_WEIGHTS["cycle"]),
    }
    return StarGANv2(label_encoder=OneHot([DOMAINS]), losses=losses, image_size=16, lr=1e-3, lr_mapping_network=1e-4, **networks)


def official_v2_iteration(nets, x_real, y_org, y_trg, z, z2, x_ref, x_ref2, step, settle):
    """StarGAN v2's iteration as its solver writes it: two discriminator updates (styles from
    z, then from a reference), two generator updates (the latent one also steps the mapping
    network and the style encoder), then the moving averages. Returns every update's
    gradients and losses; ``settle`` is called after each optimizer step."""
    G, D, F_, E = nets["generator"], nets["discriminator"], nets["mapping_network"], nets["style_encoder"]
    adam = {"betas": (0.0, 0.99), "weight_decay": 1e-4}
    optims = {
        "generator": torch.optim.Adam(G.parameters(), 1e-3, **adam),
        "mapping_network": torch.optim.Adam(F_.parameters(), 1e-4, **adam),
        "style_encoder": torch.optim.Adam(E.parameters(), 1e-3, **adam),
        "discriminator": torch.optim.Adam(D.parameters(), 1e-3, **adam),
    }
    lambda_ds = V2_WEIGHTS["diversity"] * (1 - step / DIVERSITY_DECAY)  # decremented after every iteration
    rows = torch.arange(x_real.shape[0])
    steps, losses = [], {}

    def adv(logits, target):
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def d_loss(style_of):
        x = x_real.detach().requires_grad_(True)
        out = D(x)[rows, y_org]
        (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        reg = 0.5 * grad.pow(2).flatten(1).sum(1).mean()
        with torch.no_grad():
            x_fake = G(x_real, style_of())
        return adv(out, 1) + adv(D(x_fake)[rows, y_trg], 0) + V2_WEIGHTS["r1"] * reg

    def g_loss(style_of, second):
        s_trg = style_of()
        x_fake = G(x_real, s_trg)
        loss_adv = adv(D(x_fake)[rows, y_trg], 1)
        loss_sty = (E(x_fake, y_trg) - s_trg).abs().mean()
        x_fake2 = G(x_real, second()).detach()
        loss_ds = (x_fake - x_fake2).abs().mean()
        x_rec = G(x_fake, E(x_real, y_org))
        loss_cyc = (x_rec - x_real).abs().mean()
        return loss_adv + V2_WEIGHTS["style"] * loss_sty - lambda_ds * loss_ds + V2_WEIGHTS["cycle"] * loss_cyc

    def update(loss, stepped):
        for optimizer in optims.values():
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for name in stepped:
            params = optims[name].param_groups[0]["params"]
            grads, before = [None if p.grad is None else p.grad.clone() for p in params], [p.detach().clone() for p in params]
            steps.append((name, grads))
            optims[name].step()
            settle(len(steps) - 1, optims[name], grads, before)

    for net in nets.values():
        net.train()
    losses["D/latent"] = d_loss(lambda: F_(z, y_trg))
    update(losses["D/latent"], ["discriminator"])
    losses["D/reference"] = d_loss(lambda: E(x_ref, y_trg))
    update(losses["D/reference"], ["discriminator"])
    D.requires_grad_(False)  # its gradients from G's loss are never used
    losses["G/latent"] = g_loss(lambda: F_(z, y_trg), lambda: F_(z2, y_trg))
    update(losses["G/latent"], ["generator", "mapping_network", "style_encoder"])
    losses["G/reference"] = g_loss(lambda: E(x_ref, y_trg), lambda: E(x_ref2, y_trg))
    update(losses["G/reference"], ["generator"])
    D.requires_grad_(True)
    return steps, {k: v.item() for k, v in losses.items()}


def test_a_stargan_v2_iteration_is_the_official_one():
    networks = v2_networks()
    initial = copy.deepcopy(networks)
    method = v2_method(networks)
    theirs = copy.deepcopy(initial)
    generator = torch.Generator().manual_seed(1)
    x_real = torch.rand(4, 3, 16, 16, generator=generator) * 2 - 1
    y_org = torch.tensor([0, 1, 2, 1])
    refs = torch.rand(8, 3, 16, 16, generator=generator) * 2 - 1
    y_trg = torch.tensor([2, 0, 1, 1])  # the reference pairs' domain: each pair shares one
    pair_labels = F.one_hot(torch.cat([y_trg, y_trg]), 3).float()
    step = 3

    ours, ours_after = recorded_steps(method.optimizers()), recorded_weights(method.optimizers())
    torch.manual_seed(7)
    values = method.train_step([Batch(x_real, F.one_hot(y_org, 3).float(), 0, "source"), Batch(refs, pair_labels, 0, "reference")], step)
    torch.manual_seed(7)  # the same draws, in the same order: z, then z2
    z, z2 = torch.randn(4, 4), torch.randn(4, 4)
    settle = take_ours_where_undetermined(ours_after)
    expected_steps, expected_losses = official_v2_iteration(theirs, x_real, y_org, y_trg, z, z2, refs[:4], refs[4:], step, settle)

    assert_same_steps(ours, expected_steps)
    for key, value in expected_losses.items():
        assert values[f"{key}/total"] == pytest.approx(value, rel=1e-5), key
    assert values["weight/diversity"] == pytest.approx(V2_WEIGHTS["diversity"] * (1 - step / DIVERSITY_DECAY))
    for name in ("generator", "discriminator", "mapping_network", "style_encoder"):
        assert_same_weights(getattr(method, name), theirs[name], name)
    # The moving averages: 0.999 of the initial weights, 0.001 of the trained ones.
    for name in ("generator", "mapping_network", "style_encoder"):
        for (key, a), start, trained in zip(
            getattr(method, f"{name}_ema").named_parameters(), initial[name].parameters(), getattr(method, name).parameters(), strict=True
        ):
            assert_near(a, 0.999 * start + 0.001 * trained, f"{name}_ema {key}")


def test_the_diversity_loss_takes_no_gradient_through_its_second_output():
    """The paper's code detaches the second output: only the first is pushed away."""
    from mdt_stargan_v2.losses import diversity_sensitive

    fake = torch.tensor([0.5, -0.25], requires_grad=True)
    other = torch.tensor([0.0, 0.25], requires_grad=True)
    value, terms = diversity_sensitive(fake, other)
    value.backward()
    assert value.item() == pytest.approx(-0.5) and terms["distance"].item() == pytest.approx(0.5)
    assert other.grad is None
    torch.testing.assert_close(fake.grad, torch.tensor([-0.5, 0.5]))  # -d|a - b|/da / n


# ---------------------------------------------------------------- CycleGAN

HAIR = LabelSchema("faces", ("Black_Hair", "Blond_Hair", "Brown_Hair"), (("Black_Hair", "Blond_Hair", "Brown_Hair"),))


def cyclegan_method(domains, pool_size):
    from mdt_cyclegan.losses import CycleConsistency, Identity, LeastSquaresAdversarial
    from mdt_cyclegan.method import CycleGAN
    from mdt_cyclegan.networks import PatchDiscriminator, ResnetGenerator

    torch.manual_seed(0)
    losses = {"adversarial": LeastSquaresAdversarial(1.0), "cycle": CycleConsistency(10.0), "identity": Identity(5.0)}
    return CycleGAN(
        lambda: ResnetGenerator(conv_dim=8, residual_blocks=1),
        lambda: ResnetGenerator(conv_dim=8, residual_blocks=1),
        lambda: PatchDiscriminator(conv_dim=8, layers=2),
        lambda: PatchDiscriminator(conv_dim=8, layers=2),
        MultiHot([HAIR]),
        losses,
        iterations=100,
        image_size=16,
        domains=domains,
        pool_size=pool_size,
    )


def official_cyclegan_iteration(pairs, real, pools, settle):
    """pytorch-CycleGAN-and-pix2pix's ``optimize_parameters`` for each pair (A, B): the
    generators' update (LSGAN, cycle λ 10, identity λ 10 · 0.5), then both discriminators
    on real images and the generators' fakes through the pools, each loss halved. Its
    netD_A judges domain B; here D_b does. All pairs share one Adam per side, as their
    networks are disjoint. ``settle`` is called after each optimizer step."""
    mse = lambda pred, target: F.mse_loss(pred, torch.full_like(pred, target))  # noqa: E731
    generators = [p for pr in pairs for net in (pr["G_ab"], pr["G_ba"]) for p in net.parameters()]
    discriminators = [p for pr in pairs for net in (pr["D_a"], pr["D_b"]) for p in net.parameters()]
    opt_g = torch.optim.Adam(generators, 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminators, 2e-4, betas=(0.5, 0.999))
    steps, losses, fakes = [], [], []
    opt_g.zero_grad()
    for pr in pairs:
        real_a, real_b = real[pr["a"]], real[pr["b"]]
        for net in (pr["D_a"], pr["D_b"]):
            net.requires_grad_(False)
        fake_b, fake_a = pr["G_ab"](real_a), pr["G_ba"](real_b)
        rec_a, rec_b = pr["G_ba"](fake_b), pr["G_ab"](fake_a)
        idt_b, idt_a = pr["G_ab"](real_b), pr["G_ba"](real_a)
        loss_g = (
            mse(pr["D_b"](fake_b), 1)
            + mse(pr["D_a"](fake_a), 1)
            + 10 * ((rec_a - real_a).abs().mean() + (rec_b - real_b).abs().mean())
            + 10 * 0.5 * ((idt_a - real_a).abs().mean() + (idt_b - real_b).abs().mean())
        )
        loss_g.backward()
        losses.append(loss_g.item())
        fakes.append((fake_a.detach(), fake_b.detach()))
        for net in (pr["D_a"], pr["D_b"]):
            net.requires_grad_(True)
    steps.append(("generators", [p.grad.clone() for p in generators]))
    before = [p.detach().clone() for p in generators]
    opt_g.step()
    settle(0, opt_g, steps[0][1], before)
    opt_d.zero_grad()
    for pr, (fake_a, fake_b), (pool_a, pool_b) in zip(pairs, fakes, pools, strict=True):
        shown_a, shown_b = pool_a(fake_a), pool_b(fake_b)
        loss_d_a = 0.5 * (mse(pr["D_a"](real[pr["a"]]), 1) + mse(pr["D_a"](shown_a), 0))
        loss_d_b = 0.5 * (mse(pr["D_b"](real[pr["b"]]), 1) + mse(pr["D_b"](shown_b), 0))
        (loss_d_a + loss_d_b).backward()
        losses.append((loss_d_a + loss_d_b).item())
    steps.append(("discriminators", [p.grad.clone() for p in discriminators]))
    before = [p.detach().clone() for p in discriminators]
    opt_d.step()
    settle(1, opt_d, steps[1][1], before)
    return steps, losses


class OfficialPool:
    """The official ImagePool while it fills (under ``size`` images): every fake as it is."""

    def __init__(self, size):
        self.size, self.images = size, []

    def __call__(self, fakes):
        assert len(self.images) + len(fakes) <= self.size, "the pool is full: its draws are compared elsewhere"
        self.images += list(fakes)
        return fakes


@pytest.mark.parametrize("domains", [("Black_Hair", "Blond_Hair"), ("Black_Hair", "Blond_Hair", "Brown_Hair")])
def test_a_cyclegan_iteration_is_the_official_one_for_every_pair(domains):
    method = cyclegan_method(domains, pool_size=50)
    pairs = [
        {
            "a": p.a,
            "b": p.b,
            "G_ab": copy.deepcopy(p.generator_ab),
            "G_ba": copy.deepcopy(p.generator_ba),
            "D_a": copy.deepcopy(p.discriminator_a),
            "D_b": copy.deepcopy(p.discriminator_b),
        }
        for p in method.pairs
    ]
    generator = torch.Generator().manual_seed(2)
    real = {k: torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1 for k in range(len(domains))}
    batches = [Batch(images, torch.zeros(2, 3), 0, f"domain_{k}") for k, images in real.items()]

    ours, ours_after = recorded_steps(method.optimizers()), recorded_weights(method.optimizers())
    values = method.train_step(batches, 0)
    pools = [(OfficialPool(50), OfficialPool(50)) for _ in pairs]
    expected_steps, expected_losses = official_cyclegan_iteration(pairs, real, pools, take_ours_where_undetermined(ours_after))

    assert_same_steps(ours, expected_steps)
    prefixes = ["" if len(domains) == 2 else f"{domains[p.a]}-{domains[p.b]}/" for p in method.pairs]
    assert [values[f"{p}G/total"] for p in prefixes] == pytest.approx(expected_losses[: len(pairs)], rel=1e-5)
    assert [values[f"{p}D/total"] for p in prefixes] == pytest.approx(expected_losses[len(pairs) :], rel=1e-5)
    for ours_pair, theirs in zip(method.pairs, pairs, strict=True):
        for mine, key in (
            (ours_pair.generator_ab, "G_ab"),
            (ours_pair.generator_ba, "G_ba"),
            (ours_pair.discriminator_a, "D_a"),
            (ours_pair.discriminator_b, "D_b"),
        ):
            assert_same_weights(mine, theirs[key], key)
    assert values["lr"] == 2e-4


def test_cyclegan_learning_rate_is_constant_then_falls_to_zero_over_the_decay_fraction():
    """The paper's 100 + 100 epochs: the rate falls over the last decay_fraction of the run."""
    method = cyclegan_method(("Black_Hair", "Blond_Hair"), pool_size=0)
    method.iterations, method.decay_fraction = 100, 0.25
    batches = [Batch(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3), 0, f"domain_{k}") for k in range(2)]
    rates = [method.train_step(batches, s)["lr"] for s in (0, 74, 75, 80, 99)]
    assert rates == pytest.approx([2e-4, 2e-4, 2e-4, 0.8 * 2e-4, 0.04 * 2e-4])
    assert all(group["lr"] == rates[-1] for opt in method.optimizers().values() for group in opt.param_groups)


# ---------------------------------------------------------------- GANimation

AUS = LabelSchema("faces", ("smile", "brow_raise", "eyes_closed"), continuous=True)
GANIMATION_WEIGHTS = {
    "adversarial": 1.0,
    "gradient_penalty": 10.0,
    "classification": 1.5,
    "reconstruction": 10.0,
    "attention": 0.1,
    "attention_smoothness": 1e-3,
}


def official_ganimation_iteration(G, D, x, y_org, y_trg, alpha):
    """GANimation's updates with the paper's losses: the critic (WGAN-GP) with the squared
    error of its label regression on real images, then the generator: adversarial, the
    regression of its fakes' labels, the cycle back through the attention generator, and
    both attention masks' mean and total variation. Returns D's and G's gradients and both
    totals, from one starting point."""
    w = GANIMATION_WEIGHTS

    def regression(pred, target):  # the squared L2 norm of the error, averaged over the batch
        return ((pred - target) ** 2).sum() / pred.shape[0]

    def tv(mask):
        return (mask[..., :, 1:] - mask[..., :, :-1]).abs().sum() + (mask[..., 1:, :] - mask[..., :-1, :]).abs().sum()

    d_opt = torch.optim.Adam(D.parameters(), 1e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), 1e-4, betas=(0.5, 0.999))
    image, mask, color = G(x, y_trg)
    assert torch.allclose(image, mask * x + (1 - mask) * color)  # the composition itself
    fake = image.detach()
    real_scores, real_labels = D(x)
    fake_scores, _ = D(fake)
    mixed = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mixed)[0].sum(), mixed, create_graph=True)
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    d_loss = (
        w["adversarial"] * (-real_scores.mean() + fake_scores.mean())
        + w["gradient_penalty"] * penalty
        + w["classification"] * regression(real_labels, y_org)
    )
    d_opt.zero_grad()
    d_loss.backward()
    d_grads = [p.grad.clone() for p in D.parameters()]
    d_opt.step()
    D.requires_grad_(False)
    image, mask, _ = G(x, y_trg)
    scores, labels = D(image)
    back, back_mask, _ = G(image, y_org)
    g_loss = (
        w["adversarial"] * -scores.mean()
        + w["classification"] * regression(labels, y_trg)
        + w["reconstruction"] * (back - x).abs().mean()
        + w["attention"] * (mask.mean() + back_mask.mean())
        + w["attention_smoothness"] * (tv(mask) + tv(back_mask))
    )
    g_opt.zero_grad()
    g_loss.backward()
    D.requires_grad_(True)
    return d_grads, [p.grad.clone() for p in G.parameters()], d_loss.item(), g_loss.item()


def test_a_ganimation_iteration_is_the_papers():
    from mdt_ganimation.labels import Continuous
    from mdt_ganimation.losses import AttentionMean, AttentionSmoothness
    from mdt_ganimation.method import GANimation
    from mdt_ganimation.networks import AttentionGenerator
    from mdt_stargan.losses import CycleReconstruction, DomainClassification, GradientPenalty, WassersteinAdversarial
    from mdt_stargan.networks import StarGANDiscriminator

    torch.manual_seed(0)
    G, D = AttentionGenerator(3, conv_dim=8, residual_blocks=1), StarGANDiscriminator(16, 3, conv_dim=8, layers=3)
    theirs_G, theirs_D = copy.deepcopy(G), copy.deepcopy(D)
    w = GANIMATION_WEIGHTS
    losses = {
        "adversarial": WassersteinAdversarial(w["adversarial"]),
        "gradient_penalty": GradientPenalty(w["gradient_penalty"]),
        "classification": DomainClassification(w["classification"]),
        "reconstruction": CycleReconstruction(w["reconstruction"]),
        "attention": AttentionMean(w["attention"]),
        "attention_smoothness": AttentionSmoothness(w["attention_smoothness"]),
    }
    encoder = Continuous([AUS], noise=0.1)
    method = GANimation(G, D, encoder, losses, iterations=10**6, image_size=16, d_steps_per_g=1, decay_iterations=1)
    generator = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 16, 16, generator=generator) * 2 - 1
    labels = torch.rand(4, 3, generator=generator)

    ours_d = recorded_steps({"discriminator": method.d_optimizer})
    torch.manual_seed(5)
    values = method.train_step([Batch(x, labels, 0)], 0)
    torch.manual_seed(5)  # the same draws in the same order: shuffled targets with noise, then the penalty's mix
    order = torch.randperm(4)
    targets = (labels[order] + (torch.rand(4, 3) * 2 - 1) * 0.1).clamp(0, 1)
    alpha = torch.rand(4, 1, 1, 1)
    d_grads, g_grads, d_total, g_total = official_ganimation_iteration(theirs_G, theirs_D, x, labels, targets, alpha)

    assert values["D/total"] == pytest.approx(d_total, rel=1e-5) and values["G/total"] == pytest.approx(g_total, rel=1e-5)
    assert_same_steps(ours_d, [("discriminator", d_grads)])
    for (name, p), expected in zip(G.named_parameters(), g_grads, strict=True):
        assert_near(p.grad, expected, f"G {name}")
