"""AdaMod (upstream packages fold the bias corrections into the averaged step size): golden values, identities."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("AdaMod")


def test_golden_values():
    # eta = 0.1, beta1 = beta2 = beta3 = 0.5, eps = 0, theta_0 = (1, -1); gradients a: 1, 1, 1 and b: 1, 3, 3.
    # a: m = 0.5, 0.75, 0.875 and 1 - beta1^t = 0.5, 0.75, 0.875, so m_hat = 1; likewise v_hat = 1, eta_t = 0.1.
    #    s = 0.05, 0.075, 0.0875 (all < eta_t, so the bound s is used): theta = 0.95, 0.875, 0.7875
    # b, t=1: as for a: m_hat = v_hat = 1, eta_1 = 0.1, s_1 = 0.05, theta = -1 - 0.05 = -1.05
    # b, t=2: m = 0.25 + 1.5 = 1.75, m_hat = 1.75 / 0.75 = 7/3;  v = 0.25 + 4.5 = 4.75, v_hat = 19/3,
    #         eta_2 = 0.1 / sqrt(19/3) = 0.1 / 2.5166114784 = 0.0397359707;  s_2 = (0.05 + 0.0397359707) / 2 = 0.0448679854
    #         min = eta_2:  theta = -1.05 - 0.0397359707 * 7/3 = -1.1427172650
    # b, t=3: m = 0.875 + 1.5 = 2.375, m_hat = 19/7;  v = 2.375 + 4.5 = 6.875, v_hat = 55/7,
    #         eta_3 = 0.1 / 2.8030595529 = 0.0356753034;  s_3 = (0.0448679854 + 0.0356753034) / 2 = 0.0402716444
    #         min = eta_3:  theta = -1.1427172650 - 0.0356753034 * 19/7 = -1.2395502314
    p = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdaMod([p], lr=0.1, betas=(0.5, 0.5), beta3=0.5, eps=0.0)
    expected = [(0.95, -1.05), (0.875, -1.1427172650), (0.7875, -1.2395502314)]
    for g, want in zip([[1.0, 1.0], [1.0, 3.0], [1.0, 3.0]], expected):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(opt.state[p]["exp_avg_lr"], torch.tensor([0.0875, 0.0402716444], dtype=torch.float64),
                               rtol=0, atol=1e-9)


def test_beta3_zero_is_adam():
    # beta3 = 0: s_t = eta_t, so min(eta_t, s_t) m_hat = eta / (sqrt(v_hat) + eps) * m_hat, Adam's step.
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.AdaMod(ours, lr=0.01, betas=(0.9, 0.99), beta3=0.0, eps=1e-8)
    ref = torch.optim.Adam(base, lr=0.01, betas=(0.9, 0.99), eps=1e-8)
    train_mlp(ENTRY, opt, ours, 30)
    train_mlp(ENTRY, ref, base, 30)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_beta3_zero_with_weight_decay_is_adamw():
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.AdaMod(ours, lr=0.01, beta3=0.0, weight_decay=0.1)
    ref = torch.optim.AdamW(base, lr=0.01, weight_decay=0.1)
    train_mlp(ENTRY, opt, ours, 30)
    train_mlp(ENTRY, ref, base, 30)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_step_sizes_never_exceed_adams():
    # min(eta_t, s_t) <= eta_t: every coordinate moves at most as far as with Adam's step size.
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    start = [p.detach().clone() for p in ours]
    opt = zij.AdaMod(ours, lr=0.01, beta3=0.999)
    ref = torch.optim.Adam(base, lr=0.01)
    train_mlp(ENTRY, opt, ours, 1)
    train_mlp(ENTRY, ref, base, 1)
    for a, b, p0 in zip(ours, base, start):
        assert ((a - p0).abs() <= (b - p0).abs() + 1e-15).all()
        # at t = 1, s_1 = (1 - beta3) eta_1: the step is 1000 times smaller than Adam's
        torch.testing.assert_close(a - p0, (b - p0) * 1e-3, rtol=1e-9, atol=1e-15)
