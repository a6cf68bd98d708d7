"""D-Adaptation SGD, Adam and AdaGrad: d never decreases, it lives in the group dicts, hand-computed steps.

Numeric parity with the dadaptation package runs in test_matrix.py (two configurations each)."""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

NAMES = ("DAdaptSGD", "DAdaptAdam", "DAdaptAdaGrad")


@pytest.mark.parametrize("name", NAMES)
def test_estimate_never_decreases_and_grows(name):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    ds = [opt.param_groups[0]["d"]]
    for _ in range(100):
        train_mlp(entry, opt, params, 1)
        ds.append(opt.param_groups[0]["d"])
    assert all(b >= a for a, b in zip(ds, ds[1:]))
    assert ds[-1] > 1e3 * ds[0], "d grew from d0 to the problem's scale"


@pytest.mark.parametrize("name", NAMES)
def test_growth_rate_caps_each_increase(name):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make(params, **{**entry.recipe, "growth_rate": 1.05})
    ds = [opt.param_groups[0]["d"]]
    for _ in range(40):
        train_mlp(entry, opt, params, 1)
        ds.append(opt.param_groups[0]["d"])
    assert all(a <= b <= a * 1.05 * (1 + 1e-12) for a, b in zip(ds, ds[1:]))
    assert ds[-1] > ds[0]


@pytest.mark.parametrize("name", NAMES)
def test_estimate_is_shared_and_saved_in_the_groups(name):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make([{"params": params[:2]}, {"params": params[2:]}], **entry.recipe)
    train_mlp(entry, opt, params, 5)
    d = opt.param_groups[0]["d"]
    assert d > 1e-6 and all(g["d"] == d and g["k"] == 5 for g in opt.param_groups)
    fresh = entry.make([{"params": params[:2]}, {"params": params[2:]}], **entry.recipe)
    fresh.load_state_dict(opt.state_dict())
    assert [g["d"] for g in fresh.param_groups] == [d, d]


def test_sgd_first_steps_by_hand():
    """Step 1: delta = d0 / ||g0||, r = 0, s = delta g, d_hat = 0, theta_1 = theta_0 - delta g.
    Step 2 (same g): r = delta^2 ||g||^2, s = 2 delta g, d_hat = 2 r / ||s|| = d0, so d stays d0."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    x0 = p.detach().clone()
    opt = zij.DAdaptSGD([p])
    delta = 1e-6 / g.norm().item()
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), x0 - delta * g, rtol=1e-14, atol=0)
    assert opt.param_groups[0]["d"] == 1e-6
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), x0 - 2 * delta * g, rtol=1e-14, atol=0)
    assert opt.param_groups[0]["d_hat"] == pytest.approx(1e-6, rel=1e-12)
    assert opt.param_groups[0]["numerator_weighted"] == pytest.approx(delta**2 * g.dot(g).item(), rel=1e-12)


def test_adam_first_step_by_hand():
    """Step 1 from s = v = 0: a = 0, m = (1-b1) d0 g, v = (1-b2) g^2, s = (1-sqrt b2) d0 g, r = 0,
    so d stays d0 and theta_1 = theta_0 - m / (sqrt(v) + eps)."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    x0 = p.detach().clone()
    opt = zij.DAdaptAdam([p])
    p.grad = g.clone()
    opt.step()
    expected = x0 - 0.1 * 1e-6 * g / ((0.001 * g * g).sqrt() + 1e-8)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-13, atol=0)
    assert opt.param_groups[0]["d"] == 1e-6 and opt.param_groups[0]["numerator_weighted"] == 0.0


def test_adagrad_first_step_by_hand():
    """Step 1: alpha = 1e-6 + g^2, s = d0 g, theta_1 = theta_0 - d0 g / (sqrt(alpha) + eps);
    d_hat = (sum s^2/(sqrt(alpha)+eps) - d0^2 sum g^2/(sqrt(alpha)+eps)) / ||s||_1 = 0, so d stays d0."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    x0 = p.detach().clone()
    opt = zij.DAdaptAdaGrad([p])
    p.grad = g.clone()
    opt.step()
    alpha = 1e-6 + g * g
    torch.testing.assert_close(p.detach(), x0 - 1e-6 * g / (alpha.sqrt() + 1e-6), rtol=1e-13, atol=0)
    assert opt.param_groups[0]["d"] == 1e-6
    assert math.isclose(opt.param_groups[0]["d_hat"], 0.0, abs_tol=1e-20)


@pytest.mark.parametrize("name", NAMES)
def test_zero_gradients_change_nothing(name):
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = zij.get_entry(name).cls([p])
    p.grad = torch.zeros(3, dtype=torch.float64)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3, dtype=torch.float64))
    assert opt.param_groups[0]["k"] == 0 and opt.param_groups[0]["d"] == 1e-6
