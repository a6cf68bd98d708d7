"""Adalite, the official SlimTrainer rule (pytorch-optimizer's Adalite is a different algorithm): hand-computed
steps, RMS clipping, the factored state and the momentum."""

import math

import torch

import zij


def step_with(opt, p, g):
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    return p.detach().clone()


def test_golden_values():
    # theta_0 = [[3, 4]] (norm 5), eps = 0, Lambda = 0.01, c = 0.8, eta = 0.1, centring and RMS clipping on.
    # t=1, g = [[2, 0]]: centred by the row mean 1: g~ = [[1, -1]], |g~| = sqrt(2);  beta_1 = 1 - 1 = 0:
    #   u = g~^2 = [[1, 1]], c_1 = [1, 1];  d = [[1, -1]], RMS(d) = 1 (no clipping);
    #   Delta = 5 / sqrt(2) [[1, -1]] + 0.01 ([[3, 4]] - [[0.6, 0.8]]) = [[3.5595339, -3.5035339]];
    #   theta_1 = [[3 - 0.35595339, 4 + 0.35035339]] = [[2.6440466094, 4.3503533906]]
    # t=2, g = [[0, 2]]: g~ = [[-1, 1]];  beta_2 = 1 - 2^-0.8;  u = (1 - beta_2) [1, 1] + beta_2 [1, 1] = [1, 1];
    #   d = [[-1, 1]];  |theta_1| = 5.0908306882;
    #   Delta = 5.0908306882 / sqrt(2) d + 0.01 theta_1 (1 - 1 / 5.0908306882);
    #   theta_2 = [[3.0018980272, 3.9868814939]]
    p = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    opt = zij.Adalite([p], lr=0.1, eps=0.0)
    got = [step_with(opt, p, [[2.0, 0.0]]), step_with(opt, p, [[0.0, 2.0]])]
    want = [[[2.6440466094, 4.3503533906]], [[3.0018980272, 3.9868814939]]]
    for have, expected in zip(got, want):
        torch.testing.assert_close(have, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-9)
    torch.testing.assert_close(opt.state[p]["col"], torch.ones(2, dtype=torch.float64))


def test_rms_clipping():
    # Without centring and Lambda: t=1, g = [[1, 1]]: u = 1, c_1 = [1, 1].  t=2, g = [[10, 10]]:
    # u = (1 - beta_2) 100 + beta_2 = 57.8605686, d = 10 / sqrt(57.86) = 1.3146455 > 1 in every entry, so the RMS clip
    # divides it back to [[1, 1]]: the step is eta |theta| / |g| [[1, 1]].
    # With use_rms=False it is 1.3146455 times that.
    for use_rms, factor in ((True, 1.0), (False, 10 / math.sqrt((2**-0.8) * 100 + (1 - 2**-0.8)))):
        p = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
        opt = zij.Adalite([p], lr=0.1, eps=0.0, Lambda=0.0, centralize=False, use_rms=use_rms)
        first = step_with(opt, p, [[1.0, 1.0]])
        second = step_with(opt, p, [[10.0, 10.0]])
        scale = 0.1 * first.norm().item() / math.sqrt(200.0) * factor
        torch.testing.assert_close(second, first - scale, rtol=0, atol=1e-12)


def test_state_is_one_row_vector_per_matrix():
    matrix = torch.ones(6, 4, dtype=torch.float64, requires_grad=True)
    vector = torch.ones(4, dtype=torch.float64, requires_grad=True)
    opt = zij.Adalite([matrix, vector], lr=0.01)
    matrix.grad, vector.grad = torch.randn(6, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    opt.step()
    assert opt.state[matrix]["col"].shape == (4,) and "v" not in opt.state[matrix]
    assert opt.state[vector]["v"].shape == (4,)


def test_momentum_averages_the_step():
    # With momentum the first step is (1 - 0.9) times the plain first step (m_0 = 0).
    g = [[2.0, 0.0]]
    plain = torch.tensor([[3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    with_m = plain.detach().clone().requires_grad_()
    a = step_with(zij.Adalite([plain], lr=0.1), plain, g)
    b = step_with(zij.Adalite([with_m], lr=0.1, momentum=True), with_m, g)
    start = torch.tensor([[3.0, 4.0]], dtype=torch.float64)
    torch.testing.assert_close(b - start, 0.1 * (a - start), rtol=1e-12, atol=1e-15)


def test_zero_weights_take_the_normalized_step():
    # |theta| = 0: no norm rescaling and no Lambda term, the step is eta d.
    # Centring [[2, 0]] gives [[1, -1]], and d equals it.
    p = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.Adalite([p], lr=0.1, eps=0.0)
    got = step_with(opt, p, [[2.0, 0.0]])
    torch.testing.assert_close(got, torch.tensor([[-0.1, 0.1]], dtype=torch.float64), rtol=0, atol=1e-15)
