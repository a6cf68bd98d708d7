"""StableSPAM (parity with pytorch-optimizer in the matrix): hand-computed quantities and identities."""

import math

import torch

from zij.memory_efficient.stable_spam import StableSPAM


def step_with(opt, p, g):
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()


def test_first_step_is_a_sign_step():
    # t = 1: mu_hat = n, nu_hat = n^2, so g~ = g / n (up to eps); Adam's first step is then lr sign(g).
    p = torch.tensor([1.0, 2.0, -3.0, 0.5], dtype=torch.float64)
    start = p.clone()
    opt = StableSPAM([p], lr=0.1, eps=1e-12)
    step_with(opt, p, [3.0, -0.001, 40.0, 0.0])
    torch.testing.assert_close(p, start - 0.1 * torch.tensor([1.0, -1.0, 1.0, 0.0], dtype=torch.float64),
                               rtol=0, atol=1e-8)


def test_adaclip_hand_values():
    # theta = 0.5, gamma1 = 0: mu_t is the norm of the clipped gradient.
    # t=1: g = (1, -1): M = 0.5, M_hat = 0.5 / 0.5 = 1: nothing above it; n = sqrt(2).
    # t=2: g = (4, 1): M = 0.25 + 2 = 2.25, M_hat = 2.25 / 0.75 = 3: 4 -> 4 / 4 * 3 = 3; n = sqrt(10).
    p = torch.zeros(2, dtype=torch.float64)
    opt = StableSPAM([p], lr=0.0, gamma1=0.0, theta=0.5)
    step_with(opt, p, [1.0, -1.0])
    assert abs(opt.state[p]["m_max"].item() - 0.5) < 1e-15 and abs(opt.state[p]["m_norm"].item() - math.sqrt(2)) < 1e-14
    step_with(opt, p, [4.0, 1.0])
    assert abs(opt.state[p]["m_max"].item() - 2.25) < 1e-15
    assert abs(opt.state[p]["m_norm"].item() - math.sqrt(10)) < 1e-14
    # nu = 0.9 * 0.1 * 2 + 0.1 * 10 = 1.18
    assert abs(opt.state[p]["v_norm"].item() - 1.18) < 1e-14


def test_adagn_gives_the_stabilized_norm():
    # With beta1 = 0 and beta2 close to 0 Adam's input is read back from m; its norm is mu_hat / (sqrt(nu_hat) + eps).
    p = torch.zeros(3, dtype=torch.float64)
    opt = StableSPAM([p], lr=0.0, betas=(0.0, 0.5), gamma1=0.5, gamma2=0.5, theta=0.999, eps=0.0)
    norms = []
    for g in ([3.0, 4.0, 0.0], [0.0, 0.6, 0.8], [6.0, 8.0, 0.0]):
        step_with(opt, p, g)
        norms.append(float(torch.linalg.vector_norm(opt.state[p]["exp_avg"])))
    # clipped norms: theta = 0.999 keeps M_hat = running mean of the maxima: t=2: M_hat = (4 + 0.8 * 0.999) / 1.999
    # = 2.4008 > 0.8: nothing clipped; t=3: M_hat = (0.999*(0.999*4 + 0.8*... )) computed below by the rule
    ns = [5.0, 1.0]
    m3 = (0.999 * (0.999 * 0.001 * 4 + 0.001 * 0.8) + 0.001 * 8) / (1 - 0.999**3)
    ns.append(math.hypot(min(6.0, 6.0 / 8 * m3), min(8.0, m3)))
    mu = nu = 0.0
    for t, (n, have) in enumerate(zip(ns, norms), start=1):
        mu, nu = 0.5 * mu + 0.5 * n, 0.5 * nu + 0.5 * n * n
        want = (mu / (1 - 0.5**t)) / math.sqrt(nu / (1 - 0.5**t))
        assert abs(have - want) < 1e-12, (t, have, want)


def test_reset_restarts_adam_and_its_bias_correction():
    p = torch.zeros(2, dtype=torch.float64)
    opt = StableSPAM([p], lr=0.1, betas=(0.9, 0.99), update_proj_gap=3, eps=0.0)
    for g in ([1.0, -2.0], [0.5, 0.5]):
        step_with(opt, p, g)
    before = p.clone()
    step_with(opt, p, [2.0, 1.0])  # t = 3: moments zeroed, k = 1: a sign step again
    state = opt.state[p]
    g_tilde = state["exp_avg"] / 0.1
    torch.testing.assert_close(state["exp_avg_sq"], 0.01 * g_tilde**2, rtol=1e-12, atol=0)
    torch.testing.assert_close(p, before - 0.1 * torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_zero_gradient_only_decays():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64)
    opt = StableSPAM([p], lr=0.1, weight_decay=0.5)
    step_with(opt, p, [0.0, 0.0])
    torch.testing.assert_close(p, torch.tensor([0.95, -1.9], dtype=torch.float64))
    assert torch.all(opt.state[p]["exp_avg"] == 0) and opt.state[p]["m_norm"].item() == 0
