"""Ranger21: its schedule, its clipping, and one step computed by hand, stable weight decay included.

pytorch-optimizer's Ranger21 is the parity reference (in the registry entry), but it starts its sum of second
moments at 1, so the stable weight decay is checked here against the official code's rule (the sum starts at 0).
"""

import math

import torch

import zij
from zij.first_order.ranger21 import agc, ranger21_lr


def test_schedule_warms_up_and_down():
    # num_iterations = 1000, beta2 = 0.999: ceil(2 / 0.001) = 2000 is over 45% of training, so W = int(0.22 * 1000)
    # = 220; the warm-down starts at int(0.72 * 1000) = 720 and lasts 280 steps.
    p = torch.zeros(3, requires_grad=True)
    group = zij.Ranger21([p], num_iterations=1000, lr=1.0).param_groups[0]
    assert (group["warmup"], group["warmdown_start"], group["warmdown_total"]) == (220, 720, 280)
    kw = dict(warmup=220, warmdown_start=720, warmdown_total=280, min_lr=0.1)
    assert ranger21_lr(1.0, 1, **kw) == 1 / 220
    assert ranger21_lr(1.0, 110, **kw) == 0.5
    assert ranger21_lr(1.0, 220, **kw) == 1.0 and ranger21_lr(1.0, 719, **kw) == 1.0
    assert math.isclose(ranger21_lr(1.0, 720, **kw), 1.0 - 0.9 / 281)
    assert math.isclose(ranger21_lr(1.0, 859, **kw), 1.0 - 0.9 * 140 / 281)
    assert ranger21_lr(1.0, 1000, **kw) == 0.1 and ranger21_lr(1.0, 5000, **kw) == 0.1
    # a short run keeps the beta2 warm-up: 2000 steps is under 45% of 10000
    group = zij.Ranger21([p], num_iterations=10000, lr=1.0).param_groups[0]
    assert group["warmup"] == 2000


def test_adaptive_gradient_clipping_is_per_unit():
    # rows of norm 5 (weights) with c = 0.1: a gradient row may have norm 0.5 at most
    w = torch.tensor([[3.0, 4.0], [0.0, 5.0]], dtype=torch.float64)
    g = torch.tensor([[6.0, 8.0], [0.1, 0.2]], dtype=torch.float64)
    clipped = agc(w, g, clipping=0.1, eps=1e-3)
    torch.testing.assert_close(clipped[0], torch.tensor([0.3, 0.4], dtype=torch.float64))  # norm 10 -> 0.5
    torch.testing.assert_close(clipped[1], g[1])  # norm 0.22 < 0.5: kept


def test_one_step_by_hand_with_stable_decay_and_norm_loss():
    # Two vectors (no centralization for 1-D tensors), t = 1, no warm-up or warm-down, softplus on.
    lr, beta1, beta2, eps, wd, nu, phi = 0.1, 0.9, 0.99, 1e-8, 0.5, 0.01, 1.0
    theta = [torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.tensor([3.0, 0.0, -1.0, 2.0], dtype=torch.float64)]
    grads = [torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64), torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)]
    params = [t.clone().requires_grad_() for t in theta]
    opt = zij.Ranger21(params, num_iterations=100, lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=wd,
                       normloss_factor=nu, pnm_momentum_factor=phi, use_warmup=False, warmdown_active=False,
                       lookahead_mergetime=7)
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()

    # by hand: AGC (c = 0.01 of the vector's norm), then normalization by the (unbiased) std
    hats = []
    for w, g in zip(theta, grads):
        limit = 0.01 * w.norm()
        g = g * (limit / g.norm()) if g.norm() > limit else g
        hats.append(g / (g.std() + 1e-8))
    v = [(1 - beta2) * h**2 for h in hats]
    s = math.sqrt(sum(float((x / (1 - beta2)).sum()) for x in v) / 7)  # over all 7 entries, starting from 0
    for w, h, x, p in zip(theta, hats, v, params):
        w = w * (1 - lr * wd / s)
        w = w * (1 - lr * 2 * nu * (1 - 1 / (w.norm() + eps)))
        denom = torch.nn.functional.softplus((x / (1 - beta2)).sqrt() + eps, beta=50)
        h2 = h / (h.std() + 1e-8)  # normalized a second time, as the official code does
        m = (1 - beta1**2) * h2
        pnm = ((1 + phi) * m - phi * 0) / math.sqrt((1 + beta2) ** 2 + beta2**2)
        expected = w - lr / (1 - beta1) * pnm / denom
        torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-12)


def test_lookahead_blends_every_k_steps():
    # With the norm loss and the decay off, after k = 3 steps the weights are halfway (alpha = 0.5) between
    # their start and the weights the same steps reach without Lookahead.
    torch.manual_seed(0)
    start = torch.randn(4, dtype=torch.float64)
    p = start.clone().requires_grad_()
    q = start.clone().requires_grad_()
    blended = zij.Ranger21([p], num_iterations=100, lr=0.05, normloss_factor=0.0, weight_decay=0.0,
                           lookahead_mergetime=3, use_warmup=False, warmdown_active=False)
    fast = zij.Ranger21([q], num_iterations=100, lr=0.05, normloss_factor=0.0, weight_decay=0.0,
                        lookahead_mergetime=1000, use_warmup=False, warmdown_active=False)
    for _ in range(3):
        p.grad = torch.tensor([0.5, -1.0, 0.25, 2.0], dtype=torch.float64)
        q.grad = p.grad.clone()
        blended.step()
        fast.step()
    torch.testing.assert_close(p.detach(), 0.5 * q.detach() + 0.5 * start, rtol=1e-12, atol=1e-12)
