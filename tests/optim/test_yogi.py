"""Yogi (no upstream with the paper's rule: common packages bias-correct): golden values and identities."""

import math

import torch

import zij


def run_with_grads(opt, p, grads):
    """Feed the given gradients one step at a time; return the parameter after each step."""
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().clone())
    return out


def test_golden_values():
    # eta = 0.2, beta1 = 0.5, beta2 = 0.75 (so 1 - beta2 = 0.25), eps = 1, v_0 = m_0 = 0, theta_0 = (1, 2).
    # gradients: coordinate a: 2, 1, -2; coordinate b: -4, 1, 0.
    # a, t=1: m = 0.5 * 2 = 1;  v = 0 - 0.25 * sign(0 - 4) * 4 = 1;  theta = 1 - 0.2 * 1 / (1 + 1) = 0.9
    # a, t=2: m = 0.5 + 0.5 = 1;  v = 1 - 0.25 * sign(1 - 1) * 1 = 1 (sign 0: v unchanged);  theta = 0.9 - 0.1 = 0.8
    # a, t=3: m = 0.5 - 1 = -0.5;  v = 1 - 0.25 * sign(1 - 4) * 4 = 2;
    #         theta = 0.8 + 0.2 * 0.5 / (sqrt(2) + 1) = 0.8 + 0.0414213562 = 0.8414213562
    # b, t=1: m = -2;  v = 0 + 0.25 * 16 = 4;  theta = 2 + 0.2 * 2 / (2 + 1) = 2.1333333333
    # b, t=2: m = -1 + 0.5 = -0.5;  v = 4 - 0.25 * sign(4 - 1) * 1 = 3.75, sqrt(3.75) = 1.9364916731;
    #         theta = 2.1333333333 + 0.1 / 2.9364916731 = 2.1673875760
    # b, t=3: m = -0.25;  v = 3.75 - 0.25 * sign(3.75) * 0 = 3.75;  theta = 2.1673875760 + 0.05 / 2.9364916731 = 2.1844146973
    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Yogi([p], lr=0.2, betas=(0.5, 0.75), eps=1.0)
    got = run_with_grads(opt, p, [[2.0, -4.0], [1.0, 1.0], [-2.0, 0.0]])
    expected = [(0.9, 2.1333333333), (0.8, 2.1673875760), (0.8414213562, 2.1844146973)]
    for have, want in zip(got, expected):
        torch.testing.assert_close(have, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], torch.tensor([2.0, 3.75], dtype=torch.float64))
    assert opt.state[p]["step"] == 3


def test_golden_values_with_weight_decay():
    # lambda = 0.5, eta = 0.2: theta is first scaled by 1 - 0.1 = 0.9, then takes the step of the test above.
    # t=1: theta = 0.9 * 1 - 0.1 = 0.8;  t=2: 0.9 * 0.8 - 0.1 = 0.62;  t=3: 0.9 * 0.62 + 0.0414213562 = 0.5994213562
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Yogi([p], lr=0.2, betas=(0.5, 0.75), eps=1.0, weight_decay=0.5)
    got = run_with_grads(opt, p, [[2.0], [1.0], [-2.0]])
    for have, want in zip(got, (0.8, 0.62, 0.5994213562)):
        assert abs(have.item() - want) < 1e-6


def test_second_moment_at_gradient_scale_stays_put_and_yogi_is_sgd():
    # With v_0 = c^2 and |g_t| = c, sign(v - g^2) = 0 at every step, so v stays c^2; with beta1 = 0,
    # m_t = g_t and Yogi is SGD with learning rate eta / (c + eps).
    c, lr, eps = 3.0, 0.3, 0.5
    ours = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
    base = ours.detach().clone().requires_grad_()
    opt = zij.Yogi([ours], lr=lr, betas=(0.0, 0.9), eps=eps, initial_accumulator=c * c)
    ref = torch.optim.SGD([base], lr=lr / (c + eps))
    signs = [[1, -1, 1], [-1, -1, 1], [1, 1, -1], [1, -1, -1]]
    for s in signs:
        g = torch.tensor(s, dtype=torch.float64) * c
        ours.grad, base.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, base, rtol=1e-12, atol=1e-12)
    assert torch.equal(opt.state[ours]["exp_avg_sq"], torch.full((3,), c * c, dtype=torch.float64))


def test_second_moment_moves_by_exactly_one_minus_beta2_times_g_squared():
    # Yogi's defining change: |v_t - v_{t-1}| = (1 - beta2) g_t^2 whenever v_{t-1} != g_t^2 (Adam would move by
    # (1 - beta2) |v_{t-1} - g_t^2|).
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = zij.Yogi([p], lr=0.1, betas=(0.9, 0.99), initial_accumulator=5.0)
    g = torch.tensor([1.0, -3.0, 0.5, 2.0], dtype=torch.float64)
    p.grad = g
    opt.step()
    v = opt.state[p]["exp_avg_sq"]
    want = 5.0 - 0.01 * torch.sign(5.0 - g**2) * g**2
    torch.testing.assert_close(v, want, rtol=0, atol=1e-15)
    assert math.isclose(v[1].item(), 5.0 + 0.01 * 9.0)
