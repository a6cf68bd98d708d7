"""Schedule-Free SGD and RAdam: parity with the schedulefree package, the average they define, train/eval."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

CASES = {
    "ScheduleFreeSGD": ("SGDScheduleFree", [
        {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.01, "warmup_steps": 5},
        {"lr": 0.2, "momentum": 0.8, "r": 1.0, "weight_lr_power": 1.0},
    ]),
    "ScheduleFreeRAdam": ("RAdamScheduleFree", [
        {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
        {"lr": 0.02, "betas": (0.8, 0.99), "r": 0.5, "silent_sgd_phase": False},
    ]),
}
PARAMS = [(name, ref, kw) for name, (ref, kws) in CASES.items() for kw in kws]


@pytest.mark.parametrize("name,reference,kwargs", PARAMS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(PARAMS)])
@pytest.mark.parametrize("foreach", [False, True])
def test_parity_with_schedulefree(name, reference, kwargs, foreach):
    """schedulefree's classes start in eval mode: train() first. Its weight decay and (RAdam) normalization
    write into p.grad; we compare the weights only, in train mode (y) and after eval() (x)."""
    schedulefree = pytest.importorskip("schedulefree", reason="pip install -e '.[test]'")
    entry = zij.get_entry(name)
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = entry.cls(ours, foreach=foreach, **kwargs)
    ref = getattr(schedulefree, reference)(theirs, foreach=foreach, **kwargs)
    ref.train()
    for step in range(40):
        train_mlp(entry, opt, ours, 1)
        train_mlp(entry, ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
    opt.eval()
    ref.eval()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_eval_point_is_the_average_it_defines(name):
    """theta_{t+1} = (1 - c) theta_t + c z_{t+1}, tracked by hand from z, equals the eval-mode parameters;
    train() goes back to y = (1 - beta) z + beta theta."""
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    beta = opt.interpolation(opt.param_groups[0])
    theta = [p.detach().clone() for p in params]
    for _ in range(12):
        train_mlp(entry, opt, params, 1)
        c = opt.param_groups[0]["ckp1"]
        theta = [(1 - c) * x + c * opt.state[p]["z"] for x, p in zip(theta, params)]
    opt.eval()
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), x, rtol=1e-10, atol=1e-12)
    opt.train()
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), (1 - beta) * opt.state[p]["z"] + beta * x, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_eval_mode_refuses_to_step_and_switching_is_idempotent(name):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    train_mlp(entry, opt, params, 6)
    opt.eval()
    once = [p.detach().clone() for p in params]
    opt.eval()
    assert all(torch.equal(a, b) for a, b in zip(once, params))
    with pytest.raises(RuntimeError, match="train"):
        train_mlp(entry, opt, params, 1)
    opt.train()
    train_mlp(entry, opt, params, 1)
    assert opt.param_groups[0]["k"] == 7


def test_sgd_first_step_by_hand():
    """t = 1: eta_1 = lr / T, c_2 = 1 (the only weight), so y_2 = z_1 + lr_1 (b (1 - 1) - 1) g = y_1 - eta_1 g
    and z_2 = z_1 - eta_1 g (z_1 = y_1 = theta_1)."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ScheduleFreeSGD([p], lr=0.5, warmup_steps=4)
    p.grad = torch.tensor([0.25, 1.0], dtype=torch.float64)
    opt.step()
    expected = torch.tensor([1.0 - 0.125 * 0.25, -2.0 - 0.125])
    torch.testing.assert_close(p.detach(), expected.double(), rtol=1e-15, atol=0)
    torch.testing.assert_close(opt.state[p]["z"], expected.double(), rtol=1e-15, atol=0)


def test_radam_silent_phase_moves_nothing_then_steps():
    """rho_t <= 4 for t <= 4 with beta2 = 0.999 (rho_5 = 5.0...): the first four steps change no weight."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ScheduleFreeRAdam([p], lr=0.1)
    for t in range(1, 6):
        p.grad = torch.tensor([0.25, 1.0], dtype=torch.float64)
        opt.step()
        moved = not torch.equal(p.detach(), torch.tensor([1.0, -2.0], dtype=torch.float64))
        assert moved == (t == 5), t
    assert opt.param_groups[0]["ckp1"] == 1.0  # the first nonzero weight is the whole sum
