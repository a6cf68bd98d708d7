"""AdaMuon (no installable upstream computes the official code's current version): hand steps and identities.

pytorch-optimizer's AdaMuon follows the first arXiv version (no sign, a separate bias-corrected
second-moment decay, another scaling), so it is no reference for this rule.
"""

from __future__ import annotations

import torch

import zij


def _ns(x):
    y = x / (torch.linalg.norm(x) + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        a = y @ y.T
        y = 3.4445 * y + (-4.7750 * a + 2.0315 * a @ a) @ y
    return y.T if tall else y


def test_three_steps_against_hand_written_official_rule():
    """Three float64 steps on a tall matrix equal the official code's step written out by hand."""
    torch.manual_seed(0)
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(6, 3, dtype=torch.float64) for _ in range(3)]
    x = p.detach().clone()
    opt = zij.AdaMuon([p], lr=0.01, momentum=0.9, weight_decay=0.1, eps=1e-8, ns_dtype=None)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    m, v = torch.zeros(6, 3, dtype=torch.float64), torch.zeros(6, 3, dtype=torch.float64)
    for g in grads:
        m = 0.9 * m + 0.1 * g
        o = _ns(torch.sign(0.1 * g + 0.9 * m))
        v = 0.9 * v + 0.1 * o * o
        o_hat = o / (v.sqrt() + 1e-8)
        x = (1 - 0.01 * 0.1) * x - 0.01 * 0.2 * (6 * 3) ** 0.5 / (torch.linalg.norm(o_hat) + 1e-8) * o_hat
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)


def test_update_rms_is_two_tenths_and_first_step_sees_only_signs():
    """Without decay, every step moves the matrix by lr * 0.2 * sqrt(m n) in Frobenius norm; the first
    step depends on the gradient's signs only (the same for g and for any g' with sign(g') = sign(g))."""
    torch.manual_seed(0)
    g = torch.randn(5, 7, dtype=torch.float64)
    moved = []
    for grad in (g, g * torch.rand(5, 7, dtype=torch.float64).add(0.1)):
        p = torch.zeros(5, 7, dtype=torch.float64, requires_grad=True)
        opt = zij.AdaMuon([p], lr=1.0, weight_decay=0.0, ns_dtype=None)
        p.grad = grad
        opt.step()
        moved.append(p.detach().clone())
        torch.testing.assert_close(p.detach().norm(), torch.tensor(0.2 * 35**0.5, dtype=torch.float64), rtol=1e-7, atol=0)
    torch.testing.assert_close(moved[0], moved[1], rtol=0, atol=1e-15)


def test_vectors_use_adamw_with_the_shared_learning_rate():
    """By default (adam_lr=None) a bias takes AdamW steps with the group's lr: its first step is lr * sign(g)."""
    b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = zij.AdaMuon([b], lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    b.grad = torch.tensor([1.0, -2.0, 3.0, -4.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(b.detach(), -0.01 * b.grad.sign(), rtol=1e-7, atol=0)
    assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq"}
    scheduler.step()
    before = b.detach().clone()
    opt.step()  # the same gradient again: AdamW's step is lr * 1 again, now with the halved lr
    torch.testing.assert_close(b.detach() - before, -0.005 * b.grad.sign(), rtol=1e-7, atol=0)
