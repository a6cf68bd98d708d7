"""Dion: the official single-device update written out by hand, and its identities.

The official package (microsoft/dion) is not on PyPI, so these tests check the rule of
``dion_update`` in ``dion/dion_simple.py`` by hand and the identities the method rests on:
error feedback at full rank, convergence of the full-rank update to Muon's polar factor,
orthonormal left factors, and rank-r updates.
"""

from __future__ import annotations

import pytest
import torch

import zij


def _q0(cols, rank, seed=0):
    return torch.randn((cols, rank), generator=torch.Generator().manual_seed(seed), dtype=torch.float32).double()


def test_two_steps_against_hand_written_official_update():
    torch.manual_seed(0)
    p = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(6, 4, dtype=torch.float64) for _ in range(2)]
    x = p.detach().clone()
    opt = zij.Dion([p], lr=0.1, mu=0.9, weight_decay=0.2, rank=2, epsilon=1e-8, seed=3)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    m, q = torch.zeros(6, 4, dtype=torch.float64), _q0(4, 2, seed=3)
    for g in grads:
        m = m + g
        pp = torch.linalg.qr(m @ q)[0]
        r = m.T @ pp
        m = m - 0.1 * pp @ r.T
        q = r / (r.norm(dim=0, keepdim=True) + 1e-8)
        x = (1 - 0.1 * 0.2) * x - 0.1 * (6 / 4) ** 0.5 * pp @ q.T
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["momentum"], m, rtol=1e-12, atol=1e-12)
    assert opt.state[p]["Q"].shape == (4, 2)


def _updates(shape, rank, steps, mu=0.95):
    """The applied updates P_t Q_t^T of ``steps`` steps with one constant gradient of distinct singular values."""
    torch.manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k, dtype=torch.float64))
    g = u @ torch.diag(torch.linspace(3.0, 0.5, k, dtype=torch.float64)) @ v.T
    p = torch.zeros(*shape, dtype=torch.float64, requires_grad=True)
    opt = zij.Dion([p], lr=1.0, mu=mu, weight_decay=0.0, rank=rank)
    scale = (shape[0] / shape[1]) ** 0.5
    out = []
    for _ in range(steps):
        before = p.detach().clone()
        p.grad = g.clone()
        opt.step()
        out.append((before - p.detach()) / scale)
    return g, opt, p, out


@pytest.mark.parametrize("shape", [(6, 10), (10, 6)])
def test_full_rank_update_converges_to_the_polar_factor(shape):
    """At full rank the warm-started subspace iteration converges, and P Q^T becomes U V^T (Muon's target)."""
    g, _, _, updates = _updates(shape, rank=max(shape), steps=60)
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    torch.testing.assert_close(updates[-1], u @ vh, rtol=0, atol=1e-6)
    s = torch.linalg.svdvals(updates[-1])
    torch.testing.assert_close(s, torch.ones_like(s), rtol=0, atol=1e-6)


def test_full_rank_error_feedback_keeps_mu_times_the_momentum():
    """With P P^T = I (full rank, d_out <= d_in) the error feedback leaves M_t = mu B_t."""
    _, opt, p, _ = _updates((5, 8), rank=5, steps=1, mu=0.8)
    torch.testing.assert_close(opt.state[p]["momentum"], 0.8 * p.grad, rtol=1e-12, atol=1e-12)


def test_low_rank_update_has_rank_r_and_error_feedback_keeps_the_rest():
    """A rank-3 update has rank 3; the momentum keeps mu times its part in span(P) and all the rest."""
    torch.manual_seed(0)
    m0 = torch.randn(12, 9, dtype=torch.float64)
    g = torch.randn(12, 9, dtype=torch.float64)
    p = torch.zeros(12, 9, dtype=torch.float64, requires_grad=True)
    opt = zij.Dion([p], lr=1.0, mu=0.7, weight_decay=0.0, rank=3)
    p.grad = m0
    opt.step()
    m1 = opt.state[p]["momentum"].clone()
    before = p.detach().clone()
    p.grad = g
    opt.step()
    update = before - p.detach()
    s = torch.linalg.svdvals(update)
    assert (s[3:] < 1e-10).all() and (s[:3] > 1e-3).all(), s
    # P spans the column space of the update; M_2 = B - 0.3 P P^T B with B = M_1 + G
    u = torch.linalg.svd(update)[0][:, :3]
    b = m1 + g
    torch.testing.assert_close(opt.state[p]["momentum"], b - 0.3 * u @ u.T @ b, rtol=1e-10, atol=1e-10)


def test_routing_and_rank_cap():
    w, b = torch.randn(4, 30, requires_grad=True), torch.randn(4, requires_grad=True)
    kernel = torch.randn(5, 2, 3, 3, requires_grad=True)
    opt = zij.Dion([w, b, kernel], rank=16)
    (w.sum() + b.sum() + kernel.square().sum()).backward()
    opt.step()
    assert opt.state[w]["Q"].shape == (30, 4) and opt.state[kernel]["Q"].shape == (18, 5)
    assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq"}
    with pytest.raises(ValueError, match="use_dion"):
        zij.Dion([{"params": [b], "use_dion": True}])
    embedding = torch.randn(10, 4, requires_grad=True)
    opt = zij.Dion([{"params": [embedding], "use_dion": False}])
    embedding.grad = torch.ones_like(embedding)
    opt.step()
    assert "Q" not in opt.state[embedding]


def test_adamw_fallback_uses_the_shared_epsilon_and_decay():
    """Vectors step like torch's AdamW with Dion's lr, weight_decay and epsilon, as in the official code."""
    a = torch.randn(7, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = zij.Dion([a], lr=0.01, weight_decay=0.1, epsilon=1e-8, adam_betas=(0.9, 0.99))
    ref = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for _ in range(10):
        g = torch.randn(7, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
