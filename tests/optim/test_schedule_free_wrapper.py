"""Schedule-Free wrapper: parity with schedulefree's ScheduleFreeWrapper, the average it defines, train/eval, resume."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("ScheduleFreeWrapper")
# schedulefree's wrapper keeps z in the base optimizer's own state, so a base that creates its state when that
# is empty (Adam, RMSprop: KeyError 'exp_avg') cannot run under it; SGD and Adagrad (eager state) can.
BASES = [
    (torch.optim.SGD, {"lr": 0.05}),
    (torch.optim.SGD, {"lr": 0.02, "momentum": 0.5, "nesterov": True, "weight_decay": 0.01}),
    (torch.optim.Adagrad, {"lr": 0.05}),
]
SETTINGS = [{"momentum": 0.9}, {"momentum": 0.8, "weight_decay_at_y": 0.05, "r": 1.0, "weight_lr_power": 1.0}]


@pytest.mark.parametrize("base", BASES, ids=["SGD", "SGD-nesterov", "Adagrad"])
@pytest.mark.parametrize("kwargs", SETTINGS, ids=["default", "decay-r"])
def test_parity_with_schedulefree(base, kwargs):
    """schedulefree's wrapper starts in eval mode (train() first) and keeps z in the base optimizer's state;
    the numbers must agree in both modes. A learning-rate warm-up by a scheduler exercises lr_max."""
    schedulefree = pytest.importorskip("schedulefree", reason="pip install -e '.[test]'")
    cls, base_kwargs = base
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.ScheduleFreeWrapper(cls(ours, **base_kwargs), **kwargs)
    ref = schedulefree.ScheduleFreeWrapper(cls(theirs, **base_kwargs), **kwargs)
    ref.train()
    warmups = [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=10) for o in (opt, ref.base)]
    for step in range(40):
        train_mlp(ENTRY, opt, ours, 1)
        train_mlp(ENTRY, ref, theirs, 1)
        for scheduler in warmups:
            scheduler.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")
    opt.eval()
    ref.eval()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_eval_point_is_the_average_of_the_base_sequence():
    """theta_{t+1} = (1 - c) theta_t + c z_{t+1} with c = lr^2 / sum lr^2, from the z kept in the state."""
    params = mlp_params(ENTRY)
    opt = zij.ScheduleFreeWrapper(torch.optim.SGD(params, lr=0.05), momentum=0.9)
    theta = [p.detach().clone() for p in params]
    for t in range(1, 11):
        train_mlp(ENTRY, opt, params, 1)
        c = 1 / t  # constant lr: equal weights
        theta = [(1 - c) * x + c * opt.state[p]["z"] for x, p in zip(theta, params)]
    opt.eval()
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), x, rtol=1e-10, atol=1e-12)
    opt.train()
    for p, x in zip(params, theta):
        torch.testing.assert_close(p.detach(), 0.1 * opt.state[p]["z"] + 0.9 * x, rtol=1e-10, atol=1e-12)


def test_base_sequence_is_plain_sgd_on_gradients_at_y():
    """z_{t+1} = z_t - lr g(y_t): the base optimizer sees only z and the gradient."""
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ScheduleFreeWrapper(torch.optim.SGD([p], lr=0.1), momentum=0.5)
    z = p.detach().clone()
    for _ in range(5):
        opt.zero_grad()
        (p.square().sum()).backward()
        g = p.grad.detach().clone()
        opt.step()
        z = z - 0.1 * g
        torch.testing.assert_close(opt.state[p]["z"], z, rtol=0, atol=1e-15)


def test_eval_mode_refuses_to_step_and_switching_is_idempotent():
    params = mlp_params(ENTRY)
    opt = zij.ScheduleFreeWrapper(torch.optim.SGD(params, lr=0.05))
    train_mlp(ENTRY, opt, params, 3)
    opt.eval()
    once = [p.detach().clone() for p in params]
    opt.eval()
    assert all(torch.equal(a, b) for a, b in zip(once, params))
    with pytest.raises(RuntimeError, match="train"):
        train_mlp(ENTRY, opt, params, 1)
    opt.train()
    train_mlp(ENTRY, opt, params, 1)
    assert opt.param_groups[0]["sf_k"] == 4


def test_resume_keeps_base_state_and_counters():
    straight = mlp_params(ENTRY)
    opt = zij.ScheduleFreeWrapper(torch.optim.Adam(straight, lr=0.01))
    train_mlp(ENTRY, opt, straight, 10)
    resumed = mlp_params(ENTRY)
    opt = zij.ScheduleFreeWrapper(torch.optim.Adam(resumed, lr=0.01))
    train_mlp(ENTRY, opt, resumed, 5)
    saved = opt.state_dict()
    fresh = zij.ScheduleFreeWrapper(torch.optim.Adam(resumed, lr=0.01))
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["sf_k"] == 5 and "exp_avg" in fresh.optimizer.state[resumed[0]]
    train_mlp(ENTRY, fresh, resumed, 5)
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)
