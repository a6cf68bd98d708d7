"""AliG and SPS: the loss sets the step (closure protocol), hand-computed steps, parity with pytorch_optimizer's AliG.

pytorch_optimizer's AliG calls the closure without enabling gradients, so the matrix's parity check (whose
closure calls backward) cannot drive it: here the gradients are computed first and the closure returns the loss.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params


def _drive(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = mlp_loss(params)
        loss.backward()
        opt.step(lambda: loss.detach())


@pytest.mark.parametrize("kwargs", [{"max_lr": 0.5}, {"max_lr": 0.2, "momentum": 0.9},
                                    {"max_lr": 0.2, "momentum": 0.8, "adjusted_momentum": True}, {"max_lr": None}])
def test_alig_parity_with_pytorch_optimizer(kwargs, monkeypatch):
    """Restrictions: pytorch_optimizer's delta is 1e-6 (the official code's and our default is 1e-5), and it sums
    the squared norms in float32, which is replaced here by the same sum in float64 (the official code sums in the
    parameters' dtype), so that the 50 steps compare the rule and not a float32 rounding."""
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer", reason="pip install -e '.[test]'")
    import pytorch_optimizer.optimizer.alig as reference

    def squared_norm_float64(param_groups):
        grads = [p.grad for group in param_groups for p in group["params"] if p.grad is not None]
        return torch.stack([g.norm().square() for g in grads]).sum().reshape(1)

    monkeypatch.setattr(reference, "get_global_gradient_norm", squared_norm_float64)
    entry = zij.get_entry("AliG")
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = zij.AliG(ours, eps=1e-6, **kwargs)
    ref = pytorch_optimizer.AliG(theirs, foreach=False, **kwargs)
    for step in range(50):
        _drive(opt, ours, 1)
        _drive(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_alig_first_steps_by_hand():
    """f = 0.5 ||p||^2 at p = (3, 4): f = 12.5, ||g||^2 = 25, gamma = min(12.5 / (25 + delta), eta)."""
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AliG([p], max_lr=0.4, momentum=0.5, eps=1e-5)
    loss = 0.5 * p.square().sum()
    loss.backward()
    opt.step(lambda: loss)
    gamma = min(12.5 / (25 + 1e-5), 0.4)
    assert gamma == 0.4
    b = -gamma * torch.tensor([3.0, 4.0], dtype=torch.float64)
    expected = torch.tensor([3.0, 4.0], dtype=torch.float64) * (1 - gamma) + 0.5 * b
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)
    # second step: the uncapped step 0.5 ||p||^2 / (||p||^2 + delta) < 0.5 sets gamma
    opt.zero_grad()
    loss = 0.5 * p.square().sum()
    loss.backward()
    g = p.detach().clone()
    opt.step(lambda: loss)
    gamma2 = min(float(loss.detach()) / (float(g.square().sum()) + 1e-5), 0.4)
    b = 0.5 * b - gamma2 * g
    torch.testing.assert_close(p.detach(), expected - gamma2 * g + 0.5 * b, rtol=0, atol=1e-14)
    assert opt.param_groups[0]["step_size"] == pytest.approx(gamma2, rel=1e-15)


def test_alig_projection_runs_at_construction_and_after_each_step():
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)

    def project():
        p.data.clamp_(max=2.5)

    opt = zij.AliG([p], max_lr=0.1, projection_fn=project)
    assert p.max() == 2.5
    loss = (p - 5).square().sum()
    loss.backward()
    opt.step(lambda: loss)
    assert p.max() <= 2.5


@pytest.mark.parametrize("name,kwargs", [("AliG", {"max_lr": 0.1}), ("SPS", {"eta_max": 0.1})])
def test_closure_is_required(name, kwargs):
    p = torch.ones(3, requires_grad=True)
    opt = getattr(zij, name)([p], **kwargs)
    p.grad = torch.ones(3)
    with pytest.raises(ValueError, match="closure"):
        opt.step()


@pytest.mark.parametrize("name,kwargs", [("AliG", {"max_lr": 0.1}), ("SPS", {"eta_max": 0.1})])
@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_every_dimension_steps_on_a_positive_loss(name, kwargs, ndim):
    shape = (2, 3, 2, 2)[:ndim]
    p = torch.linspace(-1, 1, math.prod(shape)).reshape(shape).add(2.0).requires_grad_()
    before = p.detach().clone()
    opt = getattr(zij, name)([p], **kwargs)
    for _ in range(3):
        opt.zero_grad()
        loss = p.square().sum()
        loss.backward()
        opt.step(lambda: loss)
    assert torch.isfinite(p).all() and p.square().sum() < before.square().sum()


def test_sps_max_steps_by_hand():
    """gamma = min((f - f*)_+ / (c ||g||^2 + eps), eta_max): f = 12.5, ||g||^2 = 25, c = 0.5 gives 1, capped."""
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SPS([p], c=0.5, eta_max=0.8, f_star=0.5, eps=0.0)
    loss = 0.5 * p.square().sum()
    loss.backward()
    opt.step(lambda: loss)
    assert opt.param_groups[0]["step_size"] == 0.8  # (12.5 - 0.5) / 12.5 = 0.96 > 0.8
    torch.testing.assert_close(p.detach(), torch.tensor([0.6, 0.8], dtype=torch.float64), rtol=0, atol=1e-15)
    opt.zero_grad()
    loss = 0.5 * p.square().sum()  # 0.5, at f*: the Polyak step is 0
    loss.backward()
    opt.step(lambda: loss)
    assert opt.param_groups[0]["step_size"] == 0.0
    torch.testing.assert_close(p.detach(), torch.tensor([0.6, 0.8], dtype=torch.float64), rtol=0, atol=1e-15)


def test_sps_smoothing_caps_growth_per_step():
    """With smooth, gamma_t <= gamma^(1/n) gamma_{t-1}, starting from init_step_size."""
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SPS([p], smooth=True, gamma=2.0, n_batches_per_epoch=4, init_step_size=0.01)
    growth = 2.0 ** 0.25
    previous = 0.01
    for _ in range(6):
        opt.zero_grad()
        loss = 0.5 * p.square().sum()
        loss.backward()
        polyak = float(loss) / (0.5 * float(p.grad.square().sum()) + 1e-8)
        opt.step(lambda: loss)
        expected = min(polyak, growth * previous)
        assert opt.param_groups[0]["step_size"] == pytest.approx(expected, rel=1e-14)
        previous = expected
    assert previous == pytest.approx(0.01 * growth**6, rel=1e-12)


def test_maximize_uses_the_negated_loss():
    for name, kwargs in (("AliG", {"max_lr": 0.5}), ("SPS", {"eta_max": 0.5})):
        a = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
        b = a.detach().clone().requires_grad_()
        opt_a = getattr(zij, name)([a], **kwargs)
        opt_b = getattr(zij, name)([b], maximize=True, **kwargs)
        for _ in range(3):
            for p, opt, sign in ((a, opt_a, 1.0), (b, opt_b, -1.0)):
                opt.zero_grad()
                loss = sign * p.square().sum()
                loss.backward()
                opt.step(lambda: loss)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
