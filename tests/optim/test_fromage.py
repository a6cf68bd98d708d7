"""Fromage: hand-computed steps, the plain step at a zero norm, and the norm bound."""

import math

import torch

import zij


def step(p, g, **kwargs):
    opt = zij.Fromage([p], **kwargs)
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    return opt


def test_golden_values():
    # W = (3, 4), ||W|| = 5, g = (2, 0), ||g|| = 2, eta = 0.5: W - 0.5 * 5/2 * g = (0.5, 4), divided by sqrt(1.25).
    p = torch.tensor([3.0, 4.0], dtype=torch.float64)
    step(p, [2.0, 0.0], lr=0.5)
    torch.testing.assert_close(p, torch.tensor([0.5, 4.0], dtype=torch.float64) / math.sqrt(1.25), rtol=1e-12, atol=0)


def test_zero_weights_take_a_plain_step():
    p = torch.zeros(2, dtype=torch.float64)
    step(p, [2.0, -1.0], lr=0.5)
    torch.testing.assert_close(p, torch.tensor([-1.0, 0.5], dtype=torch.float64) / math.sqrt(1.25), rtol=1e-12, atol=0)


def test_p_bound_caps_the_norm():
    # g = (-1, 0): W - 2.5 g = (5.5, 4), norm 6.80 / sqrt(1.25) = 6.08 > 1 * 5: rescaled to norm 5.
    p = torch.tensor([3.0, 4.0], dtype=torch.float64)
    step(p, [-1.0, 0.0], lr=0.5, p_bound=1.0)
    assert abs(p.norm().item() - 5.0) < 1e-12
    torch.testing.assert_close(p / p.norm(), torch.tensor([5.5, 4.0], dtype=torch.float64) / math.hypot(5.5, 4.0))
