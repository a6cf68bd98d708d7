"""AdamS of Zhang et al. (no installable upstream: pytorch-optimizer's AdamS is Xie et al.'s stable weight decay):
hand-computed steps and identities."""

import torch

import zij


def run_with_grads(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().clone())
    return out


def test_golden_values():
    # eta = 0.1, beta1 = 0.5, beta2 = 0.75, eps ~ 0, m_0 = 0, theta_0 = (1, -2).
    # t=1, g = (2, -4):  v = 0.75 * 0 + 0.25 * g^2 = (1, 4);  m = 0.5 g = (1, -2);
    #                    theta = (1 - 0.1 * 1 / 1, -2 + 0.1 * 2 / 2) = (0.9, -1.9)
    # t=2, g = (1, 2):   v = 0.75 m_1^2 + 0.25 g^2 = 0.75 (1, 4) + 0.25 (1, 4) = (1, 4);  m = (1, 0);
    #                    theta = (0.9 - 0.1, -1.9 - 0) = (0.8, -1.9)
    # t=3, g = (-3, 0):  v = 0.75 (1, 0) + 0.25 (9, 0) = (3, 0);  m = (-1, 0);
    #                    theta = (0.8 + 0.1 / sqrt(3), -1.9) = (0.8577350269, -1.9)  (0 / (0 + eps) = 0)
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdamS([p], lr=0.1, betas=(0.5, 0.75), eps=1e-12)
    got = run_with_grads(opt, p, [[2.0, -4.0], [1.0, 2.0], [-3.0, 0.0]])
    for have, want in zip(got, [(0.9, -1.9), (0.8, -1.9), (0.8577350269, -1.9)]):
        torch.testing.assert_close(have, torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-9)
    assert set(opt.state[p]) == {"step", "exp_avg"}, "the momentum is the only state tensor"
    torch.testing.assert_close(opt.state[p]["exp_avg"], torch.tensor([-1.0, 0.0], dtype=torch.float64))


def test_decoupled_weight_decay():
    # theta_0 = 1, g = 2, eta = 0.2, lambda = 0.5: v = 0.25 * 4 = 1, m = 0.5 * 2 = 1;
    # theta = 1 - 0.2 (1 / 1 + 0.5 * 1) = 0.7
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdamS([p], lr=0.2, betas=(0.5, 0.75), eps=0.0, weight_decay=0.5)
    (got,) = run_with_grads(opt, p, [[2.0]])
    torch.testing.assert_close(got, torch.tensor([0.7], dtype=torch.float64), rtol=0, atol=1e-12)


def test_zero_betas_give_sign_descent():
    # beta1 = beta2 = 0: m_t = g_t and v_t = g_t^2, so the step is eta sign(g_t) (eps = 0).
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(5, 3, generator=gen, dtype=torch.float64).requires_grad_()
    expected = p.detach().clone()
    opt = zij.AdamS([p], lr=0.05, betas=(0.0, 0.0), eps=0.0)
    for _ in range(6):
        g = torch.randn(5, 3, generator=gen, dtype=torch.float64)
        p.grad = g
        opt.step()
        expected -= 0.05 * g.sign()
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-14)


def test_constant_gradient_step_is_bounded_by_adam_like_scale():
    # With a constant gradient g, m_t = (1 - b1^t) g and v_t = b2 (1 - b1^(t-1))^2 g^2 + (1 - b2) g^2, so every step
    # has magnitude eta (1 - b1^t) / sqrt(b2 (1 - b1^(t-1))^2 + 1 - b2), which tends to eta from below.
    b1, b2, lr = 0.9, 0.999, 0.01
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = zij.AdamS([p], lr=lr, betas=(b1, b2), eps=0.0)
    previous = 0.0
    for t in range(1, 40):
        p.grad = torch.tensor([3.0], dtype=torch.float64)
        opt.step()
        step = previous - p.item()
        want = lr * (1 - b1**t) / (b2 * (1 - b1 ** (t - 1)) ** 2 + 1 - b2) ** 0.5
        assert abs(step - want) < 1e-14
        previous = p.item()
