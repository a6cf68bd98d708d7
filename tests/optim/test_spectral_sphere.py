"""SpectralSphere (SSO): retraction onto the sphere, tangency of the step, the matrix sign, one step by hand.

The official sso.py is not packaged and pytorch-optimizer's SpectralSphere is a different variant
(no retraction, no radius), so these tests check the official rule by its defining properties.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from zij.second_order.spectral_sphere import msign, solve_tangent_multiplier


def _top(w):
    u, s, vh = torch.linalg.svd(w)
    return s[0], u[:, :1], vh[:1].T


def test_msign_singular_values_are_near_one():
    g = torch.randn(12, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s = torch.linalg.svdvals(msign(g, 8, None))
    assert s.min() > 0.85 and s.max() < 1.15, s


def test_multiplier_makes_the_step_tangent():
    g = torch.Generator().manual_seed(1)
    m = torch.randn(6, 9, generator=g, dtype=torch.float64)
    m = m / m.norm()
    _, u, v = _top(torch.randn(6, 9, generator=g, dtype=torch.float64))
    theta = u @ v.T
    f0 = float((theta * msign(m, 8, None)).sum())
    lam = solve_tangent_multiplier(m, theta, init=0.0, tol=1e-9, max_iter=60, msign_steps=8, msign_dtype=None)
    f = float((theta * msign(m + lam * theta, 8, None)).sum())
    assert abs(f) <= 1e-9 < abs(f0)


@pytest.mark.parametrize("nesterov", [True, False])
def test_one_step_by_hand(nesterov):
    """Weight decay, retraction onto radius s sqrt(d_out/d_in), tangent step of length lr R (float64)."""
    g = torch.Generator().manual_seed(2)
    p = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(5, 8, generator=g, dtype=torch.float64) for _ in range(2)]
    w = p.detach().clone()
    kw = dict(lr=0.1, momentum=0.8, nesterov=nesterov, radius_scaler=1.5, power_iter_steps=200, weight_decay=0.3,
              solver_tol=1e-10, solver_max_iter=60, msign_dtype=None)
    opt = zij.SpectralSphere([p], **kw)
    b, lam = torch.zeros_like(w), 0.0
    radius = 1.5 * math.sqrt(5 / 8)
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
        w = (1 - 0.1 * 0.3) * w
        b = 0.8 * b + 0.2 * grad
        m = 0.2 * grad + 0.8 * b if nesterov else b
        m = m / m.norm()
        sigma, u, v = _top(w)
        w = radius / (sigma + 1e-8) * w
        theta = u @ v.T
        lam = solve_tangent_multiplier(m, theta, init=lam, tol=1e-10, max_iter=60, msign_steps=8, msign_dtype=None)
        step = msign(m + lam * theta, 8, None)
        assert abs(float((theta * step).sum())) <= 1e-10  # tangent to the sphere
        w = w - 0.1 * radius * step
    torch.testing.assert_close(p.detach(), w, rtol=1e-8, atol=1e-10)
    assert opt.state[p]["prev_lambda"] == pytest.approx(lam, rel=1e-6, abs=1e-9)


def test_weights_return_to_the_sphere_and_stay_near_it():
    """With lr = 0 a step is the retraction alone; with a small lr the tangent step keeps the norm to first order."""
    g = torch.Generator().manual_seed(3)
    p = (torch.randn(6, 4, generator=g) * 5).requires_grad_()
    opt = zij.SpectralSphere([p], lr=0.0, power_iter_steps=100)
    p.grad = torch.randn(6, 4, generator=g)
    opt.step()
    assert torch.linalg.matrix_norm(p.detach(), ord=2).item() == pytest.approx(math.sqrt(6 / 4), rel=1e-5)
    opt.param_groups[0]["lr"] = 1e-3
    for _ in range(5):
        p.grad = torch.randn(6, 4, generator=g)
        opt.step()  # the default: the matrix sign in bfloat16
    norm = torch.linalg.matrix_norm(p.detach(), ord=2).item()
    assert abs(norm - math.sqrt(6 / 4)) < 1e-3 * math.sqrt(6 / 4) * 5


def test_matrices_only():
    with pytest.raises(ValueError, match="matrices only"):
        zij.SpectralSphere([torch.zeros(3, requires_grad=True)])
