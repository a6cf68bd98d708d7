"""VaSSO: reductions to its base optimizer and to SAM, and hand-computed steps.

No installable package implements VaSSO (its official code is a training repository), so it is
checked by (1) rho = 0 giving the base optimizer bit for bit, (2) theta = 1 (the average is the
current gradient) giving SAM bit for bit, and (3) two steps computed by hand on
f = (w_1^2 + 2 w_2^2) / 2, where the average and the gradient point in different directions.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("VaSSO")
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
def test_rho_zero_is_the_base_optimizer(base):
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.VaSSO(base[0](ours, **base[1]), rho=0.0, theta=0.4), ours, 10)
    train_mlp(ENTRY, base[0](plain_params, **base[1]), plain_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain_params))


def test_theta_one_is_sam():
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.VaSSO(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, theta=1.0, eps=1e-12), ours, 10)
    train_mlp(ENTRY, zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05), sam_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, sam_params))


def test_two_hand_computed_steps():
    """A = diag(1, 2), w = (3, 4), SGD lr 0.1, rho 0.5, theta 0.5. Step 1: d = g = (3, 8). Step 2:
    d = (d + A w_1) / 2, which is not parallel to the new gradient."""
    w = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    opt = zij.VaSSO(torch.optim.SGD([w], lr=0.1), rho=0.5, theta=0.5, eps=0.0)

    def grad(x):
        return (x[0], 2 * x[1])

    def step(x, d):
        n = math.hypot(*d)
        perturbed = (x[0] + 0.5 * d[0] / n, x[1] + 0.5 * d[1] / n)
        h = grad(perturbed)
        return (x[0] - 0.1 * h[0], x[1] - 0.1 * h[1])

    d = (3.0, 8.0)
    w1 = step((3.0, 4.0), d)
    opt.step(closure_of(w))
    torch.testing.assert_close(w.detach(), torch.tensor(w1, dtype=F64), rtol=1e-13, atol=1e-13)
    g1 = grad(w1)
    d = (0.5 * d[0] + 0.5 * g1[0], 0.5 * d[1] + 0.5 * g1[1])
    w2 = step(w1, d)
    opt.step(closure_of(w))
    torch.testing.assert_close(w.detach(), torch.tensor(w2, dtype=F64), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(opt.state[w]["d"], torch.tensor(d, dtype=F64), rtol=1e-13, atol=1e-13)


def test_average_survives_state_dict_and_manual_protocol_equals_step():
    a = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    first = zij.VaSSO(torch.optim.SGD([a], lr=0.05, momentum=0.9), rho=0.2, theta=0.3)
    second = zij.VaSSO(torch.optim.SGD([b], lr=0.05, momentum=0.9), rho=0.2, theta=0.3)
    for t in range(6):
        first.step(closure_of(a))
        closure_of(b)()
        second.first_step(zero_grad=True)
        closure_of(b)()
        second.second_step(zero_grad=True)
        if t == 2:
            c = b.detach().clone().requires_grad_()
            reloaded = zij.VaSSO(torch.optim.SGD([c], lr=0.05, momentum=0.9), rho=0.2, theta=0.3)
            reloaded.load_state_dict(second.state_dict())
            assert reloaded.theta == 0.3 and torch.equal(reloaded.state[c]["d"], second.state[b]["d"])
            second, b = reloaded, c
    assert torch.equal(a, b)


@pytest.mark.parametrize("theta", [-0.1, 1.1])
def test_theta_outside_unit_interval_is_refused(theta):
    with pytest.raises(ValueError, match="theta"):
        zij.VaSSO(torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1), theta=theta)
