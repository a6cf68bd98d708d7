"""SPAM (parity with pytorch-optimizer in the matrix): hand-computed steps and identities."""

import math

import torch

from zij.memory_efficient.spam import SPAM, spam_warmup


def run_with_grads(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().clone())
    return out


def test_golden_values_with_clipping():
    # lr = 1, beta1 = beta2 = 0.5 (so 1 - b^t = 0.5, 0.75, 0.875), eps = 0, tau = 4, N_a = 2, no reset; theta_0 = 0.
    # t=1: g = 1 (no clipping yet: t mod gap = 1 < 2): m = 0.5, v = 0.5;
    #      step = sqrt(0.5) / 0.5 * 0.5 / sqrt(0.5) = 1
    # t=2: g = 10, g^2 = 100 > tau v = 2: clipped to sqrt(2); m = 0.25 + 0.5 sqrt(2) = 0.9571068,
    #      v = 0.25 + 0.5 * 2 = 1.25; step = sqrt(0.75) / 0.75 * 0.9571068 / sqrt(1.25) = 1.1547005 * 0.8560623 = 0.9884956
    # t=3: g = -1, g^2 = 1 < tau v = 5: kept; m = 0.4785534 - 0.5 = -0.0214466, v = 0.625 + 0.5 = 1.125;
    #      step = sqrt(0.875) / 0.875 * (-0.0214466) / sqrt(1.125) = 1.0690450 * (-0.0202199) = -0.0216162
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = SPAM([p], lr=1.0, betas=(0.5, 0.5), eps=0.0, threshold=4.0, grad_accu_steps=2, update_proj_gap=100)
    got = run_with_grads(opt, p, [[1.0], [10.0], [-1.0]])
    steps = [1.0, 0.9884956, -0.0216162]
    theta = 0.0
    for have, step in zip(got, steps):
        theta -= step
        assert abs(have.item() - theta) < 1e-6
    assert abs(opt.state[p]["exp_avg_sq"].item() - 1.125) < 1e-12


def test_reset_restarts_the_moments_and_warms_up():
    # gap = 3: at t = 3 both moments restart from zero, then the step is scaled by the warm-up factor.
    p = torch.tensor([1.0], dtype=torch.float64)
    opt = SPAM([p], lr=0.1, betas=(0.9, 0.99), eps=0.0, threshold=0.0, update_proj_gap=3, warmup_epoch=2)
    before = run_with_grads(opt, p, [[5.0], [-3.0]])[-1].item()
    after = run_with_grads(opt, p, [[2.0]])[-1].item()
    state = opt.state[p]
    assert abs(state["exp_avg"].item() - 0.1 * 2.0) < 1e-12 and abs(state["exp_avg_sq"].item() - 0.01 * 4.0) < 1e-12
    # c = 0 at the reset step: factor 1 - 0.99 * (1 + cos(pi / 3)) / 2 = 1 - 0.7425 = 0.2575
    factor = 0.2575
    expected = before - 0.1 * factor * math.sqrt(1 - 0.99**3) / (1 - 0.9**3) * 0.2 / 0.2
    assert abs(after - expected) < 1e-12


def test_warmup_factor():
    assert spam_warmup(7, 10, 5) == 1.0  # before the first reset: no warm-up
    assert abs(spam_warmup(10, 10, 1) - 0.505) < 1e-12  # W = 1: 1 - 0.99 (1 + cos(pi / 2)) / 2
    values = [spam_warmup(t, 10, 5) for t in range(10, 16)]
    assert all(a < b for a, b in zip(values, values[1:])) and values[-1] == 1.0 and values[0] > 0.01


def test_without_clipping_and_resets_equals_adam_without_eps():
    # SPAM's step sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt v + eps) is Adam's with eps = 0.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=g, dtype=torch.float64)
    b = a.clone()
    ours = SPAM([a], lr=0.01, eps=0.0, threshold=0.0, update_proj_gap=10**9)
    ref = torch.optim.Adam([b], lr=0.01, eps=0.0)
    for _ in range(30):
        grad = torch.randn(3, 4, generator=g, dtype=torch.float64)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_clipping_bounds_the_gradient_by_the_second_moment():
    p = torch.zeros(5, dtype=torch.float64)
    opt = SPAM([p], lr=0.0, threshold=9.0, grad_accu_steps=1, update_proj_gap=100)
    p.grad = torch.ones(5, dtype=torch.float64)
    opt.step()  # t = 1: v = 0 and clipping is on (t mod gap = 1 >= 1): every entry is clipped to 0
    assert torch.all(opt.state[p]["exp_avg_sq"] == 0)
    opt = SPAM([p], lr=0.0, threshold=9.0, grad_accu_steps=2, update_proj_gap=100)
    run_with_grads(opt, p, [[1.0] * 5, [1.0, -2.0, 100.0, -100.0, 0.5]])
    v1 = 0.001  # after t = 1: (1 - 0.999) * 1
    limit = math.sqrt(9.0 * v1)
    expected_g = torch.tensor([limit, -limit, limit, -limit, limit], dtype=torch.float64)
    expected_v = 0.999 * v1 + 0.001 * expected_g**2
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], expected_v, rtol=1e-12, atol=0)
