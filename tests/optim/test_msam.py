"""MSAM (Momentum-SAM): reduction to SGD with momentum, hand-computed steps and the eval/train switch.

No installable package implements MSAM (its official code is a module of a training repository),
so it is checked by (1) rho = 0 giving torch.optim.SGD (momentum, L2 weight decay) bit for bit,
(2) two steps computed by hand on f = (w_1^2 + 2 w_2^2) / 2, including where the gradient is
taken, and (3) eval() and train() moving between the shifted and the unshifted weights.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("MSAM")
F64 = torch.float64


@pytest.mark.parametrize("foreach", [False, True])
def test_rho_zero_is_sgd_with_momentum(foreach):
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.MSAM(ours, lr=0.05, momentum=0.9, weight_decay=0.01, rho=0.0, foreach=foreach), ours, 10)
    train_mlp(ENTRY, torch.optim.SGD(plain_params, lr=0.05, momentum=0.9, weight_decay=0.01), plain_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain_params))


def test_two_hand_computed_steps_and_eval():
    """A = diag(1, 2), lr 0.1, mu 0.9, wd 0.1, rho 0.5. Step 1: no shift yet, g at (3, 4). Step 2: the
    gradient is taken at the stored shifted point; the parameters then hold theta_2 - 0.5 m_2 / |m_2|
    (to rounding: the shift is removed and re-applied at every step)."""
    w = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    opt = zij.MSAM([w], lr=0.1, momentum=0.9, weight_decay=0.1, rho=0.5)
    seen = []

    def closure():
        w.grad = None
        seen.append(tuple(w.detach().tolist()))
        loss = 0.5 * (w[0] ** 2 + 2 * w[1] ** 2)
        loss.backward()
        return loss

    def gradient(x):
        return (x[0] + 0.1 * x[0], 2 * x[1] + 0.1 * x[1])

    theta, shifted = (3.0, 4.0), (3.0, 4.0)
    m = (0.0, 0.0)
    for _ in range(2):
        opt.step(closure)
        assert seen[-1] == pytest.approx(shifted, rel=1e-12, abs=1e-12)
        d = gradient(shifted)
        m = (0.9 * m[0] + d[0], 0.9 * m[1] + d[1])
        theta = (theta[0] - 0.1 * m[0], theta[1] - 0.1 * m[1])
        n = math.hypot(*m)
        shifted = (theta[0] - 0.5 * m[0] / n, theta[1] - 0.5 * m[1] / n)
        torch.testing.assert_close(w.detach(), torch.tensor(shifted, dtype=F64), rtol=1e-12, atol=1e-12)
    opt.eval()
    torch.testing.assert_close(w.detach(), torch.tensor(theta, dtype=F64), rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step(closure)
    opt.train()
    torch.testing.assert_close(w.detach(), torch.tensor(shifted, dtype=F64), rtol=1e-12, atol=1e-12)


def test_norm_is_per_group_over_all_its_parameters():
    """Two tensors in one group share one shift scale: after a step, the shift of (a, b) together
    has length rho."""
    a = torch.tensor([1.0, -2.0], dtype=F64, requires_grad=True)
    b = torch.tensor([0.5, 3.0, 1.0], dtype=F64, requires_grad=True)
    opt = zij.MSAM([a, b], lr=0.1, momentum=0.9, weight_decay=0.0, rho=0.3)
    a.grad, b.grad = torch.tensor([1.0, 2.0], dtype=F64), torch.tensor([3.0, 0.0, -1.0], dtype=F64)
    opt.step()
    shifted = torch.cat([a.detach(), b.detach()])
    opt.eval()
    unshifted = torch.cat([a.detach(), b.detach()])
    assert torch.linalg.vector_norm(unshifted - shifted).item() == pytest.approx(0.3, rel=1e-12)
    opt.eval()  # a second eval() changes nothing
    assert torch.equal(torch.cat([a.detach(), b.detach()]), unshifted)
