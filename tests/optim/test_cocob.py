"""COCOB-Backprop: hand-computed steps (no installable reference: the official code is TensorFlow)."""

from __future__ import annotations

import torch

import zij

X0 = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
G = torch.tensor([0.3, -4.0, 2.0], dtype=torch.float64)


def test_first_two_steps_by_hand():
    """Step 1: L = G = |g|, z = -g, R = 0, so w_1 = -g |g| / (|g| max(2|g|, 100|g|)) = -sign(g) / 100.
    Step 2 (same g): G = 2|g|, z = -2g, R = max(0 - g w_1, 0) = |g| / 100,
    w_2 = -2g (|g| + |g|/100) / (|g| 100 |g|) = -0.0202 sign(g)."""
    p = X0.clone().requires_grad_()
    opt = zij.COCOB([p])
    p.grad = G.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), X0 - 0.01 * G.sign(), rtol=1e-14, atol=0)
    p.grad = G.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), X0 - 0.0202 * G.sign(), rtol=1e-14, atol=0)
    torch.testing.assert_close(opt.state[p]["reward"], G.abs() / 100, rtol=1e-14, atol=0)


def test_reward_stays_nonnegative_and_a_reversal_shrinks_the_bet():
    """A gradient against the bet loses wealth: R = max(R - g w, 0) >= 0, and |w| falls."""
    p = X0.clone().requires_grad_()
    opt = zij.COCOB([p])
    for _ in range(3):
        p.grad = G.clone()
        opt.step()
    before = (p.detach() - X0).abs()
    p.grad = -3 * G
    opt.step()
    assert (opt.state[p]["reward"] >= 0).all()
    assert ((p.detach() - X0).abs() < before).all()
