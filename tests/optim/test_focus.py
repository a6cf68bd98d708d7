"""FOCUS with weight decay, by hand: the decay acts on the averaged weights after the signed step, as in the
official code (pytorch-optimizer applies it first, so the matrix compares with it without decay)."""

from __future__ import annotations

import torch

import zij

F64 = torch.float64


def _sign(x):
    return (x > 0) - (x < 0)


def test_two_steps_with_weight_decay_by_hand():
    """f = sum a_i w_i^2 / 2; betas (0.5, 0.5) keep the bias corrections exact, so at step 1 theta_hat = theta_0."""
    a, lr, gamma, wd = (1.0, -2.0), 0.1, 0.3, 0.5
    w = torch.tensor([3.0, -4.0], dtype=F64, requires_grad=True)
    opt = zij.FOCUS([w], lr=lr, betas=(0.5, 0.5), gamma=gamma, weight_decay=wd)
    x, m, pbar = [3.0, -4.0], [0.0, 0.0], [0.0, 0.0]
    for step in (1, 2):
        w.grad = (torch.tensor(a, dtype=F64) * w).detach().clone()
        opt.step()
        g = [ai * xi for ai, xi in zip(a, x)]
        m = [0.5 * mi + 0.5 * gi for mi, gi in zip(m, g)]
        pbar = [0.5 * pi + 0.5 * xi for pi, xi in zip(pbar, x)]
        target = [pi / (1 - 0.5**step) for pi in pbar]
        if step == 1:
            assert target == x
        x = [xi - lr * (_sign(mi) + gamma * _sign(xi - ti)) - lr * wd * ti for xi, mi, ti in zip(x, m, target)]
        torch.testing.assert_close(w.detach(), torch.tensor(x, dtype=F64), rtol=1e-14, atol=1e-14)


def test_gamma_zero_without_decay_is_signum_without_damping():
    """gamma = 0, weight_decay = 0: the step is -lr sign(m) with m a moving average of g, i.e. Signum."""
    w, v = (torch.tensor([1.0, -2.0, 0.5], requires_grad=True) for _ in range(2))
    focus = zij.FOCUS([w], lr=0.01, betas=(0.9, 0.999), gamma=0.0)
    signum = zij.Signum([v], lr=0.01, momentum=0.9)
    for _ in range(20):
        for p, opt in ((w, focus), (v, signum)):
            p.grad = (p**3 - p).detach()
            opt.step()
    assert torch.equal(w, v)
