"""AdaGC by hand: the warm-up's global clipping and running minimum, then per-tensor clipping and its average.

The matrix compares with pytorch-optimizer where the warm-up's global clipping does not act (it takes the global
norm in float32); these steps check that clipping, and the per-tensor one, against values computed here.
"""

from __future__ import annotations

import math

import torch

import zij

F64 = torch.float64


def test_three_steps_by_hand():
    lr, b1, b2, beta, l_abs, l_rel, eps = 0.1, 0.9, 0.999, 0.5, 1.0, 1.5, 1e-8
    a = torch.zeros(2, dtype=F64, requires_grad=True)
    b = torch.zeros(1, dtype=F64, requires_grad=True)
    opt = zij.AdaGC([a, b], lr=lr, betas=(b1, b2), beta=beta, lambda_abs=l_abs, lambda_rel=l_rel, warmup_steps=3,
                    weight_decay=0.0, eps=eps)
    grads = [([3.0, 4.0], [12.0]), ([6.0, 8.0], [5.0]), ([0.3, 0.4], [2.0])]
    x = [[0.0, 0.0], [0.0]]
    m = [[0.0, 0.0], [0.0]]
    v = [[0.0, 0.0], [0.0]]
    gamma = [math.inf, math.inf]
    for t, (ga, gb) in enumerate(grads, start=1):
        a.grad, b.grad = torch.tensor(ga, dtype=F64), torch.tensor(gb, dtype=F64)
        opt.step()
        gs = [ga, gb]
        if t < 3:  # global clipping: all gradients together have norm 13, then sqrt(125)
            total = math.sqrt(sum(gi**2 for g in gs for gi in g))
            clipped = [[gi * min(1.0, l_abs / (total + eps)) for gi in g] for g in gs]
            gamma = [min(c, math.hypot(*g)) for c, g in zip(gamma, clipped)]
        else:  # per tensor: a's norm 0.5 is below 1.5 gamma_a; b's norm 2 is clipped to 1.5 gamma_b
            h = [min(1.0, l_rel * c / math.hypot(*g)) for c, g in zip(gamma, gs)]
            assert h[0] == 1.0 and h[1] < 1.0
            clipped = [[hi * gi for gi in g] for hi, g in zip(h, gs)]
            gamma = [beta * c + (1 - beta) * math.hypot(*g) for c, g in zip(gamma, clipped)]
        for i in range(2):
            for j, gij in enumerate(clipped[i]):
                m[i][j] = b1 * m[i][j] + (1 - b1) * gij
                v[i][j] = b2 * v[i][j] + (1 - b2) * gij**2
                denom = math.sqrt(v[i][j]) / math.sqrt(1 - b2**t) + eps
                x[i][j] -= lr / (1 - b1**t) * m[i][j] / denom
        for p, xi, mi, ci in zip((a, b), x, m, gamma):
            torch.testing.assert_close(p.detach(), torch.tensor(xi, dtype=F64), rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(opt.state[p]["exp_avg"], torch.tensor(mi, dtype=F64), rtol=1e-12, atol=1e-14)
            torch.testing.assert_close(opt.state[p]["gamma"], torch.tensor(ci, dtype=F64), rtol=1e-12, atol=0)


def test_without_clipping_it_is_adamw():
    """Thresholds that never bind: the step is AdamW's (torch's, with its epsilon placement)."""
    w = torch.tensor([1.0, -2.0, 0.5], dtype=F64, requires_grad=True)
    u = w.detach().clone().requires_grad_()
    ours = zij.AdaGC([w], lr=0.01, lambda_abs=1e6, lambda_rel=1e6, warmup_steps=3, weight_decay=0.1)
    theirs = torch.optim.AdamW([u], lr=0.01, weight_decay=0.1)
    for _ in range(10):
        for p, opt in ((w, ours), (u, theirs)):
            p.grad = (p**3 - p).detach()
            opt.step()
    torch.testing.assert_close(w, u, rtol=1e-10, atol=1e-12)
