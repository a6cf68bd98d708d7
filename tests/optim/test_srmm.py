"""SRMM (official code not packaged; pytorch-optimizer's SRMM is a different rule for beta > 0): hand-computed steps
and the SGD identity at beta = 0."""

import torch

import zij


def run_with_grads(opt, p, grads):
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().clone())
    return out


def test_golden_values_without_proximal_term():
    # beta = 1: w_t = 1 / (t + 1);  eta = 0.5, so L = 2;  lambda = 0;  theta_0 = 1.
    # t=1, g = 2:  w = 1/2;  g_bar = 1;  theta_bar = 0.5 * 1 = 0.5;  theta_1 = 0.5 - 1/2 * 1 = 0
    # t=2, g = -1: w = 1/3;  g_bar = 2/3 * 1 - 1/3 = 1/3;  theta_bar = 2/3 * 0.5 + 1/3 * 0 = 1/3;
    #              theta_2 = 1/3 - 1/2 * 1/3 = 1/6
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SRMM([p], lr=0.5, beta=1.0)
    got = run_with_grads(opt, p, [[2.0], [-1.0]])
    for have, want in zip(got, (0.0, 1 / 6)):
        assert abs(have.item() - want) < 1e-15
    state = opt.state[p]
    assert abs(state["avg_grad"].item() - 1 / 3) < 1e-15 and abs(state["avg_param"].item() - 1 / 3) < 1e-15


def test_golden_values_with_proximal_term():
    # As above with lambda = 2: c = lambda / (L + lambda) = 1/2, step 1 / (L + lambda) = 1/4.
    # t=1: theta_bar = 0.5, g_bar = 1:    theta_1 = 0.5 * 0.5 + 0.5 * 1 - 0.25 * 1 = 0.5
    # t=2: theta_bar = 2/3 * 0.5 + 1/3 * 0.5 = 0.5, g_bar = 1/3:  theta_2 = 0.25 + 0.25 - 0.25 / 3 = 5/12
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SRMM([p], lr=0.5, beta=1.0, proximal=2.0)
    got = run_with_grads(opt, p, [[2.0], [-1.0]])
    for have, want in zip(got, (0.5, 5 / 12)):
        assert abs(have.item() - want) < 1e-15


def test_beta_zero_is_sgd_with_the_proximal_step():
    # beta = 0: every weight is 1, so g_bar = g, theta_bar = theta and theta_t = theta_{t-1} - g / (L + lambda).
    gen = torch.Generator().manual_seed(0)
    ours = torch.randn(4, 3, generator=gen, dtype=torch.float64).requires_grad_()
    base = ours.detach().clone().requires_grad_()
    lr, proximal = 0.1, 5.0
    opt = zij.SRMM([ours], lr=lr, beta=0.0, proximal=proximal)
    ref = torch.optim.SGD([base], lr=1.0 / (1.0 / lr + proximal))
    for _ in range(8):
        g = torch.randn(4, 3, generator=gen, dtype=torch.float64)
        ours.grad, base.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, base, rtol=1e-12, atol=1e-12)


def test_iterate_average_excludes_the_gradient_step():
    # The official SRMM keeps theta_bar the average of the iterates themselves: with a zero gradient at every step
    # and lambda = 0, theta_t = theta_bar_t, the weighted average of theta_0, ..., theta_{t-1}.
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SRMM([p], lr=0.1, beta=0.5)
    got = run_with_grads(opt, p, [[0.0]] * 3)
    w = [(t + 1) ** -0.5 for t in (1, 2, 3)]
    avg, theta = 0.0, 1.0
    for t in range(3):
        avg = (1 - w[t]) * avg + w[t] * theta
        theta = avg
        assert abs(got[t].item() - theta) < 1e-15
