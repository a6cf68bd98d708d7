"""PolarGrad: QDWH against the SVD's polar factor, the nuclear-norm step, both orders, Newton-Schulz.

The official code (timlautk/polargrad) is not packaged, so these tests check the rule of its
PolarGrad class by hand with an exact polar factor, and QDWH by its defining properties.
"""

from __future__ import annotations

import pytest
import torch

import zij
from zij.second_order.polargrad import _qdwh_weights, qdwh_polar


def _matrix(shape, cond=1e6, seed=0):
    g = torch.Generator().manual_seed(seed)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k, generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.logspace(0, -torch.log10(torch.tensor(cond)).item(), k, dtype=torch.float64)) @ v.T * 3


def _polar(x):
    u, _, vh = torch.linalg.svd(x, full_matrices=False)
    return u @ vh


def test_qdwh_weights_reach_halley_within_six_iterations():
    """From l0 = float64's unit roundoff, QDWH needs at most six iterations (Nakatsukasa et al., 2010)."""
    eps = torch.finfo(torch.float64).eps
    weights = _qdwh_weights(eps, 5 * eps, 100)
    assert len(weights) <= 6
    a, b, c = weights[-1]
    assert abs(a - 3) < 1e-3 and abs(b - 1) < 1e-3 and abs(c - 3) < 1e-3
    assert weights[0][2] > 100 and weights[-1][2] < 100  # QR steps first, Cholesky steps last


@pytest.mark.parametrize("shape", [(12, 5), (5, 12), (8, 8)])
def test_qdwh_converges_to_the_polar_factor(shape):
    x = _matrix(shape, cond=1e4)
    u = qdwh_polar(x, 10) if shape[0] >= shape[1] else qdwh_polar(x.T, 10).T
    torch.testing.assert_close(u, _polar(x), rtol=0, atol=1e-11)


def test_two_qdwh_steps_keep_singular_vectors_and_order():
    """The official default (two iterations from l0 = unit roundoff) is a rational function of X:
    it keeps the singular vectors and maps the singular values into (0, 1], not necessarily in order
    (the dynamic weights map [l, 1] into [l', 1]), leaving many far from one: with the
    official default the step is far from an exact polar factor."""
    x = _matrix((16, 8), cond=100.0)
    u2 = qdwh_polar(x, 2)
    left, s, right = torch.linalg.svd(x, full_matrices=False)
    core = left.T @ u2 @ right.T
    torch.testing.assert_close(core, torch.diag(torch.diagonal(core)), rtol=0, atol=1e-10)
    mapped = torch.diagonal(core)
    assert (mapped > 0).all() and (mapped <= 1 + 1e-10).all() and mapped.min() < 0.5, mapped


def test_momentum_first_step_is_nuclear_norm_times_polar_factor():
    """With converged QDWH, D_t = ||M_t||_* U_t V_t^T (two steps, hand-computed)."""
    g1, g2 = _matrix((6, 4), cond=10.0, seed=1), _matrix((6, 4), cond=10.0, seed=2)
    p = torch.zeros(6, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.PolarGrad([p], lr=0.1, momentum=0.8, weight_decay=0.5, inner_steps=20)
    x, m = torch.zeros(6, 4, dtype=torch.float64), torch.zeros(6, 4, dtype=torch.float64)
    for g in (g1, g2):
        p.grad = g
        opt.step()
        m = 0.8 * m + 0.2 * g
        x = (1 - 0.1 * 0.5) * x - 0.1 * torch.linalg.svdvals(m).sum() * _polar(m)
    torch.testing.assert_close(p.detach(), x, rtol=1e-10, atol=1e-12)


def test_polar_first_averages_polar_factors():
    g1, g2 = _matrix((3, 7), cond=10.0, seed=3), _matrix((3, 7), cond=10.0, seed=4)
    p = torch.zeros(3, 7, dtype=torch.float64, requires_grad=True)
    opt = zij.PolarGrad([p], lr=0.1, momentum=0.8, polar_first=True, inner_steps=20)
    x, m = torch.zeros(3, 7, dtype=torch.float64), torch.zeros(3, 7, dtype=torch.float64)
    for g in (g1, g2):
        p.grad = g
        opt.step()
        m = 0.8 * m + 0.2 * _polar(g)
        x = x - 0.1 * torch.linalg.svdvals(g).sum() * m
    torch.testing.assert_close(p.detach(), x, rtol=1e-10, atol=1e-12)


def test_newton_schulz_method_uses_the_official_coefficients():
    g = _matrix((5, 9), cond=10.0)
    p = torch.zeros(5, 9, dtype=torch.float64, requires_grad=True)
    opt = zij.PolarGrad([p], lr=1.0, momentum=0.0, method="ns", inner_steps=5, ns_dtype=None)
    p.grad = g
    opt.step()
    y = g / (g.norm() + 1e-7)
    for _ in range(5):
        a = y @ y.T
        y = 3.4445 * y + (-4.7750 * a + 2.031 * a @ a) @ y
    torch.testing.assert_close(-p.detach(), (g * y).sum() * y, rtol=1e-12, atol=1e-12)


def test_matrices_only():
    with pytest.raises(ValueError, match="matrices only"):
        zij.PolarGrad([torch.zeros(3, requires_grad=True)])
