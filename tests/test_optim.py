"""mdt.optim.adam: torch's Adam fused on a CPU, Adam's update, and a resumed run keeping
the form its checkpoint's optimizer used."""

from __future__ import annotations

import torch

from mdt import checkpoint as ckpt
from mdt.optim import adam


def _adam_by_hand(p, grads, lr, betas, weight_decay, eps=1e-8):
    """Adam (Kingma and Ba 2015, with L2 weight decay as torch's Adam adds it), written out."""
    p, m, v = p.double().clone(), torch.zeros_like(p, dtype=torch.float64), torch.zeros_like(p, dtype=torch.float64)
    for t, grad in enumerate(grads, start=1):
        g = grad.double() + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr * (m / (1 - betas[0] ** t)) / ((v / (1 - betas[1] ** t)).sqrt() + eps)
    return p


def test_adam_is_fused_on_a_cpu_and_takes_adams_steps():
    torch.manual_seed(0)
    start = torch.randn(50, 7)
    grads = [torch.randn(50, 7) for _ in range(4)]
    parameter = torch.nn.Parameter(start.clone())
    optimizer = adam([parameter], 1e-2, (0.5, 0.999), weight_decay=1e-3)
    assert optimizer.defaults["fused"] is True
    for g in grads:
        parameter.grad = g.clone()
        optimizer.step()
    expected = _adam_by_hand(start, grads, 1e-2, (0.5, 0.999), 1e-3).float()
    torch.testing.assert_close(parameter.detach(), expected, rtol=1e-5, atol=1e-6)


def test_a_resumed_optimizer_keeps_the_form_its_checkpoint_used(tmp_path):
    """An optimizer saved before mdt fused Adam (torch's default form) resumes in that form,
    so its arithmetic does not change halfway through a run; a fused one resumes fused."""
    parameter = torch.nn.Parameter(torch.randn(3, 4))
    parameter.grad = torch.randn(3, 4)
    for saved_by, expected in ((torch.optim.Adam([parameter], 1e-4, (0.5, 0.999)), None), (adam([parameter], 1e-4, (0.5, 0.999)), True)):
        saved_by.step()
        path = ckpt.save_model(
            tmp_path / f"{expected}.safetensors",
            networks={"n": {"w": parameter.detach()}},
            step=1,
            recipe="",
            schemas=[],
            training=ckpt.TrainingState(optimizers={"o": saved_by.state_dict()}, method_state={}, streams=[]),
        )
        resumed = adam([torch.nn.Parameter(parameter.detach().clone())], 1e-4, (0.5, 0.999))
        resumed.load_state_dict(ckpt.read(path).training_state().optimizers["o"])
        assert resumed.param_groups[0]["fused"] is expected
        torch.testing.assert_close(resumed.state_dict()["state"][0]["exp_avg"], saved_by.state_dict()["state"][0]["exp_avg"])
