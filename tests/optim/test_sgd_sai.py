"""SGD-SaI: pytorch-optimizer's port where it agrees with the authors' code, and the ratio by hand.

The matrix compares with the authors' package (sgd-sai). pytorch-optimizer's SGDSaI starts its momentum at
zero (the authors' at the first gradient) and does not divide by the std for vectors and single-row matrices;
with momentum 0 on matrices of several rows the two rules are the same.
"""

from __future__ import annotations

import math

import torch

import zij

F64 = torch.float64


def _mlp_matrices():
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(s, generator=g, dtype=F64) * 0.5).requires_grad_() for s in ((8, 4), (3, 8))]


def _loss(params):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g, dtype=F64), torch.randn(16, 3, generator=g, dtype=F64)
    return ((torch.tanh(x @ params[0].t()) @ params[1].t() - y) ** 2).mean()


def test_parity_with_pytorch_optimizer_without_momentum_on_matrices():
    from pytorch_optimizer import SGDSaI

    ours, theirs = _mlp_matrices(), _mlp_matrices()
    a = zij.SGDSaI(ours, lr=1e-3, momentum=0.0, weight_decay=0.1)
    b = SGDSaI(theirs, lr=1e-3, momentum=0.0, weight_decay=0.1)
    for _ in range(50):
        for params, opt in ((ours, a), (theirs, b)):
            opt.zero_grad()
            _loss(params).backward()
            opt.step()
    for x, y in zip(ours, theirs):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-12)


def test_first_steps_by_hand():
    """g_1 = (3, 4, 0): ||g|| = 5, std = sqrt(((3-7/3)^2 + (4-7/3)^2 + (7/3)^2) / 2); the ratio is kept."""
    w = torch.zeros(3, dtype=F64, requires_grad=True)
    opt = zij.SGDSaI([w], lr=0.1, momentum=0.5, weight_decay=0.0, eps=0.0)
    w.grad = torch.tensor([3.0, 4.0, 0.0], dtype=F64)
    opt.step()
    mean = 7 / 3
    std = math.sqrt(((3 - mean) ** 2 + (4 - mean) ** 2 + mean**2) / 2)
    s = 5 / std
    torch.testing.assert_close(opt.state[w]["gsnr"], torch.tensor(s, dtype=F64))
    first = torch.tensor([-0.3 * s, -0.4 * s, 0.0], dtype=F64)
    torch.testing.assert_close(w.detach(), first)
    w.grad = torch.tensor([1.0, 0.0, 10.0], dtype=F64)  # a new gradient does not change the ratio
    opt.step()
    m = torch.tensor([2.0, 2.0, 5.0], dtype=F64)
    torch.testing.assert_close(w.detach(), first - 0.1 * s * m)


def test_single_entry_ratio_is_gradient_over_eps():
    """One entry has no std (taken as 0, as in the authors' code): s = |g_1| / eps."""
    w = torch.tensor(1.0, dtype=F64, requires_grad=True)
    opt = zij.SGDSaI([w], lr=1e-3, weight_decay=0.0, eps=1e-2)
    w.grad = torch.tensor(-2.0, dtype=F64)
    opt.step()
    assert opt.state[w]["gsnr"].item() == 200.0
    torch.testing.assert_close(w.detach(), torch.tensor(1.0 + 1e-3 * 200 * 2, dtype=F64))
