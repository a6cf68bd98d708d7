"""M-SVAG: hand-computed shrinkage factors."""

import torch

import zij


def test_golden_values():
    # eta = 1, beta = 0.5, theta_0 = 0.
    # t=1: g = 2: m_hat = 2, v_hat = 4, rho = min(1, 0.9999), s = 0: gamma = 1, theta = -2.
    # t=2: g = 0: m = 0.5, v = 1, correction 0.75: m_hat = 2/3, v_hat = 4/3; rho = 0.5 * 1.25 / (1.5 * 0.75) = 5/9;
    #      s = (4/3 - 4/9) / (4/9) = 2; gamma = (4/9) / (4/9 + 10/9) = 2/7: theta = -2 - (2/7)(2/3) = -2 - 4/21.
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = zij.MSVAG([p], lr=1.0, beta=0.5)
    for g, want in ((2.0, -2.0), (0.0, -2.0 - 4 / 21)):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        assert abs(p.item() - want) < 1e-12


def test_zero_gradient_gives_no_step():
    # 0/0 in the factor counts as 0, so a coordinate that never had a gradient stays put.
    p = torch.tensor([1.0, 2.0], dtype=torch.float64)
    opt = zij.MSVAG([p], lr=1.0)
    p.grad = torch.tensor([0.0, 1.0], dtype=torch.float64)
    opt.step()
    assert p[0].item() == 1.0 and abs(p[1].item() - 1.0) < 1e-12
