"""AdaNorm: hand-computed steps, with the first moment's gradient raised to the average norm."""

import math

import torch

import zij


def test_golden_values():
    # eta = 1, beta1 = 0, beta2 = 0.5, gamma = 0.5, eps = 0, theta_0 = 0.
    # t=1: g = 4: e = 2 < 4, s = 4, m = 4; v = 8, v_hat = 16: theta = -4 / 4 = -1
    # t=2: g = 1: e = 1 + 0.5 = 1.5 > 1, s = 1.5 g = 1.5, m = 1.5; v = 4 + 0.5 = 4.5, v_hat = 6: theta = -1 - 1.5 / sqrt6
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = zij.AdaNorm([p], lr=1.0, betas=(0.0, 0.5), eps=0.0, gamma=0.5)
    for g, want in ((4.0, -1.0), (1.0, -1.0 - 1.5 / math.sqrt(6))):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        assert abs(p.item() - want) < 1e-12
    assert abs(opt.state[p]["exp_grad_norm"].item() - 1.5) < 1e-12


def test_eps_enters_the_stored_second_moment():
    # eps = 1, beta1 = 0, beta2 = 0.5, g = 2, eta = 1: v = 0.5 * 4 + 1 = 3, v_hat = 6: theta = -2 / (sqrt6 + 1).
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = zij.AdaNorm([p], lr=1.0, betas=(0.0, 0.5), eps=1.0)
    p.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
    assert abs(p.item() + 2 / (math.sqrt(6) + 1)) < 1e-12
