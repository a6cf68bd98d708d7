"""DoG, LDoG and DoWG: hand-computed steps and the distance estimates' identities.

DoG and LDoG run parity with dog-optimizer in test_matrix.py. DoWG has no installable
reference (its repository is not on PyPI): its steps are checked by hand here."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

X0 = torch.tensor([3.0, -4.0], dtype=torch.float64)  # ||x0|| = 5
G = torch.tensor([0.5, 1.0], dtype=torch.float64)


def _step(opt, p, g):
    p.grad = g.clone()
    opt.step()


def test_dog_first_two_steps_by_hand():
    """eta_0 = reps (1 + ||x0||) / sqrt(eps + ||g||^2); then rbar_1 = max(rbar_0, ||x1 - x0||) = eta_0 ||g||."""
    p = X0.clone().requires_grad_()
    opt = zij.DoG([p], reps_rel=1e-2, eps=1e-8)
    _step(opt, p, G)
    g2 = G.dot(G).item()
    eta0 = 1e-2 * 6 / (1e-8 + g2) ** 0.5
    torch.testing.assert_close(p.detach(), X0 - eta0 * G, rtol=1e-15, atol=0)
    _step(opt, p, G)
    rbar1 = max(0.06, eta0 * g2**0.5)
    eta1 = rbar1 / (1e-8 + 2 * g2) ** 0.5
    torch.testing.assert_close(p.detach(), X0 - (eta0 + eta1) * G, rtol=1e-14, atol=0)
    assert opt.param_groups[0]["rbar"] == pytest.approx(rbar1, rel=1e-14)


def test_ldog_with_one_tensor_is_dog_and_init_eta_sets_the_first_step():
    a, b = X0.clone().requires_grad_(), X0.clone().requires_grad_()
    dog, ldog = zij.DoG([a], reps_rel=1e-3), zij.DoG([b], reps_rel=1e-3, layer_wise=True)
    for k in range(5):
        _step(dog, a, G * (k + 1))
        _step(ldog, b, G * (k + 1))
    assert torch.equal(a, b)
    c = X0.clone().requires_grad_()
    opt = zij.DoG([c], init_eta=0.1)
    _step(opt, c, G)
    torch.testing.assert_close(c.detach(), X0 - 0.1 * G, rtol=1e-15, atol=0)


def test_dowg_first_two_steps_by_hand():
    """rbar^2 = max(eps, 0) = eps, v = eps ||g||^2, eta = eps / (sqrt(v) + eps); then rbar^2 = ||x1 - x0||^2 if larger."""
    p = X0.clone().requires_grad_()
    opt = zij.DoWG([p], eps=1e-4)
    _step(opt, p, G)
    g2 = G.dot(G).item()
    v0 = 1e-4 * g2
    eta0 = 1e-4 / (v0**0.5 + 1e-4)
    torch.testing.assert_close(p.detach(), X0 - eta0 * G, rtol=1e-15, atol=0)
    _step(opt, p, 2 * G)
    r2 = max(1e-4, eta0**2 * g2)
    v1 = v0 + r2 * 4 * g2
    eta1 = r2 / (v1**0.5 + 1e-4)
    torch.testing.assert_close(p.detach(), X0 - eta0 * G - eta1 * 2 * G, rtol=1e-14, atol=0)
    assert opt.param_groups[0]["rt2"] == pytest.approx(r2, rel=1e-14)
    assert opt.param_groups[0]["vt"] == pytest.approx(v1, rel=1e-14)


@pytest.mark.parametrize("name,key", [("DoG", "rbar"), ("DoWG", "rt2")])
def test_distance_estimate_never_decreases_and_is_saved(name, key):
    entry = zij.get_entry(name)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    seen = []
    for _ in range(60):
        train_mlp(entry, opt, params, 1)
        seen.append(opt.param_groups[0][key])
    assert all(b >= a for a, b in zip(seen, seen[1:])) and seen[-1] > seen[0]
    fresh = entry.make(params, **entry.recipe)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0][key] == seen[-1]
