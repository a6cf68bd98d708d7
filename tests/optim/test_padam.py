"""Padam: hand-computed steps of the official code's rule, with and without the running maximum."""

import torch

import zij


def run(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(p.item())
    return out


def test_golden_values_amsgrad():
    # eta = 1, beta1 = beta2 = 0.5, eps = 0, theta_0 = 1, gradients 2 then 0.
    # p = 1/2: t=1: m = 1, v = 2, v_max = 2, step size sqrt(0.5)/0.5 = sqrt(2), denominator sqrt(2): theta = 0.
    #          t=2: m = 0.5, v = 1, v_max = 2, step size sqrt(0.75)/0.75 = 1.1547005384: theta = -0.5773502692/sqrt(2)
    #          = -0.4082482905; without the maximum the denominator is sqrt(1) = 1: theta = -0.5773502692.
    p = torch.tensor([1.0], dtype=torch.float64)
    got = run(zij.Padam([p], lr=1.0, betas=(0.5, 0.5), partial=0.5, eps=0.0), p, [2.0, 0.0])
    assert abs(got[0]) < 1e-12 and abs(got[1] + 0.4082482905) < 1e-9
    p = torch.tensor([1.0], dtype=torch.float64)
    got = run(zij.Padam([p], lr=1.0, betas=(0.5, 0.5), partial=0.5, eps=0.0, amsgrad=False), p, [2.0, 0.0])
    assert abs(got[1] + 0.5773502692) < 1e-9


def test_partial_power():
    # p = 1/4, one step: denominator sqrt(2)^(1/2) = 2^(1/4) = 1.1892071150; theta = 1 - sqrt(2)/2^(1/4) = 1 - 2^(1/4).
    # With weight decay 0.5 the gradient is 2 + 0.5 * 1 = 2.5: m = 1.25, v = 3.125, theta = 1 - sqrt(2) * 1.25 / 3.125^(1/4).
    p = torch.tensor([1.0], dtype=torch.float64)
    got = run(zij.Padam([p], lr=1.0, betas=(0.5, 0.5), partial=0.25, eps=0.0), p, [2.0])
    assert abs(got[0] - (1 - 2**0.25)) < 1e-12
    p = torch.tensor([1.0], dtype=torch.float64)
    got = run(zij.Padam([p], lr=1.0, betas=(0.5, 0.5), partial=0.25, eps=0.0, weight_decay=0.5), p, [2.0])
    assert abs(got[0] - (1 - 2**0.5 * 1.25 / 3.125**0.25)) < 1e-12


def test_partial_one_half_is_amsgrad():
    # (sqrt(v_max) + eps)^1 with the step-size correction is torch's AMSGrad up to where eps enters.
    ours = torch.tensor([1.0, -2.0], dtype=torch.float64)
    base = ours.clone()
    opt = zij.Padam([ours], lr=0.1, partial=0.5, eps=0.0)
    ref = torch.optim.Adam([base], lr=0.1, amsgrad=True, eps=0.0)
    for g in ([1.0, 2.0], [-3.0, 0.5], [0.25, 1.0], [0.1, -0.1]):
        ours.grad = torch.tensor(g, dtype=torch.float64)
        base.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, base, rtol=1e-10, atol=1e-12)
