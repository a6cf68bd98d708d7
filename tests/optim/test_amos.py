"""Amos: the official (elementwise) rule by hand, its options, and the sign of the extra L2.

pytorch-optimizer's Amos is the parity reference for the shared (per-tensor) form; the official code's default,
elementwise slot variables, and its extra L2 term, are checked here.
"""

import torch

import zij


def test_first_two_steps_by_hand():
    # t = 1: v = (1 - beta) g^2, r = (1 - beta) / v = 1 / g^2, gamma = xi^2 r g^2 = xi^2 (b_0 = 0), d = 1, so
    # theta_1 = theta_0 - xi eta sign(g) - (xi^2 / 2 + l2) theta_0 and b_1 = xi^2, per entry.
    xi, eta, l2, beta, c, d = 0.1, 0.5, 0.01, 0.9, 0.25, 0.25
    theta0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g1 = torch.tensor([0.3, 4.0, -0.2], dtype=torch.float64)
    g2 = torch.tensor([-0.1, 1.0, 0.6], dtype=torch.float64)
    p = theta0.clone().requires_grad_()
    opt = zij.Amos([p], lr=xi, eta=eta, extra_l2=l2, beta=beta, c_coef=c, d_coef=d)
    p.grad = g1.clone()
    opt.step()
    theta1 = theta0 - xi * eta * g1.sign() - (xi**2 / 2 + l2) * theta0
    torch.testing.assert_close(p.detach(), theta1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["decay"], torch.full((3,), xi**2, dtype=torch.float64))
    # t = 2: the formulas of the docstring with b_1 = xi^2
    p.grad = g2.clone()
    opt.step()
    v = beta * (1 - beta) * g1**2 + (1 - beta) * g2**2
    r = (1 - beta**2) / v
    b1 = xi**2
    gamma = xi**2 * r * g2**2 / (1 + c * xi**0.5 * b1) ** 0.5
    factor = 1 / (1 + d * (xi * eta) ** 0.5 * b1)
    theta2 = theta1 - factor * (xi * eta * r.sqrt() * g2 + (gamma / 2 + l2) * theta1)
    torch.testing.assert_close(p.detach(), theta2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["decay"], b1 + gamma * (1 + b1), rtol=1e-12, atol=1e-12)


def test_shared_moment_is_one_number_per_tensor():
    p = torch.ones(3, 4, requires_grad=True)
    opt = zij.Amos([p], lr=0.1, shared_moment=True)
    p.grad = torch.randn(3, 4)
    opt.step()
    assert opt.state[p]["exp_avg_sq"].shape == () and opt.state[p]["decay"].shape == ()
    assert "exp_avg" not in opt.state[p]  # no momentum buffer unless asked for


def test_default_eta_from_shape():
    # 0.5 for vectors, sqrt(2 / fan_in) for a (out, in) matrix: the first step moves each entry by xi * eta
    xi = 0.01
    w = torch.zeros(2, 8, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = zij.Amos([w, b], lr=xi)
    w.grad, b.grad = torch.ones(2, 8, dtype=torch.float64), -torch.ones(2, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((2, 8), -xi * 0.5, dtype=torch.float64))
    torch.testing.assert_close(b.detach(), torch.full((2,), xi * 0.5, dtype=torch.float64))


def test_momentum_averages_updates_and_clipping_clips_gradients():
    torch.manual_seed(0)
    grads = [torch.randn(5, dtype=torch.float64) * 3 for _ in range(4)]
    start = torch.randn(5, dtype=torch.float64)
    # momentum: theta_1 = theta_0 + (1 - mu) u_1, u_1 the plain step
    p, q = start.clone().requires_grad_(), start.clone().requires_grad_()
    plain, averaged = zij.Amos([p], lr=0.1, eta=1.0), zij.Amos([q], lr=0.1, eta=1.0, momentum=0.75)
    p.grad, q.grad = grads[0].clone(), grads[0].clone()
    plain.step()
    averaged.step()
    torch.testing.assert_close(q.detach(), start + 0.25 * (p.detach() - start), rtol=1e-12, atol=1e-12)
    # clip_value: the same as feeding the clipped gradients
    p, q = start.clone().requires_grad_(), start.clone().requires_grad_()
    clipped, fed = zij.Amos([p], lr=0.1, eta=1.0, clip_value=1.0), zij.Amos([q], lr=0.1, eta=1.0)
    for g in grads:
        p.grad, q.grad = g.clone(), g.clamp(-1.0, 1.0)
        clipped.step()
        fed.step()
    torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0)
    assert not torch.equal(grads[0].clamp(-1.0, 1.0), grads[0])  # the clipping did act
