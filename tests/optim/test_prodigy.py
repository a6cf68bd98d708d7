"""Prodigy: its estimate d never decreases, growth_rate caps it, and it lives in the group dicts.

Numeric parity with prodigyopt runs in test_matrix.py (three configurations)."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("Prodigy")


def _ds(opt, params, steps, entry=ENTRY):
    ds = [opt.param_groups[0]["d"]]
    for _ in range(steps):
        train_mlp(entry, opt, params, 1)
        ds.append(opt.param_groups[0]["d"])
    return ds


def test_estimate_never_decreases():
    for kwargs in ({}, {"use_bias_correction": True, "weight_decay": 0.1}, {"betas": (0.0, 0.99), "d_coef": 0.5}):
        params = mlp_params(ENTRY)
        opt = zij.Prodigy(params, **kwargs)
        ds = _ds(opt, params, 100)
        assert all(b >= a for a, b in zip(ds, ds[1:])), kwargs
        assert ds[-1] > 1e3 * ds[0], "d grew from d0 to the problem's scale"


def test_growth_rate_caps_each_increase():
    params = mlp_params(ENTRY)
    opt = zij.Prodigy(params, growth_rate=1.05)
    ds = _ds(opt, params, 60)
    raised = [i for i, d in enumerate(ds) if d > 1e-6]
    first = raised[0]  # the first increase from d0 is not capped (as in the official code)
    for a, b in zip(ds[first:], ds[first + 1:]):
        assert a <= b <= a * 1.05 * (1 + 1e-12)


def test_estimate_is_shared_and_saved_in_the_groups():
    params = mlp_params(ENTRY)
    opt = zij.Prodigy([{"params": params[:2]}, {"params": params[2:]}])
    train_mlp(ENTRY, opt, params, 5)
    d = opt.param_groups[0]["d"]
    assert d > 1e-6 and all(g["d"] == d and g["k"] == 5 for g in opt.param_groups)
    fresh = zij.Prodigy([{"params": params[:2]}, {"params": params[2:]}])
    fresh.load_state_dict(opt.state_dict())
    assert [g["d"] for g in fresh.param_groups] == [d, d]
    assert fresh.param_groups[0]["d_numerator"] == opt.param_groups[0]["d_numerator"]


def test_first_step_by_hand():
    """Step 1 from d0: m = (1-b1) d0 g, v = (1-b2) d0^2 g^2, r = d0 <g, 0> = 0, so d stays d0 and
    theta_1 = theta_0 - d0 (1-b1) d0 g / (sqrt(1-b2) d0 |g| + d0 eps)."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    opt = zij.Prodigy([p])
    p.grad = g.clone()
    opt.step()
    d0 = 1e-6
    expected = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64) - d0 * (0.1 * d0 * g) / (
        0.001**0.5 * d0 * g.abs() + d0 * 1e-8)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=0)
    assert opt.param_groups[0]["d"] == d0
    # step 2: r = sqrt(b2) * 0 + (d0/d0) d0 <g, theta_0 - theta_1>, s = sqrt(b2) d0 g + d0 g, d = r / ||s||_1
    delta = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64) - p.detach()
    p.grad = g.clone()
    opt.step()
    r = d0 * torch.dot(g, delta).item()
    s = (0.999**0.5 * d0 + d0) * g
    assert r > 0 and opt.param_groups[0]["d"] == pytest.approx(max(d0, r / s.abs().sum().item()), rel=1e-12)


def test_zero_gradients_change_nothing():
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = zij.Prodigy([p])
    p.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3, dtype=torch.float64))
    assert opt.param_groups[0]["k"] == 0 and opt.param_groups[0]["d"] == 1e-6
