"""Grams against the authors' package (grams-pytorch), driven without a closure."""

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params

ENTRY = zij.get_entry("Grams")


def test_matches_official_package():
    # grams-pytorch's step() calls the closure under no_grad, so the matrix's parity test cannot drive it.
    # It adds eps to sqrt(v_t) before bias correction, so eps = 0 makes both the same rule.
    import grams
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    kwargs = dict(lr=1e-2, betas=(0.9, 0.999), eps=0.0, weight_decay=0.1)
    opt = zij.Grams(ours, **kwargs)
    ref = grams.Grams(theirs, **kwargs, correct_bias=True)
    for step in range(50):
        for params, optimizer in ((ours, opt), (theirs, ref)):
            optimizer.zero_grad()
            mlp_loss(params).backward()
            optimizer.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_direction_is_the_gradient_sign():
    # m_1 = (1 - b1) g: the first step is -lr * sign(g) * |g| / (|g| + eps) ~ -lr * sign(g), even where the
    # momentum would point the other way on later steps.
    p = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Grams([p], lr=0.1, eps=0.0)
    p.grad = torch.tensor([4.0, -0.5], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, -0.9], dtype=torch.float64), rtol=0, atol=1e-12)
    # second gradient flips the first coordinate; m_2 = 0.9 * 0.4 - 0.1 * 1 = 0.26 > 0 still, but the step
    # follows sign(g_2) = -1: theta moves up
    p.grad = torch.tensor([-1.0, -0.5], dtype=torch.float64)
    opt.step()
    assert p[0].item() > 0.9 and p[1].item() > -0.9
