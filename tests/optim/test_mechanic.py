"""Mechanic: parity with the official mechanic-pytorch, the scale's learners by hand, resume, reference point."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params, train_mlp

ENTRY = zij.get_entry("Mechanic")
BASES = [
    (torch.optim.SGD, {"lr": 0.05}),
    (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}),
    (torch.optim.Adam, {"lr": 0.01}),
]


@pytest.fixture
def float64_default():
    """The official learners live in torch's default dtype, as ours do: float64 here, so that the two compare
    their arithmetic rather than float32 rounding."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("base", BASES, ids=["SGD", "SGD-momentum-decay", "Adam"])
@pytest.mark.parametrize("kwargs", [{}, {"s_decay": 0.1, "betas": (0.9, 0.999), "s_init": 1e-4, "eps": 1e-6},
                                    {"store_delta": True}], ids=["default", "custom", "store_delta"])
def test_parity_with_mechanic_pytorch(base, kwargs, float64_default):
    """mechanize(Base) subclasses the base optimizer instead of wrapping an instance; same arithmetic. It evaluates
    a closure with gradients disabled, so both are stepped after the backward pass, without a closure."""
    mechanic_pytorch = pytest.importorskip("mechanic_pytorch", reason="pip install -e '.[test]'")
    cls, base_kwargs = base
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.Mechanic(cls(ours, **base_kwargs), **kwargs)
    ref = mechanic_pytorch.mechanize(cls, **kwargs)(theirs, **base_kwargs)
    for step in range(50):
        for o, ps in ((opt, ours), (ref, theirs)):
            o.zero_grad()
            mlp_loss(ps).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
    torch.testing.assert_close(opt.state["mechanic"]["s"], ref.state["_mechanic"]["s"], rtol=1e-6, atol=1e-15)


def test_first_step_moves_by_the_initial_scale():
    """Step 1: Delta_0 = 0 so h = 0; m = 0.9e-6 ... s_j = beta_j 1e-6 s_init / n / eps; theta_1 = ref + S u."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Mechanic(torch.optim.SGD([p], lr=0.1), betas=(0.9, 0.99), s_init=1e-2, eps=1e-8)
    p.grad = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt.step()
    s = torch.tensor([0.9, 0.99]) * 1e-6 * 1e-2 / 2 / 1e-8
    scale = float(s.sum())
    torch.testing.assert_close(p.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64) - scale * 0.1, rtol=1e-12,
                               atol=0)
    torch.testing.assert_close(opt.state["mechanic"]["s"].double(), s.double(), rtol=1e-6, atol=0)


def test_scale_grows_when_steps_pay_off():
    params = mlp_params(ENTRY)
    opt = zij.Mechanic(torch.optim.SGD(params, lr=0.01))
    scales = []
    for _ in range(60):
        train_mlp(ENTRY, opt, params, 1)
        scales.append(float(opt.state["mechanic"]["s"].sum()))
    assert scales[-1] > 1e3 * scales[0]


def test_weights_stay_on_the_ray_from_the_reference():
    """theta_t - theta_ref is S_t times the accumulated base updates: with store_delta, exactly S_t Delta_t."""
    params = mlp_params(ENTRY)
    start = [p.detach().clone() for p in params]
    opt = zij.Mechanic(torch.optim.SGD(params, lr=0.01), store_delta=True)
    train_mlp(ENTRY, opt, params, 7)
    scale = opt.state["mechanic"]["s"].sum().clamp(min=0)
    for p, p0 in zip(params, start):
        assert torch.equal(opt.state[p]["ref"], p0)
        torch.testing.assert_close(p.detach(), p0 + opt.state[p]["delta"] * scale.to(p.dtype), rtol=1e-12, atol=1e-15)
