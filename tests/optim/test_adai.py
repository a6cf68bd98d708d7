"""Adai: a hand-computed step, and the mean of the second moment taken over all parameters."""

import torch

import zij


def test_golden_values():
    # eta = 1, beta0 = 0.5, beta2 = 0.5, eps = 0.1; two parameters a = (1), b = (2); gradients a: 2, b: 0 then a: 1, b: 1.
    # t=1: v_a = 2, v_b = 0; v_hat = v / 0.5 = (4, 0), mean 2; beta1_a = clip(1 - 0.5 * 2, 0, 0.9) = 0, beta1_b = 0.9.
    #      m_a = 2, prod_a = 0: theta_a = 1 - 2 / 1 = -1;  m_b = 0: theta_b = 2 (prod_b = 0.9).
    # t=2: v_a = 1 + 0.5 = 1.5, v_b = 0.5; bias correction 0.75: v_hat = (2, 2/3), mean 4/3;
    #      beta1_a = 1 - 0.5 * 1.5 = 0.25, beta1_b = 1 - 0.5 * 0.5 = 0.75.
    #      m_a = 0.25 * 2 + 0.75 * 1 = 1.25, prod_a = 0: theta_a = -1 - 1.25 = -2.25.
    #      m_b = 0.75 * 0 + 0.25 * 1 = 0.25, prod_b = 0.675: theta_b = 2 - 0.25 / 0.325 = 1.2307692308.
    a = torch.tensor([1.0], dtype=torch.float64)
    b = torch.tensor([2.0], dtype=torch.float64)
    opt = zij.Adai([{"params": [a]}, {"params": [b]}], lr=1.0, betas=(0.5, 0.5), eps=0.1)
    for ga, gb, want_a, want_b in ((2.0, 0.0, -1.0, 2.0), (1.0, 1.0, -2.25, 1.2307692308)):
        a.grad = torch.tensor([ga], dtype=torch.float64)
        b.grad = torch.tensor([gb], dtype=torch.float64)
        opt.step()
        assert abs(a.item() - want_a) < 1e-9 and abs(b.item() - want_b) < 1e-9
    torch.testing.assert_close(opt.state[b]["beta1_prod"], torch.tensor([0.675], dtype=torch.float64))
