"""RACS: a hand-computed first step, and parity with pytorch_optimizer's RACS on tensors of every order.

Parity on the MLP (matrices and vectors) runs in test_matrix.py.
"""

import torch
from pytorch_optimizer import RACS as ReferenceRACS

import zij


def test_first_step_by_hand():
    # t = 1: s = (1 - beta) row means of g^2, q = beta + (1 - beta) column means, nu = 1
    lr, beta, alpha, eps = 0.5, 0.9, 0.05, 1e-8
    g = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], dtype=torch.float64)
    p = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.RACS([p], lr=lr, beta=beta, alpha=alpha, eps=eps)
    p.grad = g.clone()
    opt.step()
    s = (1 - beta) * (g**2).mean(dim=1)
    q = beta + (1 - beta) * (g**2).mean(dim=0)
    scaled = g / ((s + eps).sqrt()[:, None] * (q + eps).sqrt()[None, :])
    torch.testing.assert_close(p.detach(), -lr * alpha * scaled, rtol=1e-14, atol=0)
    torch.testing.assert_close(opt.state[p]["limit"], torch.linalg.vector_norm(scaled), rtol=1e-14, atol=0)


def test_limiter_caps_the_growth_of_the_update_norm():
    # phi_t = min(||G_hat_t||, gamma (phi_{t-1} + eps)): shrinking gradients grow G_hat (it scales as 1/|g|),
    # and the stored norm may grow only by gamma per step
    gamma, eps = 1.05, 1e-8
    p = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.RACS([p], lr=1.0, beta=0.0, gamma=gamma, eps=eps)
    base = torch.arange(1.0, 13.0, dtype=torch.float64).reshape(3, 4)
    previous = None
    for scale in (1.0, 0.1, 0.1, 10.0, 0.5):
        g = base * scale
        p.grad = g.clone()
        opt.step()
        s, q = (g**2).mean(dim=1), (g**2).mean(dim=0)
        norm = torch.linalg.vector_norm(g / ((s + eps).sqrt()[:, None] * (q + eps).sqrt()[None, :]))
        expected = norm if previous is None else torch.minimum(norm, gamma * (previous + eps))
        torch.testing.assert_close(opt.state[p]["limit"], expected, rtol=1e-12, atol=0)
        previous = expected


def test_parity_on_tensors_of_every_order():
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in [(), (5,), (3, 4), (2, 3, 4)]]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    kwargs = {"lr": 0.05, "beta": 0.8, "alpha": 0.1, "gamma": 1.02, "weight_decay": 0.01}
    opt, ref = zij.RACS(ours, **kwargs), ReferenceRACS(theirs, **kwargs)
    for step in range(30):
        for params, o in ((ours, opt), (theirs, ref)):
            for p in params:
                p.grad = None
            sum((p.sin() * p).sum() + 0.1 * (p**4).sum() for p in params).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
