"""KATE: hand-computed steps, and the invariance to the gradients' scale that motivates it."""

import math

import torch

import zij


def test_golden_values():
    # eta = 1, kappa = 1, eps = 0, theta_0 = 0.
    # t=1: g = 2: b^2 = 4, m^2 = 4 + 4/4 = 5: theta = -sqrt5 * 2 / 4
    # t=2: g = 1: b^2 = 5, m^2 = 5 + 1 + 1/5 = 6.2: theta -= sqrt(6.2) / 5
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = zij.KATE([p], lr=1.0, delta=1.0, eps=0.0)
    want = -math.sqrt(5) / 2
    for g, step in ((2.0, 0.0), (1.0, math.sqrt(6.2) / 5)):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        want -= step
        assert abs(p.item() - want) < 1e-12


def test_scale_invariance_without_kappa():
    # With kappa = 0 and eps = 0, gradients c * g give steps (1/c) times those of g: m is unchanged, b^2 scales by c^2.
    ps = [torch.zeros(3, dtype=torch.float64) for _ in range(2)]
    opts = [zij.KATE([p], lr=0.1, delta=0.0, eps=0.0) for p in ps]
    grads = [torch.tensor(g, dtype=torch.float64) for g in ([1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [2.0, 0.1, 0.2])]
    for g in grads:
        for p, opt, c in zip(ps, opts, (1.0, 10.0)):
            p.grad = c * g
            opt.step()
    torch.testing.assert_close(ps[1] * 10, ps[0], rtol=1e-12, atol=0)
