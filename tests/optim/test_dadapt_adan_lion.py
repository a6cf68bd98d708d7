"""D-Adaptation Adan and Lion: parity with the dadaptation package, and d never decreases.

dadaptation's DAdaptAdan calls the closure under no_grad and its DAdaptLion changes leaf parameters in place
without no_grad, so the matrix's parity check cannot drive them: here the gradients are computed first and
their step() runs under torch.no_grad().
"""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params, train_mlp

CONFIGS = [
    ("DAdaptAdan", {}),
    ("DAdaptAdan", {"lr": 0.5, "betas": (0.9, 0.9, 0.999), "eps": 1e-6, "weight_decay": 0.05, "no_prox": True,
                    "d0": 1e-4, "growth_rate": 1.1}),
    ("DAdaptLion", {}),
    ("DAdaptLion", {"lr": 0.5, "betas": (0.95, 0.98), "weight_decay": 0.1, "d0": 1e-4}),
]


def _step(opt, params):
    opt.zero_grad()
    mlp_loss(params).backward()
    with torch.no_grad():
        opt.step()


@pytest.mark.parametrize("name,kwargs", CONFIGS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_parity_with_dadaptation(name, kwargs):
    dadaptation = pytest.importorskip("dadaptation", reason="pip install -e '.[test]'")
    entry = zij.get_entry(name)
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = getattr(zij, name)(ours, **kwargs)
    ref = getattr(dadaptation, name)(theirs, **kwargs)
    for step in range(50):
        _step(opt, ours)
        _step(ref, theirs)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
    assert opt.param_groups[0]["d"] == pytest.approx(ref.param_groups[0]["d"], rel=1e-9)


@pytest.mark.parametrize("name", ["DAdaptAdan", "DAdaptLion"])
def test_estimate_never_decreases_and_grows(name):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = getattr(zij, name)(params, lr=1.0)
    ds = [opt.param_groups[0]["d"]]
    for _ in range(60):
        train_mlp(entry, opt, params, 1)
        ds.append(opt.param_groups[0]["d"])
    assert all(b >= a for a, b in zip(ds, ds[1:]))
    assert ds[-1] > 1e3 * ds[0]


def test_adan_growth_rate_caps_each_increase():
    entry = zij.get_entry("DAdaptAdan")
    params = mlp_params(entry)
    opt = zij.DAdaptAdan(params, growth_rate=1.05)
    ds = [opt.param_groups[0]["d"]]
    for _ in range(30):
        train_mlp(entry, opt, params, 1)
        ds.append(opt.param_groups[0]["d"])
    assert all(a <= b <= a * 1.05 * (1 + 1e-12) for a, b in zip(ds, ds[1:])) and ds[-1] > ds[0]


def test_lion_first_step_by_hand():
    """Step 1: m = s = 0, so u = sign(g), theta_1 = theta_0 - d0 sign(g), r = 0 and d stays d0;
    m = (1 - b2) d0 g and s = (1 - sqrt(b2)) d0 sign(g)."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = zij.DAdaptLion([p], d0=0.1, betas=(0.9, 0.99))
    g = torch.tensor([0.5, 0.25, -1.0], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9, -2.1, 3.1], dtype=torch.float64), rtol=0, atol=1e-15)
    state = opt.state[p]
    torch.testing.assert_close(state["exp_avg"], 0.01 * 0.1 * g, rtol=1e-15, atol=0)
    torch.testing.assert_close(state["s"], (1 - 0.99**0.5) * 0.1 * g.sign(), rtol=1e-15, atol=0)
    assert opt.param_groups[0]["d"] == 0.1 and opt.param_groups[0]["numerator_weighted"] == 0.0


def test_adan_first_difference_is_zero():
    """At the first step g_{-1} = g_0: the difference average n stays 0 and v = (1 - b3) g^2."""
    p = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64, requires_grad=True)
    opt = zij.DAdaptAdan([p], weight_decay=0.0)
    g = torch.tensor([0.5, 0.25, -1.0], dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    state = opt.state[p]
    assert torch.equal(state["exp_avg_diff"], torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(state["exp_avg_sq"], 0.01 * g * g, rtol=1e-15, atol=0)
    assert torch.equal(state["pre_grad"], g)
