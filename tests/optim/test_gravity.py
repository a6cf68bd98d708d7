"""Gravity: parity with pytorch-optimizer's Gravity (both velocities drawn from the same seeded generator), a
hand-computed step, and the random initial velocity."""

import sys
from pathlib import Path

import pytest
import torch

import zij

sys.path.insert(0, str(Path(__file__).parent))
from _problem_helpers import mlp_params, train_mlp  # noqa: E402

from zij._registry import get_entry  # noqa: E402


@pytest.mark.parametrize("foreach", [False, True])
def test_parity_with_pytorch_optimizer_when_seeded(foreach):
    # The shared parity test cannot seed torch's generator before each optimizer's first step (where both draw the
    # initial velocity, parameter by parameter in order), so this one does.
    pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
    entry = get_entry("Gravity")
    kwargs = {"lr": 0.05, "alpha": 0.01, "beta": 0.8}
    runs = []
    for cls, extra in ((zij.Gravity, {"foreach": foreach}), (pytorch_optimizer.Gravity, {})):
        params = mlp_params(entry)
        opt = cls(params, **kwargs, **extra)
        history = []
        torch.manual_seed(1234)
        for _ in range(50):
            train_mlp(entry, opt, params, 1)
            history.append([p.detach().clone() for p in params])
        runs.append(history)
    for step, (ours, theirs) in enumerate(zip(*runs), start=1):
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step}: {m}")


def test_golden_step_from_zero_velocity():
    # alpha = 0: V_0 = 0.  eta = 0.1, beta = 0.9, theta_0 = (1, -2), g = (0.5, -1):
    # M = 1 / max|g| = 1, zeta = g / (1 + g^2) = (0.5 / 1.25, -1 / 2) = (0.4, -0.5);
    # beta_1 = (0.9 * 1 + 1) / 3 = 0.6333...;  V = (1 - beta_1) zeta = (0.1466667, -0.1833333);
    # theta = theta - 0.1 V = (0.9853333, -1.9816667)
    # t=2, g = (2, 0): M = 1/2, g / M = (4, 0), zeta = (2 / 17, 0);  beta_2 = (1.8 + 1) / 4 = 0.7;
    # V = 0.7 (0.1466667, -0.1833333) + 0.3 (0.1176471, 0) = (0.1379608, -0.1283333);
    # theta = (0.9853333 - 0.0137961, -1.9816667 + 0.0128333) = (0.9715373, -1.9688333)
    p = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.Gravity([p], lr=0.1, alpha=0.0, beta=0.9)
    want = [(0.9853333333, -1.9816666667), (0.9715372549, -1.9688333333)]
    for g, expected in zip([[0.5, -1.0], [2.0, 0.0]], want):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(expected, dtype=torch.float64), rtol=0, atol=1e-9)


def test_initial_velocity_is_normal_with_std_alpha_over_lr():
    # A zero gradient gives zeta = 0 (0 / inf), so after the first step V_1 = beta_1 V_0 with beta_1 = (beta + 1) / 3.
    torch.manual_seed(0)
    p = torch.zeros(20000, dtype=torch.float64, requires_grad=True)
    lr, alpha, beta = 0.1, 0.5, 0.9
    opt = zij.Gravity([p], lr=lr, alpha=alpha, beta=beta)
    p.grad = torch.zeros_like(p)
    opt.step()
    v0 = opt.state[p]["v"] / ((beta + 1) / 3)
    assert abs(v0.mean().item()) < 0.1 and abs(v0.std().item() - alpha / lr) < 0.1
    torch.testing.assert_close(p.detach(), -lr * opt.state[p]["v"], rtol=0, atol=1e-15)


def test_large_gradients_are_damped():
    # zeta = g / (1 + (g max|g|)^2) never exceeds 1 / (2 max|g|) in magnitude: the largest entries move least.
    g = torch.tensor([100.0, 1.0, 0.01], dtype=torch.float64)
    zeta = zij.first_order.gravity.gravity_zeta(g)
    assert zeta.abs().max() <= 1 / (2 * g.abs().max()) + 1e-18
    assert zeta[0] < zeta[1] < zeta[2]  # 1e-6, 1e-4 and 5e-3: the order of the gradients reversed


def test_initial_velocity_uses_the_built_rate_under_a_warmup_schedule():
    # A warm-up schedule sets lr to 0 before the first step; the initial velocity's scale is alpha over
    # the rate the group was built with (its initial_lr), not a division by zero.
    torch.manual_seed(0)
    p = torch.zeros(20000, dtype=torch.float64, requires_grad=True)
    opt = zij.Gravity([p], lr=0.1, alpha=0.5)
    zij.schedulers.WarmupCosine(opt, warmup_steps=5, total_steps=10)
    assert opt.param_groups[0]["lr"] == 0.0
    p.grad = torch.zeros_like(p)
    opt.step()
    v0 = opt.state[p]["v"] / ((0.9 + 1) / 3)
    assert abs(v0.std().item() - 0.5 / 0.1) < 0.1
    assert torch.equal(p.detach(), torch.zeros_like(p))  # lr 0: the step moves nothing
