"""Sophia-H: parity with pytorch_optimizer's SophiaH (driven with create_graph), the closure protocol, hand values.

The shared matrix cannot run the parity: its closures call ``backward()`` without ``create_graph``,
which zij's ``step(closure)`` arranges for itself but the reference does not.
"""

import pytest
import torch

import zij

from _problem_helpers import mlp_loss, mlp_params
from zij._registry import get_entry


def test_parity_with_pytorch_optimizer_sophiah():
    # SophiaH steps lr' clip(m / max(h, eps'), p) with weight decay lr' wd' theta; zij steps
    # lr clip(m / max(rho h, eps), 1) with lr wd theta: the same with rho = p, lr = lr' p,
    # eps = p eps', wd = wd' / p. Both draw one Gaussian probe per parameter from torch's global
    # generator (zij with seed=None), in parameter order, reseeded identically before each step.
    from pytorch_optimizer import SophiaH

    entry = get_entry("Sophia")
    lr_ref, p_clip, eps_ref, wd_ref, k = 0.05, 0.02, 1e-12, 1e-3, 3
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = zij.Sophia(ours, lr=lr_ref * p_clip, betas=(0.9, 0.95), rho=p_clip, eps=p_clip * eps_ref,
                     weight_decay=wd_ref / p_clip, k=k, seed=None)
    ref = SophiaH(theirs, lr=lr_ref, betas=(0.9, 0.95), p=p_clip, eps=eps_ref, weight_decay=wd_ref, update_period=k)
    for step in range(30):
        for o, params in ((opt, ours), (ref, theirs)):
            torch.manual_seed(step)
            o.zero_grad()
            mlp_loss(params).backward(create_graph=True)
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_closure_with_plain_backward_equals_create_graph_by_hand():
    entry = get_entry("Sophia")
    a, b = mlp_params(entry), mlp_params(entry)
    opt_a = zij.Sophia(a, lr=0.01, k=2, seed=3)
    opt_b = zij.Sophia(b, lr=0.01, k=2, seed=3)

    def closure():
        opt_a.zero_grad()
        loss = mlp_loss(a)
        loss.backward()
        return loss

    for _ in range(5):
        opt_a.step(closure)
        opt_b.zero_grad()
        mlp_loss(b).backward(create_graph=True)
        opt_b.step()
        assert all(p.grad.grad_fn is None for p in a + b), "gradients are detached after the product"
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_step_without_a_graph_raises_on_estimate_steps():
    p = torch.ones(3, requires_grad=True)
    opt = zij.Sophia([p], k=2)
    (p**2).sum().backward()
    with pytest.raises(RuntimeError, match="Hessian-vector products"):
        opt.step()


def test_hand_computed_step_on_a_diagonal_quadratic():
    # f = 0.5 sum a_i theta_i^2: g = a theta, H = diag(a), h_hat = u^2 a with u the seeded probe.
    # t = 1: m = (1 - b1) g, h = (1 - b2) u^2 a, theta <- theta - lr clip(m / max(rho h, eps), 1).
    lr, b1, b2, rho, eps = 0.1, 0.9, 0.99, 0.5, 1e-12
    scales = torch.tensor([1.0, 4.0, 0.01], dtype=torch.float64)
    theta = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    start = theta.detach().clone()
    opt = zij.Sophia([theta], lr=lr, betas=(b1, b2), rho=rho, eps=eps, weight_decay=0.0, seed=7)
    opt.step(lambda: (opt.zero_grad(), (0.5 * scales * theta**2).sum().backward())[0])
    u = torch.randn(3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    m = (1 - b1) * scales * start
    h = (1 - b2) * u**2 * scales
    expected = start - lr * (m / torch.clamp(rho * h, min=eps)).clamp(-1, 1)
    torch.testing.assert_close(theta.detach(), expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(opt.state[theta]["hessian"], h, rtol=1e-12, atol=0)


def test_estimate_is_kept_between_refreshes():
    theta = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Sophia([theta], lr=0.01, k=3)
    seen = []
    for _ in range(6):
        opt.zero_grad()
        (theta**4).sum().backward(create_graph=True)
        opt.step()
        seen.append(opt.state[theta]["hessian"].clone())
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[1], seen[2])
    assert not torch.equal(seen[2], seen[3]) and torch.equal(seen[3], seen[5])
