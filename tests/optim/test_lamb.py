"""LAMB: weight decay inside the trust ratio and the zero-norm convention (parity runs without decay)."""

import torch

import zij


def _linear_steps(theta0, steps, **kwargs):
    """Steps on f(theta) = theta_0 - theta_1, whose gradient is the constant (1, -1)."""
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = zij.LAMB([p], **kwargs)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        (p[0] - p[1]).backward()
        opt.step()
        trajectory.append(p.detach().clone())
    return trajectory


def test_golden_values_with_weight_decay():
    # With a constant gradient g = (1, -1): m_hat = g and v_hat = g^2 exactly, so with eps = 1e-12
    # m_hat / (sqrt(v_hat) + eps) = (1, -1) to 1e-12, and u = (1, -1) + 0.1 * theta.
    # eta = 0.1, lambda = 0.1, theta_0 = (3, 4):
    # t=1: u = (1.3, -0.6), |u| = sqrt(2.05) = 1.4317821063, |theta| = 5, r = 5 / 1.4317821063 = 3.4921514788
    #      theta_1 = (3 - 0.1 * 3.4921514788 * 1.3, 4 + 0.1 * 3.4921514788 * 0.6) = (2.5460203077, 4.2095290887)
    # t=2: u = (1.2546020308, -0.5790470911), |u| = 1.3817821063, |theta_1| = 4.9195888605, r = 3.5603217309
    #      theta_2 = (2.0993416204, 4.4156884829)
    # t=3: u = (1.2099341620, -0.5584311517), |u| = 1.3325862177, |theta_2| = 4.8893291991, r = 3.6690528043
    #      theta_3 = (1.6554103873, 4.6205798212)
    trajectory = _linear_steps([3.0, 4.0], 3, lr=0.1, betas=(0.9, 0.999), eps=1e-12, weight_decay=0.1)
    expected = [(2.5460203077, 4.2095290887), (2.0993416204, 4.4156884829), (1.6554103873, 4.6205798212)]
    for got, want in zip(trajectory, expected):
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)


def test_step_norm_is_lr_times_weight_norm():
    # Whatever the direction, |theta_t - theta_{t-1}| = eta * r * |u| = eta * |theta_{t-1}|.
    p = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    opt = zij.LAMB([p], lr=0.01, weight_decay=0.05)
    for _ in range(4):
        before = p.detach().clone()
        opt.zero_grad()
        (p.sin().sum() + (p**3).mean()).backward()
        opt.step()
        torch.testing.assert_close(torch.linalg.vector_norm(p.detach() - before),
                                   0.01 * torch.linalg.vector_norm(before), rtol=1e-12, atol=0)


def test_zero_weights_take_the_plain_direction():
    # theta_0 = 0: the trust ratio would be 0 / |u|; the ratio is taken as 1, so theta_1 = -eta * u = -0.1 * (1, -1)
    # (u = (1, -1) + 0.1 * 0 with eps = 1e-12).
    (theta_1,) = _linear_steps([0.0, 0.0], 1, lr=0.1, eps=1e-12, weight_decay=0.1)
    torch.testing.assert_close(theta_1, torch.tensor([-0.1, 0.1], dtype=torch.float64), rtol=0, atol=1e-12)
