"""Shampoo: identities (one-entry statistics give AdaGrad, a vector gets full-matrix AdaGrad), root refresh, grafting.

Parity with pytorch_optimizer's Shampoo (the paper's rule) runs in test_matrix.py.
"""

import torch

import zij


def feed(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()


def gradients(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def test_one_entry_statistics_reduce_to_adagrad():
    # Each statistic of a (1, 1) or 0-dim tensor is the scalar eps + sum g^2; the step
    # L^(-1/4) g R^(-1/4) (or (eps + sum g^2)^(-1/2) g for order 1) is AdaGrad's with
    # initial accumulator eps and no epsilon in the denominator.
    eps, lr = 0.1, 0.3
    for shape in [(1, 1), (), (1,), (1, 1, 1)]:
        ours = torch.tensor(1.5, dtype=torch.float64).reshape(shape).requires_grad_()
        ref = ours.detach().clone().requires_grad_()
        opt = zij.Shampoo([ours], lr=lr, epsilon=eps)
        adagrad = torch.optim.Adagrad([ref], lr=lr, initial_accumulator_value=eps, eps=0.0)
        grads = gradients(shape, 20)
        for g in grads:
            ours.grad, ref.grad = g.clone(), g.clone()
            opt.step()
            adagrad.step()
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_vector_gets_full_matrix_adagrad():
    eps, lr = 0.5, 0.2
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = zij.Shampoo([p], lr=lr, epsilon=eps)
    stat, theta = eps * torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    for g in gradients(3, 6):
        p.grad = g.clone()
        opt.step()
        stat += torch.outer(g, g)
        w, v = torch.linalg.eigh(stat)
        theta -= lr * (v @ torch.diag(w**-0.5) @ v.T) @ g
        torch.testing.assert_close(p.detach(), theta, rtol=1e-12, atol=1e-12)


def _matrix_power(a, power):
    w, v = torch.linalg.eigh(a)
    return v @ torch.diag(w**power) @ v.T


def test_roots_are_refreshed_every_update_freq_steps():
    # k = 3: the roots computed at steps 1 and 4 serve steps 1-3 and 4-6; the statistics grow every step.
    eps, lr, k = 0.1, 0.05, 3
    p = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.Shampoo([p], lr=lr, epsilon=eps, update_freq=k)
    left, right = eps * torch.eye(3, dtype=torch.float64), eps * torch.eye(2, dtype=torch.float64)
    theta = torch.zeros(3, 2, dtype=torch.float64)
    for t, g in enumerate(gradients((3, 2), 7), start=1):
        p.grad = g.clone()
        opt.step()
        left += g @ g.T
        right += g.T @ g
        if (t - 1) % k == 0:
            pl, pr = _matrix_power(left, -0.25), _matrix_power(right, -0.25)
        theta -= lr * pl @ g @ pr
        torch.testing.assert_close(p.detach(), theta, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["stat_0"], left)
    torch.testing.assert_close(opt.state[p]["stat_1"], right)


def test_grafting_keeps_shampoo_direction_and_takes_graft_norm():
    eps, lr, beta2, graft_eps = 0.1, 0.05, 0.9, 1e-8
    grads = gradients((3, 4), 5)
    for graft in ("adagrad", "adam"):
        p = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
        q = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
        opt = zij.Shampoo([p], lr=lr, epsilon=eps, graft=graft, beta2=beta2, graft_eps=graft_eps)
        plain = zij.Shampoo([q], lr=lr, epsilon=eps)
        acc = torch.zeros(3, 4, dtype=torch.float64)
        for t, g in enumerate(grads, start=1):
            before_p, before_q = p.detach().clone(), q.detach().clone()
            feed(opt, [p], [[g]])
            feed(plain, [q], [[g]])
            step, direction = before_p - p.detach(), before_q - q.detach()
            if graft == "adagrad":
                acc += g * g
                diag = g / (acc.sqrt() + graft_eps)
            else:
                acc = beta2 * acc + (1 - beta2) * g * g
                diag = g / ((acc / (1 - beta2**t)).sqrt() + graft_eps)
            torch.testing.assert_close(step.norm(), lr * diag.norm(), rtol=1e-10, atol=0)
            torch.testing.assert_close(step / step.norm(), direction / direction.norm(), rtol=1e-10, atol=1e-12)
            q.data.copy_(p.detach())  # the next plain step starts where the grafted one is


def test_weight_decay_is_decoupled():
    p = torch.full((2, 2), 2.0, dtype=torch.float64, requires_grad=True)
    opt = zij.Shampoo([p], lr=0.1, epsilon=1.0, weight_decay=0.5)
    p.grad = torch.zeros(2, 2, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2, 2), 2.0 * (1 - 0.05), dtype=torch.float64))
