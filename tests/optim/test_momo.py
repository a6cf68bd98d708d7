"""MoMo and MoMo-Adam: parity with the official momo-opt, the loss model by hand, the closure protocol."""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp


@pytest.fixture
def float64_default():
    """momo-opt creates some averages with torch's default dtype (torch.zeros(1), torch.tensor(0.)): float64
    here, so that the comparison is of the arithmetic, not of float32 rounding in its state."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


CONFIGS = [
    ("Momo", {}, {}),
    ("Momo", {"lr": 0.5, "beta": 0.8, "weight_decay": 0.01, "bias_correction": True},
     {"lr": 0.5, "beta": 0.8, "weight_decay": 0.01, "bias_correction": True}),
    ("Momo", {"lr": 2.0, "lb": 0.05}, {"lr": 2.0, "lb": 0.05}),
    ("MomoAdam", {}, {}),
    ("MomoAdam", {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
     {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01}),
    ("MomoAdam", {"lr": 0.05, "weight_decay": 0.01, "divide": False, "lb": 0.01},
     {"lr": 0.05, "weight_decay": 0.01, "divide": False, "lb": 0.01}),
]


@pytest.mark.parametrize("name,kwargs,ref_kwargs", CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_parity_with_momo_opt(name, kwargs, ref_kwargs, float64_default):
    momo = pytest.importorskip("momo", reason="pip install -e '.[test]'")
    entry = zij.get_entry(name)
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = getattr(zij, name)(ours, **kwargs)
    ref = getattr(momo, name)(theirs, **ref_kwargs)
    for step in range(50):
        train_mlp(entry, opt, ours, 1)
        train_mlp(entry, ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_momo_first_step_is_a_capped_polyak_step():
    """Step 1 without bias correction: d = g, f_avg = f, gamma = <g, theta>, so the model's numerator is
    f - f* and tau = min(lr, (f - f*) / ||g||^2): the Polyak step (f = 0.5 ||theta||^2 at (3, 4): 12.5 / 25)."""
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Momo([p], lr=1.0)
    loss = 0.5 * p.square().sum()
    loss.backward()
    opt.step(lambda: loss)
    assert opt.param_groups[0]["tau"] == pytest.approx(0.5, rel=1e-15)
    torch.testing.assert_close(p.detach(), torch.tensor([1.5, 2.0], dtype=torch.float64), rtol=0, atol=1e-15)
    opt = zij.Momo([p], lr=0.1)  # capped at lr
    p.grad = None
    loss = 0.5 * p.square().sum()
    loss.backward()
    opt.step(lambda: loss)
    torch.testing.assert_close(p.detach(), torch.tensor([1.35, 1.8], dtype=torch.float64), rtol=0, atol=1e-15)


def test_momo_adam_first_step_by_hand():
    """Step 1: d = (1 - b1) g, v = (1 - b2) g^2, D = |g| + eps, rho = 1 - b1; f_avg = (1 - b1) f and
    gamma = (1 - b1) <g, theta>: the numerator is (1 - b1) f, the norm (1 - b1)^2 sum |g| (eps = 0)."""
    p = torch.tensor([3.0, -4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.MomoAdam([p], lr=10.0, eps=0.0)
    loss = 0.5 * p.square().sum()
    loss.backward()
    opt.step(lambda: loss)
    tau = min(10.0 / 0.1, 0.1 * 12.5 / (0.01 * 7.0))
    assert opt.param_groups[0]["tau"] == pytest.approx(tau, rel=1e-14)
    expected = torch.tensor([3.0, -4.0], dtype=torch.float64) - tau * 0.1 * torch.tensor([1.0, -1.0],
                                                                                         dtype=torch.float64)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", ["Momo", "MomoAdam"])
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_every_dimension_steps_on_a_positive_loss(name, ndim):
    shape = (2, 3, 2, 2)[:ndim]
    p = torch.linspace(-1, 1, math.prod(shape)).reshape(shape).add(2.0).requires_grad_()
    before = p.detach().clone()
    opt = getattr(zij, name)([p], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        loss = p.square().sum()
        loss.backward()
        opt.step(lambda: loss)
    assert torch.isfinite(p).all() and p.square().sum() < before.square().sum()


@pytest.mark.parametrize("name", ["Momo", "MomoAdam"])
def test_closure_is_required(name):
    p = torch.ones(3, requires_grad=True)
    opt = getattr(zij, name)([p])
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="closure"):
        opt.step()
