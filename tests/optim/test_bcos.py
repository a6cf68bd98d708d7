"""BCOS: mode c (the default) by hand, since pytorch-optimizer's mode c differs from the official code.

pytorch-optimizer builds the conditional estimate v_t from the momentum after its update; the official code
(facebookresearch/bcos) and the paper from m_{t-1}. Modes g and m agree and are compared in the matrix.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij

F64 = torch.float64


def _grad(w, a):
    return [ai * wi for ai, wi in zip(a, w)]


@pytest.mark.parametrize("simple_cond", [False, True])
def test_mode_c_two_steps_by_hand(simple_cond):
    """f = sum a_i w_i^2 / 2: g = a w. Step 1: m_0 = g_1, v_1 = g_1^2 (any estimator), m_1 = g_1."""
    a, lr, beta, eps, wd = (1.0, 3.0), 0.1, 0.8, 1e-6, 0.5
    w = torch.tensor([3.0, -4.0], dtype=F64, requires_grad=True)
    opt = zij.BCOS([w], lr=lr, beta=beta, eps=eps, weight_decay=wd, simple_cond=simple_cond)
    scale = torch.tensor(a, dtype=F64)
    x = [3.0, -4.0]
    m = None
    for step in range(2):
        w.grad = (scale * w).detach().clone()
        opt.step()
        g = _grad(x, a)
        if m is None:
            m = list(g)
        if simple_cond:
            b = 1 - (1 - beta) ** 2
            v = [b * mi**2 + (1 - b) * gi**2 for mi, gi in zip(m, g)]
        else:
            v = [(3 * beta**2 - 2 * beta**3) * mi**2 + (1 - beta) ** 2 * gi**2 + 2 * beta * (1 - beta) ** 2 * mi * gi
                 for mi, gi in zip(m, g)]
        if step == 0:
            assert all(math.isclose(vi, gi**2, rel_tol=1e-12) for vi, gi in zip(v, g))
        m = [beta * mi + (1 - beta) * gi for mi, gi in zip(m, g)]
        x = [(1 - lr * wd) * xi - lr * mi / (math.sqrt(vi) + eps) for xi, mi, vi in zip(x, m, v)]
        torch.testing.assert_close(w.detach(), torch.tensor(x, dtype=F64), rtol=1e-12, atol=1e-12)


def test_mode_c_keeps_no_second_moment_and_mode_g_no_momentum():
    w = torch.ones(3, requires_grad=True)
    for mode, keys in (("c", {"step", "exp_avg"}), ("g", {"step", "exp_avg_sq"}), ("m", {"step", "exp_avg", "exp_avg_sq"})):
        opt = zij.BCOS([w], lr=0.1, mode=mode)
        w.grad = torch.ones(3)
        opt.step()
        assert set(opt.state[w]) == keys
