"""Simplified-AdEMAMix: identities and hand-computed steps (no upstream implementation computes the same rule)."""

import math

import pytest
import torch

import zij
from zij.first_order.simplified_ademamix import beta1_schedule
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("SimplifiedAdEMAMix")


def test_beta1_zero_alpha_zero_is_adamw_with_beta1_zero():
    # beta1 = 0: m_t = g_t; alpha = 0: the numerator is m_t = g_t, which is AdamW's bias-corrected first
    # moment when its beta1 is 0 (1 - 0^t = 1).
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.SimplifiedAdEMAMix(ours, lr=0.01, betas=(0.0, 0.95), alpha=0.0, eps=1e-8, weight_decay=0.1)
    ref = torch.optim.AdamW(theirs, lr=0.01, betas=(0.0, 0.95), eps=1e-8, weight_decay=0.1)
    train_mlp(ENTRY, opt, ours, 20)
    train_mlp(ENTRY, ref, theirs, 20)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_three_steps_by_hand():
    # constant gradient g = (2, -1); lr = 0.1, beta1 = beta2 = 0.5, alpha = 1, eps = 0, weight decay 0.5.
    # v_t / (1 - 0.5^t) = g^2 for a constant gradient, so the denominator is |g| = (2, 1) at every step.
    # step 1: m = g = (2, -1);             numerator m + g = (4, -2);      step (2, -2)
    #         theta = 0.95 * (1, -2) - 0.1 * (2, -2) = (0.75, -1.7)
    # step 2: m = 0.5 m + g = (3, -1.5);   numerator (5, -2.5);            step (2.5, -2.5)
    #         theta = 0.95 * (0.75, -1.7) - 0.1 * (2.5, -2.5) = (0.4625, -1.365)
    # step 3: m = (3.5, -1.75);            numerator (5.5, -2.75);         step (2.75, -2.75)
    #         theta = 0.95 * (0.4625, -1.365) - 0.1 * (2.75, -2.75) = (0.164375, -1.02175)
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SimplifiedAdEMAMix([p], lr=0.1, betas=(0.5, 0.5), alpha=1.0, eps=0.0, weight_decay=0.5)
    expected = [(0.75, -1.7), (0.4625, -1.365), (0.164375, -1.02175)]
    for want in expected:
        p.grad = torch.tensor([2.0, -1.0], dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    assert torch.equal(opt.state[p]["exp_avg"], torch.tensor([3.5, -1.75], dtype=torch.float64))


def test_beta1_warmup_grows_the_half_life_linearly():
    # half-life h(beta) = ln(1/2) / ln(beta): h(0.5) = 1, h(0.5^(1/3)) = 3; halfway the half-life is 2,
    # i.e. beta = 0.5^(1/2).
    final = 0.5 ** (1 / 3)
    assert beta1_schedule(0, final, 0.5, 10) == pytest.approx(0.5, abs=1e-12)
    assert beta1_schedule(5, final, 0.5, 10) == pytest.approx(math.sqrt(0.5), abs=1e-12)
    assert beta1_schedule(10, final, 0.5, 10) == final
    assert beta1_schedule(7, final, 0.5, None) == final


def test_warmup_uses_the_scheduled_beta1():
    # with warm-up T = 4 from 0.5 to 0.5^(1/3), step t = 1 uses beta1_1 = 0.5^(1 / (1 + 2/4)) = 0.5^(2/3)
    # (half-life 1 + (3 - 1) * 1/4 = 1.5): after two steps with gradient 1, m = beta1_2 * 1 + 1.
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = zij.SimplifiedAdEMAMix([p], lr=0.0, betas=(0.5 ** (1 / 3), 0.9), beta1_warmup=4, min_beta1=0.5)
    for _ in range(2):
        p.grad = torch.ones(1, dtype=torch.float64)
        opt.step()
    beta1_2 = 0.5 ** (1 / 2)  # t = 2: half-life 1 + 2 * 2/4 = 2
    assert opt.state[p]["exp_avg"].item() == pytest.approx(beta1_2 * 1.0 + 1.0, abs=1e-12)
