"""Schedule-Free AdamW: parity with the schedulefree package, the average it defines, and train/eval."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("ScheduleFreeAdamW")
KWARGS = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "warmup_steps": 5}


def test_parity_with_schedulefree_paper_version():
    """schedulefree's AdamWScheduleFreePaper implements the paper's rule (bias correction in the step size).

    Restriction: its step size for the averaging weights is the largest so far, ours the current one; they
    agree here because eta_t only grows (warm-up, then the bias correction) without a scheduler."""
    schedulefree = pytest.importorskip("schedulefree", reason="pip install -e '.[test]'")
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.ScheduleFreeAdamW(ours, **KWARGS)
    ref = schedulefree.AdamWScheduleFreePaper(theirs, foreach=False, **KWARGS)
    ref.train()
    for step in range(30):
        train_mlp(ENTRY, opt, ours, 1)
        train_mlp(ENTRY, ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
    opt.eval()
    ref.eval()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_eval_point_is_the_average_it_defines():
    """theta_{t+1} = (1 - c) theta_t + c z_{t+1}, tracked by hand from z, equals the eval-mode parameters."""
    params = mlp_params(ENTRY)
    opt = zij.ScheduleFreeAdamW(params, **KWARGS)
    theta = [p.detach().clone() for p in params]  # theta_1 = z_1 = the starting weights
    for _ in range(12):
        train_mlp(ENTRY, opt, params, 1)
        c = opt.param_groups[0]["ckp1"]
        theta = [(1 - c) * x + c * opt.state[p]["z"] for x, p in zip(theta, params)]
    opt.eval()
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), x, rtol=1e-10, atol=1e-12)
    opt.train()  # and back to y = (1 - b1) z + b1 theta
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), 0.1 * opt.state[p]["z"] + 0.9 * x, rtol=1e-10, atol=1e-12)


def test_eval_mode_refuses_to_step_and_switching_is_idempotent():
    params = mlp_params(ENTRY)
    opt = zij.ScheduleFreeAdamW(params, **KWARGS)
    train_mlp(ENTRY, opt, params, 3)
    opt.eval()
    once = [p.detach().clone() for p in params]
    opt.eval()
    assert all(torch.equal(a, b) for a, b in zip(once, params))
    with pytest.raises(RuntimeError, match="train"):
        train_mlp(ENTRY, opt, params, 1)
    opt.train()
    train_mlp(ENTRY, opt, params, 1)
    assert opt.param_groups[0]["k"] == 4


def test_average_weights_are_squared_step_sizes():
    """With warm-up, c_{t+1} = eta_t^2 / sum_i eta_i^2 (the rule's c), checked at each step."""
    p = [torch.ones(3, dtype=torch.float64, requires_grad=True)]
    opt = zij.ScheduleFreeAdamW(p, lr=0.1, warmup_steps=4)
    etas = []
    for t in range(1, 8):
        p[0].grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        etas.append(0.1 * (1 - 0.999**t) ** 0.5 * min(1.0, t / 4))
        assert opt.param_groups[0]["ckp1"] == pytest.approx(etas[-1] ** 2 / sum(e**2 for e in etas))
