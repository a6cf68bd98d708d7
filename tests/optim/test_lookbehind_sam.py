"""Lookbehind-SAM: reductions to its base optimizer and to SAM, hand-computed cycles, and resuming mid-cycle.

No installable package implements Lookbehind-SAM (its official code is a module of a training
repository), so it is checked by (1) k = 1, alpha = 1, rho = 0 giving the base optimizer bit for
bit, (2) k = 1, alpha = 1 giving SAM (up to rounding: the weights are restored by copying them
back, SAM subtracts the perturbation), and (3) whole cycles of k = 2 computed by hand on
f = (w_1^2 + 2 w_2^2) / 2, with a fixed and with the adaptive interpolation factor.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("LookbehindSAM")
F64 = torch.float64


def closure_of(w, a=(1.0, 2.0)):
    scale = torch.tensor(a, dtype=w.dtype)

    def closure():
        w.grad = None
        loss = 0.5 * (scale * w**2).sum()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("base", [(torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), (torch.optim.AdamW, {"lr": 0.01})],
                         ids=["sgd", "adamw"])
def test_one_step_cycles_without_perturbation_are_the_base_optimizer(base):
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.LookbehindSAM(base[0](ours, **base[1]), rho=0.0, k_steps=1, alpha=1.0), ours, 10)
    train_mlp(ENTRY, base[0](plain_params, **base[1]), plain_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain_params))


def test_one_step_cycles_are_sam():
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.LookbehindSAM(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, k_steps=1, alpha=1.0,
                                       eps=1e-12), ours, 10)
    train_mlp(ENTRY, zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05), sam_params, 10)
    for a, b in zip(ours, sam_params):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def grad(x):
    return (x[0], 2 * x[1])


def ascend(x, rho=0.5):
    g = grad(x)
    n = math.hypot(*g)
    return (x[0] + rho * g[0] / n, x[1] + rho * g[1] / n)


def descend(x, h, lr=0.1):
    return (x[0] - lr * h[0], x[1] - lr * h[1])


def cosine(a, b):
    return (a[0] * b[0] + a[1] * b[1]) / (math.hypot(*a) * math.hypot(*b))


@pytest.mark.parametrize("alpha", [0.5, -1], ids=["fixed", "adaptive"])
def test_hand_computed_cycle(alpha):
    """k = 2, SGD lr 0.1, rho 0.5. u_1 = theta + ascent, phi_1 = theta - 0.1 A u_1; the second ascent
    starts at u_1 (not at phi_1); phi_2 = phi_1 - 0.1 A u_2; theta' = theta + a (phi_2 - theta)."""
    w = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    opt = zij.LookbehindSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, k_steps=2, alpha=alpha, eps=0.0)
    theta = (3.0, 4.0)
    u1 = ascend(theta)
    phi1 = descend(theta, grad(u1))
    opt.step(closure_of(w))
    torch.testing.assert_close(w.detach(), torch.tensor(u1, dtype=F64), rtol=1e-14, atol=1e-14)  # the ascent point
    torch.testing.assert_close(opt.state[w]["fast"], torch.tensor(phi1, dtype=F64), rtol=1e-14, atol=1e-14)
    assert opt.count == 1
    u2 = ascend(u1)
    phi2 = descend(phi1, grad(u2))
    a = alpha if alpha != -1 else (1 + cosine((phi1[0] - 3, phi1[1] - 4), (phi2[0] - 3, phi2[1] - 4))) / 2
    expected = (3 + a * (phi2[0] - 3), 4 + a * (phi2[1] - 4))
    opt.step(closure_of(w))
    torch.testing.assert_close(w.detach(), torch.tensor(expected, dtype=F64), rtol=1e-13, atol=1e-13)
    assert opt.count == 0
    assert torch.equal(opt.state[w]["slow"], w.detach()) and torch.equal(opt.state[w]["fast"], w.detach())


def test_adaptive_factor_is_per_tensor():
    """Two tensors whose fast weights turn by different angles get different factors."""
    a = torch.tensor([1.0, 0.0], dtype=F64, requires_grad=True)
    b = torch.tensor([0.0, 1.0], dtype=F64, requires_grad=True)
    opt = zij.LookbehindSAM(torch.optim.SGD([a, b], lr=0.1), rho=0.0, k_steps=2, alpha=-1)
    pushes = [((1.0, 0.0), (0.0, 1.0)), ((0.0, 1.0), (0.0, 1.0))]  # a turns by 45 degrees, b goes straight

    for ga, gb in pushes:
        def closure(ga=ga, gb=gb):
            a.grad, b.grad = torch.tensor(ga, dtype=F64), torch.tensor(gb, dtype=F64)
            return torch.zeros(())
        opt.step(closure)
    factor_a = (1 + 1 / math.sqrt(2)) / 2  # cos(45 degrees)
    torch.testing.assert_close(a.detach(), torch.tensor([1 - 0.1 * factor_a, -0.1 * factor_a], dtype=F64))
    torch.testing.assert_close(b.detach(), torch.tensor([0.0, 1 - 0.2], dtype=F64))


def test_resume_mid_cycle_and_manual_protocol():
    a = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    first = zij.LookbehindSAM(torch.optim.SGD([a], lr=0.05, momentum=0.9), rho=0.1, k_steps=3, alpha=-1)
    second = zij.LookbehindSAM(torch.optim.SGD([b], lr=0.05, momentum=0.9), rho=0.1, k_steps=3, alpha=-1)
    for t in range(8):
        first.step(closure_of(a))
        closure_of(b)()
        second.first_step(zero_grad=True)
        closure_of(b)()
        second.second_step(zero_grad=True)
        if t == 3:  # one step into the second cycle
            c = b.detach().clone().requires_grad_()
            reloaded = zij.LookbehindSAM(torch.optim.SGD([c], lr=0.05, momentum=0.9), rho=0.1)
            reloaded.load_state_dict(second.state_dict())
            assert (reloaded.count, reloaded.k_steps, reloaded.alpha) == (1, 3, -1)
            second, b = reloaded, c
    assert torch.equal(a, b)


@pytest.mark.parametrize("alpha", [-0.5, 1.5])
def test_alpha_outside_unit_interval_and_not_adaptive_is_refused(alpha):
    with pytest.raises(ValueError, match="alpha"):
        zij.LookbehindSAM(torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1), alpha=alpha)
