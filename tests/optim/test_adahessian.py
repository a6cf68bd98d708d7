"""AdaHessian: parity with pytorch_optimizer's AdaHessian (driven with create_graph), identities, the protocol.

The shared matrix cannot run the parity: its closures call ``backward()`` without ``create_graph``,
which zij's ``step(closure)`` arranges for itself but the reference does not.
"""

import pytest
import torch

import zij

from _problem_helpers import mlp_loss, mlp_params
from zij._registry import get_entry


def test_parity_with_pytorch_optimizer_adahessian():
    # pytorch_optimizer folds (z * Hz)^2 = (Hz)^2 (z = +-1) into its average, as the official code folds
    # |Hz|^2: the same for the MLP's tensors of order <= 2 (it has no spatial averaging). Both draw one
    # Rademacher probe per parameter from torch's global generator (zij with seed=None), reseeded alike.
    # Its weight decay (weight_decouple=True) multiplies theta by 1 - lr wd before the step, the official
    # code's adds lr wd theta to it: the same up to rounding.
    from pytorch_optimizer import AdaHessian

    entry = get_entry("AdaHessian")
    ours, theirs = mlp_params(entry), mlp_params(entry)
    kwargs = dict(lr=0.05, betas=(0.9, 0.99), eps=1e-4, hessian_power=0.7, weight_decay=1e-3)
    opt = zij.AdaHessian(ours, seed=None, **kwargs)
    ref = AdaHessian(theirs, update_period=1, **kwargs)
    for step in range(30):
        for o, params in ((opt, ours), (ref, theirs)):
            torch.manual_seed(step)
            o.zero_grad()
            mlp_loss(params).backward(create_graph=True)
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_first_step_on_a_diagonal_quadratic_is_a_damped_newton_step():
    # f = 0.5 sum a_i theta_i^2: |Hz| = a whatever the probe; at t = 1 the bias-corrected averages are g and
    # a^2, so theta <- theta - lr a theta / (a + eps) (hessian_power 1).
    lr, eps = 0.5, 1e-3
    scales = torch.tensor([1.0, 4.0, 0.01], dtype=torch.float64)
    theta = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    start = theta.detach().clone()
    opt = zij.AdaHessian([theta], lr=lr, eps=eps)

    def closure():
        opt.zero_grad()
        loss = (0.5 * scales * theta**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(theta.detach(), start - lr * scales * start / (scales + eps), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.state[theta]["exp_hessian_diag_sq"], 0.001 * scales**2, rtol=1e-12, atol=0)


def test_kernels_are_averaged_over_spatial_positions():
    scales = torch.arange(1.0, 1 + 2 * 3 * 2 * 2, dtype=torch.float64).reshape(2, 3, 2, 2)
    w = torch.ones(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.AdaHessian([w], betas=(0.9, 0.5))
    w.grad = None
    (0.5 * scales * w**2).sum().backward(create_graph=True)
    opt.step()
    expected = 0.5 * scales.mean(dim=(2, 3), keepdim=True).expand_as(scales) ** 2
    torch.testing.assert_close(opt.state[w]["exp_hessian_diag_sq"], expected)


def test_step_without_a_graph_raises():
    p = torch.ones(3, requires_grad=True)
    opt = zij.AdaHessian([p])
    (p**2).sum().backward()
    with pytest.raises(RuntimeError, match="Hessian-vector products"):
        opt.step()


def test_seeded_runs_resume_with_the_same_probes():
    entry = get_entry("AdaHessian")
    a, b = mlp_params(entry), mlp_params(entry)
    opt_a = zij.AdaHessian(a, lr=0.01, seed=5)
    opt_b = zij.AdaHessian(b, lr=0.01, seed=5)
    for params, opt, steps in ((a, opt_a, 6), (b, opt_b, 3)):
        for _ in range(steps):
            opt.zero_grad()
            mlp_loss(params).backward(create_graph=True)
            opt.step()
    fresh = zij.AdaHessian(b, lr=0.01, seed=5)
    fresh.load_state_dict(opt_b.state_dict())
    for _ in range(3):
        fresh.zero_grad()
        mlp_loss(b).backward(create_graph=True)
        fresh.step()
    for x, y in zip(a, b):
        assert torch.equal(x, y)
