"""ApolloDQN (Apollo, the quasi-Newton method): hand-computed steps and the warm-up.

Parity with pytorch_optimizer's ApolloDQN (warm-up 0) runs in test_matrix.py.
"""

import math

import torch

import zij


def test_two_hand_computed_steps():
    # beta = 0.5, eps = 1e-4 (constant rebound: r = 0.01, eps' = eps / r = 0.01), lr = 0.1, no warm-up.
    # t=1: alpha = 1, Delta = g1 = (2, -4), m = (2, -4); d0 = 0 so c = 0.01, d_hat = 0, delta = 0, B = 0;
    #      D = max(0, 0.01) = 0.01, d1 = (200, -400), theta = (1, 2) - 0.1 d1 = (-19, 42).
    # t=2: alpha = 0.5 / 0.75 = 2/3, Delta = g2 - m = (-1, 5), m = (4/3, -2/3);
    #      c = ||d1||_4 + 0.01 = 200 * 17^(1/4) + 0.01, d_hat = d1 / c, v = d_hat^2,
    #      delta = -(alpha / c) sum(Delta d_hat) - 0 = (2/3) (200 + 2000) / c^2, B = delta v (both below 0.01),
    #      D = 0.01, d2 = m / 0.01 = (133.33, -66.67), theta = (-19 - 13.333, 42 + 6.6667).
    p = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ApolloDQN([p], lr=0.1, beta=0.5, eps=1e-4, warmup=0)
    p.grad = torch.tensor([2.0, -4.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-19.0, 42.0], dtype=torch.float64), rtol=1e-12, atol=1e-12)
    p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-19 - 40 / 3, 42 + 20 / 3], dtype=torch.float64),
                               rtol=1e-12, atol=1e-12)
    c = 200 * 17**0.25 + 0.01
    delta = (2 / 3) * 2200 / c**2
    expected_b = torch.tensor([delta * (200 / c) ** 2, delta * (400 / c) ** 2], dtype=torch.float64)
    torch.testing.assert_close(opt.state[p]["approx_hessian"], expected_b, rtol=1e-12, atol=0)
    assert math.isclose(expected_b.max().item(), 0.0086, rel_tol=0.01)  # below the rebound: D = 0.01


def test_secant_condition_holds_after_the_correction():
    # delta_t = -(alpha / c) sum(Delta d_hat) - sum(B_{t-1} v) and B_t = B_{t-1} + delta_t v give
    # sum(B_t v) = (1 - s) sum(B_{t-1} v) + s (-(alpha / c) sum(Delta d_hat)) with s = sum(v^2) = ||d_hat||_4^4:
    # the weak secant condition sum(B_t v) = -(alpha / c) sum(Delta d_hat) up to eps' in c (s = 1 when eps' = 0).
    p = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    opt = zij.ApolloDQN([p], lr=0.05, beta=0.9, warmup=0)
    g = torch.Generator().manual_seed(0)
    for t in range(1, 6):
        previous_d = opt.state[p]["update"].clone() if t > 1 else torch.zeros(5, dtype=torch.float64)
        previous_m = opt.state[p]["exp_avg_grad"].clone() if t > 1 else torch.zeros(5, dtype=torch.float64)
        previous_b = opt.state[p]["approx_hessian"].clone() if t > 1 else torch.zeros(5, dtype=torch.float64)
        grad = torch.randn(5, generator=g, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        alpha = 0.1 / (1 - 0.9**t)
        c = torch.linalg.vector_norm(previous_d, ord=4) + 1e-4 / 0.01
        v = (previous_d / c) ** 2
        secant = -(alpha / c) * ((grad - previous_m) * previous_d / c).sum()
        s = (v**2).sum()
        lhs = (opt.state[p]["approx_hessian"] * v).sum()
        torch.testing.assert_close(lhs, (1 - s) * (previous_b * v).sum() + s * secant, rtol=1e-10, atol=1e-14)
        if t > 1:
            assert 0.99 < s <= 1.0  # ||d||_4 >> eps': the condition holds almost exactly


def test_warmup_is_linear_from_init_lr():
    # eta_t = eta0 + (eta - eta0) min((t - 1) / w, 1): with beta = 0 and a constant gradient the step is
    # eta_t * g / 0.01 on every step (B stays below the rebound for this small gradient).
    lr, init_lr, warmup = 0.1, 0.01, 4
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = zij.ApolloDQN([p], lr=lr, init_lr=init_lr, beta=0.0, warmup=warmup)
    before = 0.0
    for t in range(1, 8):
        p.grad = torch.tensor([1e-4], dtype=torch.float64)
        opt.step()
        eta = init_lr + (lr - init_lr) * min((t - 1) / warmup, 1)
        assert math.isclose(before - p.item(), eta * 1e-4 / 0.01, rel_tol=1e-9), t
        before = p.item()


def test_defaults_follow_the_official_code():
    opt = zij.ApolloDQN([torch.zeros(1, requires_grad=True)], lr=0.2)
    group = opt.param_groups[0]
    assert group["init_lr"] == 0.2 / 1000 and group["weight_decay_type"] == "L2" and group["warmup"] == 500
    opt = zij.ApolloDQN([torch.zeros(1, requires_grad=True)], lr=0.2, rebound="belief")
    assert opt.param_groups[0]["weight_decay_type"] == "decoupled"
