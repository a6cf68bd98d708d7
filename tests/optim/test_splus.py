"""SPlus: hand-written steps, the eval/train swap, the sides it leaves unrotated.

Parity with pytorch-optimizer's SPlus runs in the shared matrix (tests/optim/test_matrix.py).
"""

from __future__ import annotations

import pytest
import torch

import zij


def test_first_step_is_sign_descent_then_steps_rotate_into_the_eigenbasis():
    """Step 1 uses identity bases (U = sign(G)); step 2 uses the eigenvectors of the step-1 statistics."""
    torch.manual_seed(0)
    p = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    g1, g2 = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    x = p.detach().clone()
    opt = zij.SPlus([p], lr=0.4, betas=(0.9, 0.95), weight_decay=0.1, ema_rate=0.9)
    p.grad = g1
    opt.step()
    alpha = 0.4 * 2 / (3 + 5)
    x1 = (x - alpha * torch.sign(g1)) * (1 - alpha * 0.1)
    torch.testing.assert_close(p.detach(), x1, rtol=0, atol=1e-15)
    p.grad = g2
    opt.step()
    left, right = 0.05 * g1 @ g1.T, 0.05 * g1.T @ g1
    q_l = torch.linalg.eigh(left.float() + 1e-30 * torch.eye(3))[1].double()
    q_r = torch.linalg.eigh(right.float() + 1e-30 * torch.eye(5))[1].double()
    m = 0.9 * (0.1 * g1) + 0.1 * g2
    u = q_l @ torch.sign(q_l.T @ m @ q_r) @ q_r.T
    x2 = (x1 - alpha * u) * (1 - alpha * 0.1)
    torch.testing.assert_close(p.detach(), x2, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["left"], 0.95 * left + 0.05 * g2 @ g2.T, rtol=1e-12, atol=1e-14)


def test_eval_uses_the_bias_corrected_average_and_train_restores():
    torch.manual_seed(0)
    p = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.SPlus([p], lr=0.3, ema_rate=0.8)
    iterates = []
    for _ in range(3):
        p.grad = torch.randn(4, 3, dtype=torch.float64)
        opt.step()
        # the average takes the iterate before weight decay
        alpha = 0.3 * 2 / 7
        iterates.append(p.detach() / (1 - alpha * 0.01))
    training = p.detach().clone()
    average = sum(0.2 * 0.8 ** (2 - i) * x for i, x in enumerate(iterates)) / (1 - 0.8**3)
    opt.eval()
    torch.testing.assert_close(p.detach(), average, rtol=1e-12, atol=1e-12)
    opt.eval()  # a second eval changes nothing
    torch.testing.assert_close(p.detach(), average, rtol=1e-12, atol=1e-12)
    p.grad = torch.ones(4, 3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step()
    opt.train()
    assert torch.equal(p.detach(), training) and "param_buffer" not in opt.state[p]


def test_long_sides_are_not_rotated_and_vectors_take_the_sign():
    torch.manual_seed(0)
    w = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, dtype=torch.float64, requires_grad=True)
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt = zij.SPlus([w, b], lr=0.5, max_dim=6, weight_decay=0.0)
    gw, gb = torch.randn(3, 6, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    w.grad, b.grad = gw, gb
    opt.step()
    assert set(opt.state[w]) == {"step", "momentum", "ema", "left", "q_left"}  # the side of 6 is not rotated
    assert set(opt.state[b]) == {"step", "momentum", "ema"}
    torch.testing.assert_close(w.detach(), w0 - 0.5 * 2 / 9 * torch.sign(gw), rtol=0, atol=1e-15)
    torch.testing.assert_close(b.detach(), b0 - 0.5 * 1e-3 * torch.sign(gb), rtol=0, atol=1e-15)
    # a matrix with a side over max_dim steps like a vector
    wide = torch.zeros(2, 7, dtype=torch.float64, requires_grad=True)
    opt = zij.SPlus([wide], lr=0.5, max_dim=6, weight_decay=0.0)
    wide.grad = torch.ones(2, 7, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(wide.detach(), torch.full((2, 7), -0.5e-3, dtype=torch.float64))
