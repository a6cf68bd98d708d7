"""AdaBound as in the paper's algorithm (upstream packages follow the official code): golden values, identities."""

import math

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("AdaBound")


def test_golden_values_clip_both_ways():
    # eta = 0.1, eta* = 0.2, gamma = 1, beta1 = 0.5, beta2 = 0.75 (1 - beta2 = 0.25); no bias correction.
    # bounds: eta_l(t) = 0.2 (1 - 1/(t+1)) = 0.1, 0.1333333333, 0.15;  eta_u(t) = 0.2 (1 + 1/t) = 0.4, 0.3, 0.2666666667
    # a (g = 4 each step, theta_0 = 1): v = 4, 7, 9.25, rate 0.1 / sqrt(v) = 0.05, 0.0378, 0.0329: clipped up to eta_l;
    #    m = 2, 3, 3.5;  steps = 0.1 * 2 / 1 = 0.2,  0.1333333333 * 3 / sqrt(2) = 0.2828427125,  0.15 * 3.5 / sqrt(3) = 0.3031088913
    #    theta = 0.8, 0.5171572875, 0.2140483962
    # b (g = 0.01, theta_0 = 0): v = 2.5e-5, 4.375e-5, 5.78125e-5, rate = 20, 15.12, 13.15: clipped down to eta_u;
    #    m = 0.005, 0.0075, 0.00875;  steps = 0.4 * 0.005 = 0.002,  0.3 * 0.0075 / sqrt(2) = 0.0015909903,
    #    0.2666666667 * 0.00875 / sqrt(3) = 0.0013471506;  theta = -0.002, -0.0035909903, -0.0049381409
    # c (g = 1, theta_0 = -1): v = 0.25, 0.4375, 0.578125, rate = 0.2 (inside [0.1, 0.4]), 0.1511857892 (inside
    #    [0.1333, 0.3]), 0.1315191898 (below 0.15: clipped up);  m = 0.5, 0.75, 0.875;
    #    steps = 0.2 * 0.5 = 0.1,  0.1511857892 * 0.75 / sqrt(2) = 0.0801783726,  0.15 * 0.875 / sqrt(3) = 0.0757772228
    #    theta = -1.1, -1.1801783726, -1.2559555954
    # d (g = 0, theta_0 = 0.5): v = 0, rate = +inf, clipped to eta_u, m = 0: no step and no NaN.
    p = torch.tensor([1.0, 0.0, -1.0, 0.5], dtype=torch.float64, requires_grad=True)
    opt = zij.AdaBound([p], lr=0.1, final_lr=0.2, betas=(0.5, 0.75), gamma=1.0)
    expected = [
        (0.8, -0.002, -1.1, 0.5),
        (0.5171572875, -0.0035909903, -1.1801783726, 0.5),
        (0.2140483962, -0.0049381409, -1.2559555954, 0.5),
    ]
    for want in expected:
        p.grad = torch.tensor([4.0, 0.01, 1.0, 0.0], dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)


def test_zero_learning_rate_takes_the_lower_bound():
    # eta = 0: the Adam rate 0 is clipped up to eta_l(t) everywhere (also where v = 0), so
    # theta_1 = theta_0 - eta_l(1) m_1 = 1 - 0.1 * 0.5 * 2 = 0.9 (eta* = 0.2, gamma = 1, beta1 = 0.5), and nothing is NaN.
    p = torch.tensor([1.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdaBound([p], lr=0.0, final_lr=0.2, betas=(0.5, 0.75), gamma=1.0)
    p.grad = torch.tensor([2.0, 0.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, 3.0], dtype=torch.float64), rtol=0, atol=1e-15)


def test_closed_bounds_and_no_momentum_is_sgd_with_inverse_sqrt_decay():
    # gamma huge: eta_l(t) = eta_u(t) = eta* (to 1e-12), so every step size is eta*; with beta1 = 0, m_t = g_t and
    # AdaBound is SGD with learning rate eta* / sqrt(t).
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.AdaBound(ours, lr=1e-3, final_lr=0.05, betas=(0.0, 0.999), gamma=1e12)
    ref = torch.optim.SGD(base, lr=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(ref, lambda epoch: 1 / math.sqrt(epoch + 1))
    for _ in range(20):
        train_mlp(ENTRY, opt, ours, 1)
        train_mlp(ENTRY, ref, base, 1)
        schedule.step()
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_weight_decay_is_decoupled():
    # theta is scaled by 1 - eta * lambda before the step: with lambda = 2, eta = 0.1 the first step of coordinate c
    # above becomes theta_1 = 0.8 * (-1) - 0.1 = -0.9.
    p = torch.tensor([-1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdaBound([p], lr=0.1, final_lr=0.2, betas=(0.5, 0.75), gamma=1.0, weight_decay=2.0)
    p.grad = torch.tensor([1.0], dtype=torch.float64)
    opt.step()
    assert abs(p.item() - (-0.9)) < 1e-12
