"""AdamC under a learning-rate schedule: against torch's AdamW with the corrected decay set by hand, and
against pytorch-optimizer's AdamC (the matrix compares them at a constant learning rate only)."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params

ENTRY = zij.get_entry("AdamC")


def _train(opt, params, steps, before_step=None):
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    for _ in range(steps):
        opt.zero_grad()
        mlp_loss(params).backward()
        if before_step:
            before_step(opt)
        opt.step()
        scheduler.step()


@pytest.mark.parametrize("normalized", [True, False])
def test_equals_adamw_with_the_decay_set_by_hand(normalized):
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    _train(zij.AdamC(ours, lr=0.01, weight_decay=0.5, normalized=normalized), ours, 20)

    def corrected_decay(opt):
        for group in opt.param_groups:
            group["weight_decay"] = 0.5 * (group["lr"] / 0.01 if normalized else 1.0)
    _train(torch.optim.AdamW(theirs, lr=0.01, weight_decay=0.5, foreach=False), theirs, 20, corrected_decay)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_parity_with_pytorch_optimizer_under_a_schedule():
    """eps = 0 (its epsilon is divided by the bias correction, zij's is not)."""
    from pytorch_optimizer import AdamC

    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    groups = [{"params": ours[:2], "normalized": True}, {"params": ours[2:]}]
    _train(zij.AdamC(groups, lr=0.01, eps=0.0, weight_decay=0.5), ours, 30)
    ref_groups = [{"params": theirs[:2], "normalized": True}, {"params": theirs[2:]}]
    _train(AdamC(ref_groups, lr=0.01, eps=0.0, weight_decay=0.5), theirs, 30)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_max_lr_sets_the_reference():
    """With max_lr = 2 lr the normalized decay is halved from the first step."""
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = zij.AdamC([w], lr=0.1, weight_decay=1.0, max_lr=0.2, normalized=True)
    w.grad = torch.zeros(3, dtype=torch.float64)  # no gradient step (m = 0): only the decay acts
    opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), 1 - 0.1 * 0.5, dtype=torch.float64))
