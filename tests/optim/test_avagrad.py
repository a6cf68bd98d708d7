"""AvaGrad as in the paper's algorithm (upstream packages bias-correct and lag the normalization): golden values."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("AvaGrad")


def run_with_grads(opt, params, grads):
    out = []
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in params]))
    return out


# alpha = 0.1, beta1 = 0.5, beta2 = 0.75, eps = 1, d = 2, theta_0 = (1, 1); gradients (2, 6), (1, -3), (-1, 3).
# t=1: eta_1 = 1 / (sqrt(v_0) + 1) = (1, 1), RMS 1;  m_1 = (1, 3);  theta_1 = (1, 1) - 0.1 (1, 3) = (0.9, 0.7);
#      v_1 = 0.25 (4, 36) = (1, 9)
# t=2: eta_2 = (1 / 2, 1 / 4), RMS = sqrt((1/4 + 1/16) / 2) = sqrt(5/32), eta_2 / RMS = (sqrt(8/5), sqrt(2/5))
#      = (1.2649110641, 0.6324555320);  m_2 = 0.5 (1, 3) + 0.5 (1, -3) = (1, 0);
#      theta_2 = (0.9 - 0.1 * 1.2649110641, 0.7) = (0.7735088936, 0.7);  v_2 = 0.75 (1, 9) + 0.25 (1, 9) = (1, 9)
# t=3: eta_3 / RMS as at t=2;  m_3 = 0.5 (1, 0) + 0.5 (-1, 3) = (0, 1.5);
#      theta_3 = (0.7735088936, 0.7 - 0.1 * 0.6324555320 * 1.5) = (0.7735088936, 0.6051316702)
GRADS = [(2.0, 6.0), (1.0, -3.0), (-1.0, 3.0)]
EXPECTED = [(0.9, 0.7), (0.7735088936, 0.7), (0.7735088936, 0.6051316702)]


def test_golden_values():
    p = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AvaGrad([p], lr=0.1, betas=(0.5, 0.75), eps=1.0)
    got = run_with_grads(opt, [p], [[g] for g in GRADS])
    for have, want in zip(got, EXPECTED):
        torch.testing.assert_close(have, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], torch.tensor([1.0, 9.0], dtype=torch.float64))


def test_normalization_spans_the_group():
    # d counts every coordinate of the group: two one-element tensors in one group move exactly as the
    # two coordinates of one tensor above.
    a = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AvaGrad([a, b], lr=0.1, betas=(0.5, 0.75), eps=1.0)
    got = run_with_grads(opt, [a, b], [[[g0], [g1]] for g0, g1 in GRADS])
    for have, want in zip(got, EXPECTED):
        torch.testing.assert_close(have, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)


def test_weight_decay_is_decoupled():
    # lambda = 2, alpha = 0.1: theta_1 = (1 - 0.2) (1, 1) - 0.1 (1, 3) = (0.7, 0.5).
    p = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AvaGrad([p], lr=0.1, betas=(0.5, 0.75), eps=1.0, weight_decay=2.0)
    run_with_grads(opt, [p], [[GRADS[0]]])
    torch.testing.assert_close(p.detach(), torch.tensor([0.7, 0.5], dtype=torch.float64), rtol=0, atol=1e-12)


def test_huge_eps_without_momentum_is_sgd():
    # eps >> sqrt(v): all eta_t are equal, eta_t / RMS = 1, and with beta1 = 0 the step is alpha g_t: plain SGD.
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.AvaGrad(ours, lr=0.05, betas=(0.0, 0.999), eps=1e8)
    ref = torch.optim.SGD(base, lr=0.05)
    train_mlp(ENTRY, opt, ours, 20)
    train_mlp(ENTRY, ref, base, 20)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-12)


def test_first_step_is_momentum_sgd_step_for_any_eps():
    # v_0 = 0 makes eta_1 uniform whatever eps: theta_1 = theta_0 - alpha (1 - beta1) g_1.
    for eps in (1e-8, 1.0, 1e3):
        ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
        opt = zij.AvaGrad(ours, lr=0.05, betas=(0.9, 0.999), eps=eps)
        ref = torch.optim.SGD(base, lr=0.05 * 0.1)
        train_mlp(ENTRY, opt, ours, 1)
        train_mlp(ENTRY, ref, base, 1)
        for a, b in zip(ours, base):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)
