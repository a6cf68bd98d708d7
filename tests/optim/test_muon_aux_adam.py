"""MuonWithAuxAdam: parity with the official code (muon-optimizer), the routing, and Newton-Schulz's band.

The official ``SingleDeviceMuonWithAuxAdam`` needs every group to carry ``use_muon`` and its
``step`` takes no closure, so the shared parity check cannot drive it; these tests do.
"""

from __future__ import annotations

import pytest
import torch

import zij
from zij.blocks import newton_schulz

from _problem_helpers import mlp_loss

muon = pytest.importorskip("muon", reason="pip install -e '.[test]' installs muon-optimizer")


def _mlp(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 4), (8,), (3, 8), (3,)]
    return [(torch.randn(s, generator=g, dtype=torch.float64) * 0.5).to(dtype).requires_grad_() for s in shapes]


def _groups(params):
    return [p for p in params if p.ndim >= 2], [p for p in params if p.ndim < 2]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_parity_with_official_code(dtype, weight_decay):
    """50 steps on the MLP (a tall and a wide matrix, two biases) equal the official code's.

    The official code always runs Newton-Schulz and the shape factor in bfloat16, which is
    ``ns_dtype``'s default; the operations are the same, one for one, in the same dtypes.
    """
    ours, theirs = _mlp(dtype=dtype), _mlp(dtype=dtype)
    m_theirs, o_theirs = _groups(theirs)
    opt = zij.MuonWithAuxAdam(ours, lr=0.05, momentum=0.9, weight_decay=weight_decay,
                              adam_lr=0.01, adam_betas=(0.8, 0.95), adam_eps=1e-10, adam_weight_decay=weight_decay)
    ref = muon.SingleDeviceMuonWithAuxAdam([
        dict(params=m_theirs, lr=0.05, momentum=0.9, weight_decay=weight_decay, use_muon=True),
        dict(params=o_theirs, lr=0.01, betas=(0.8, 0.95), eps=1e-10, weight_decay=weight_decay, use_muon=False),
    ])
    for step in range(50):
        for o, ps in ((opt, ours), (ref, theirs)):
            o.zero_grad()
            mlp_loss(ps).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_one_matrix_against_hand_written_official_update():
    """One step on one tall matrix in float64 equals the official update written out by hand."""
    torch.manual_seed(0)
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(6, 3, dtype=torch.float64)
    p0 = p.detach().clone()
    opt = zij.MuonWithAuxAdam([p], lr=0.1, momentum=0.9, weight_decay=0.2, ns_dtype=None)
    for k in range(2):  # two steps with gradients g and 2g
        p.grad = g * (k + 1)
        opt.step()
    buf = torch.zeros_like(g)
    x = p0.clone()
    for k in range(2):
        grad = g * (k + 1)
        buf = 0.9 * buf + 0.1 * grad
        n = 0.1 * grad + 0.9 * buf
        y = n.T / (torch.linalg.norm(n) + 1e-7)  # tall: iterate on the transpose
        for _ in range(5):
            a = y @ y.T
            y = 3.4445 * y + (-4.7750 * a + 2.0315 * a @ a) @ y
        update = y.T * (6 / 3) ** 0.5
        x = x * (1 - 0.1 * 0.2) - 0.1 * update
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(16, 16), (8, 32), (40, 10)])
def test_orthogonalized_update_has_singular_values_near_one(shape):
    """The update before the shape factor is U S' V^T with S' in Newton-Schulz's band around one.

    Each iteration maps a singular value s to a s + b s^3 + c s^5; from the normalized start its
    fixed band for Muon's coefficients is about [0.68, 1.13] (Jordan: S' ~ Uniform(0.5, 1.5)).
    """
    torch.manual_seed(0)
    k = min(shape)
    u, _ = torch.linalg.qr(torch.randn(shape[0], k, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(shape[1], k, dtype=torch.float64))
    # singular values spread over a factor of 30 (the iteration lifts those above about
    # 1e-3 of the Frobenius norm into its band within five steps)
    g = u @ torch.diag(torch.logspace(0, -1.5, k, dtype=torch.float64)) @ v.T * 7.0
    p = torch.zeros(*shape, dtype=torch.float64, requires_grad=True)
    opt = zij.MuonWithAuxAdam([p], lr=1.0, momentum=0.0, nesterov=False, ns_dtype=None)
    p.grad = g
    opt.step()
    rows, cols = shape
    update = -p.detach() / max(1.0, rows / cols) ** 0.5
    s = torch.linalg.svdvals(update)
    assert s.min() > 0.6 and s.max() < 1.2, s
    # the singular vectors are those of the gradient: U^T O V is diagonal
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    core = u.T @ update @ vh.T
    assert torch.allclose(core, torch.diag(torch.diagonal(core)), atol=1e-8)
    torch.testing.assert_close(update, newton_schulz(g), rtol=0, atol=1e-12)


def test_routing_by_shape_and_by_flag():
    w, b = torch.randn(4, 3, requires_grad=True), torch.randn(4, requires_grad=True)
    kernel = torch.randn(5, 2, 3, 3, requires_grad=True)
    opt = zij.MuonWithAuxAdam([{"params": [w, b, kernel]}])
    (w.sum() + b.sum() + kernel.square().sum()).backward()
    opt.step()
    assert set(opt.state[w]) == {"step", "momentum_buffer"}
    assert set(opt.state[kernel]) == {"step", "momentum_buffer"}
    assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq"}
    embedding = torch.randn(10, 4, requires_grad=True)
    opt = zij.MuonWithAuxAdam([{"params": [embedding], "use_muon": False, "adam_lr": 0.1}])
    embedding.grad = torch.ones_like(embedding)
    opt.step()
    assert set(opt.state[embedding]) == {"step", "exp_avg", "exp_avg_sq"}
    with pytest.raises(ValueError, match="use_muon"):
        zij.MuonWithAuxAdam([{"params": [b], "use_muon": True}])
    with pytest.raises(ValueError, match="use_muon"):
        zij.MuonWithAuxAdam([{"params": [w], "use_muon": "yes"}])


def test_kernel_is_flattened_to_rows():
    """A 4-D kernel steps as the matrix of its flattened rows."""
    torch.manual_seed(0)
    kernel = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    matrix = kernel.detach().reshape(4, -1).clone().requires_grad_()
    grad = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    opts = [zij.MuonWithAuxAdam([t], lr=0.1, ns_dtype=None) for t in (kernel, matrix)]
    for _ in range(3):
        kernel.grad, matrix.grad = grad.clone(), grad.reshape(4, -1).clone()
        for o in opts:
            o.step()
    torch.testing.assert_close(kernel.detach().reshape(4, -1), matrix.detach(), rtol=0, atol=0)


def test_adam_part_is_adamw():
    """Tensors routed to AdamW step exactly like torch's AdamW (up to lerp's rounding)."""
    torch.manual_seed(0)
    a = torch.randn(7, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = zij.MuonWithAuxAdam([a], adam_lr=0.01, adam_betas=(0.9, 0.99), adam_eps=1e-8, adam_weight_decay=0.1)
    ref = torch.optim.AdamW([b], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for _ in range(20):
        g = torch.randn(7, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
