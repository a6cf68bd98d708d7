"""PNM and AdaPNM: hand-computed steps of the alternating buffers (official code's rules)."""

import math

import torch

import zij


def run(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(p.item())
    return out


def test_pnm_golden_values():
    # eta = 1, beta1 = 0.5 (buffers decay at 0.25), beta0 = 1, noise norm sqrt(2^2 + 1) = sqrt(5); theta_0 = 0.
    # t=1 (buffer A): A = 0.75 * 4 = 3; direction 2 * 3 - 1 * B(0) = 6: theta = -6/sqrt5
    # t=2 (buffer B): B = 3; direction 2 * 3 - A(3) = 3: theta = -9/sqrt5
    # t=3 (buffer A): A = 0.25 * 3 + 0 = 0.75; direction 1.5 - B(3) = -1.5: theta = -7.5/sqrt5
    p = torch.tensor([0.0], dtype=torch.float64)
    got = run(zij.PNM([p], lr=1.0, betas=(0.5, 1.0)), p, [4.0, 4.0, 0.0])
    for have, want in zip(got, (-6, -9, -7.5)):
        assert abs(have - want / math.sqrt(5)) < 1e-12


def test_pnm_without_negative_momentum_is_heavy_ball_on_each_buffer():
    # beta0 = 0: theta moves by lr * m_t with the buffer of this step, which decays at beta1^2.
    p = torch.tensor([0.0], dtype=torch.float64)
    got = run(zij.PNM([p], lr=1.0, betas=(0.5, 0.0)), p, [4.0, 4.0, 0.0])
    for have, want in zip(got, (-3, -6, -6.75)):
        assert abs(have - want) < 1e-12


def test_adapnm_golden_values():
    # eta = 1, beta1 = 0.5, beta2 = 0.5, beta0 = 1, eps = 0, theta_0 = 0, gradients 4, 0.
    # t=1: A = 3, v = 8, u = 8; denominator sqrt5 * sqrt(8 / 0.5) = 4 sqrt5; step 1/(1-0.5) = 2: theta = -2 * 6 / (4 sqrt5)
    # t=2: B = 0, v = 4, u = 8 (the maximum), sqrt(8 / 0.75); direction 2 * 0 - A(3) = -3; step 1/0.75:
    #      theta += (1/0.75) * 3 / (sqrt5 * sqrt(8/0.75)); without amsgrad u = 4.
    p = torch.tensor([0.0], dtype=torch.float64)
    got = run(zij.AdaPNM([p], lr=1.0, betas=(0.5, 0.5, 1.0), eps=0.0), p, [4.0, 0.0])
    first = -12 / (4 * math.sqrt(5))
    assert abs(got[0] - first) < 1e-12
    assert abs(got[1] - (first + 3 / 0.75 / (math.sqrt(5) * math.sqrt(8 / 0.75)))) < 1e-12
    p = torch.tensor([0.0], dtype=torch.float64)
    got = run(zij.AdaPNM([p], lr=1.0, betas=(0.5, 0.5, 1.0), eps=0.0, amsgrad=False), p, [4.0, 0.0])
    assert abs(got[1] - (first + 3 / 0.75 / (math.sqrt(5) * math.sqrt(4 / 0.75)))) < 1e-12
