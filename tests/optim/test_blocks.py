"""The building blocks: hand-computed values, identities, and one tensor == a TensorList."""

from __future__ import annotations

import math

import pytest
import torch

from zij import blocks
from zij._tensorlist import TensorList

SHAPES = [(5, 3), (7,), (), (2, 3, 4)]


def tensors(seed: int, shapes=SHAPES, positive: bool = False):
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    return [t.abs() + 0.1 for t in out] if positive else out


# --- hand values ------------------------------------------------------------------------
def test_ema_hand_values():
    avg = torch.tensor([1.0, 2.0])
    blocks.ema_(avg, torch.tensor([3.0, -2.0]), 0.75)
    assert avg.tolist() == [1.5, 1.0]  # 0.75 * 1 + 0.25 * 3, 0.75 * 2 + 0.25 * -2


def test_ema_sq_hand_values():
    avg = torch.tensor([1.0, 0.0])
    blocks.ema_sq_(avg, torch.tensor([2.0, -4.0]), 0.5)
    assert avg.tolist() == [2.5, 8.0]


def test_bias_correction_and_debiased_beta():
    assert blocks.bias_correction(0.9, 1) == pytest.approx(0.1)
    assert blocks.bias_correction(0.5, 3) == 0.875
    assert blocks.debiased_beta(0.9, 1) == 0.0  # the first average is the first sample
    assert blocks.debiased_beta(0.5, 2) == pytest.approx(0.5 * 0.5 / 0.75)


def test_adam_direction_first_step_is_sign():
    """At t = 1, m_hat = g and v_hat = g^2, so the direction is g / (|g| + eps) = sign(g) for eps = 0."""
    g = torch.tensor([3.0, -0.5, 2e-3])
    m, v = torch.zeros(3), torch.zeros(3)
    blocks.ema_(m, g, 0.9)
    blocks.ema_sq_(v, g, 0.999)
    torch.testing.assert_close(blocks.adam_direction(m, v, step=1, beta1=0.9, beta2=0.999, eps=0.0), g.sign())


def test_decay_and_l2():
    p = torch.tensor([2.0, -4.0], dtype=torch.float64)
    assert blocks.l2_into_grad(torch.ones(2, dtype=torch.float64), p, 0.5).tolist() == [2.0, -1.0]
    assert blocks.decoupled_decay_(p, 0.1, 0.5).tolist() == [2.0 * 0.95, -4.0 * 0.95]


def test_atan2_direction_is_bounded_and_matches_adam_for_small_ratios():
    m = torch.tensor([1e-4, -1e-4, 10.0, -10.0])
    v = torch.tensor([1.0, 1.0, 1e-6, 1e-6])
    d = blocks.atan2_direction(m, v)
    assert d.abs().max() <= 4 / math.pi * math.pi / 2 + 1e-6  # |a atan2| <= a pi / 2 = 2
    torch.testing.assert_close(d[:2], m[:2] * 4 / math.pi, rtol=1e-6, atol=0)


def test_cautious_mask_hand_values():
    u = torch.tensor([1.0, -2.0, 3.0, 0.5])
    g = torch.tensor([2.0, 1.0, 1.0, -1.0])
    blocks.cautious_(u, g)  # keeps entries 0 and 2: scale 4 / (2 + 1)
    torch.testing.assert_close(u, torch.tensor([4 / 3, 0.0, 4.0, 0.0]))


def test_grams_takes_the_gradient_sign():
    u = torch.tensor([1.0, -2.0, 3.0])
    blocks.grams_(u, torch.tensor([-5.0, -1.0, 2.0]))
    assert u.tolist() == [-1.0, -2.0, 3.0]


def test_orthograd_is_orthogonal_to_the_weights_and_keeps_the_norm():
    w, g = tensors(1, [(6, 4)])[0], tensors(2, [(6, 4)])[0]
    out = blocks.orthograd(g, w)
    assert abs(torch.dot(out.flatten(), w.flatten())) < 1e-12
    torch.testing.assert_close(out.norm(), g.norm())
    assert torch.equal(blocks.orthograd(torch.zeros(3), torch.ones(3)), torch.zeros(3))


@pytest.mark.parametrize("shape", [(16, 16), (32, 8), (8, 32), (3, 16, 12)])
def test_newton_schulz_singular_values_near_one(shape):
    g = tensors(3, [shape])[0]
    x = blocks.newton_schulz(g, steps=5)
    assert x.shape == g.shape
    s = torch.linalg.svdvals(x)
    assert s.min() > 0.6 and s.max() < 1.25, s  # Muon's quintic leaves them in about [0.7, 1.2]
    # the classic cubic iteration (a, b, c) = (1.5, -0.5, 0) converges to exactly orthogonal
    exact = blocks.newton_schulz(g, steps=60, coefficients=(1.5, -0.5, 0.0))
    torch.testing.assert_close(torch.linalg.svdvals(exact), torch.ones_like(s), atol=1e-6, rtol=0)
    # and to the polar factor U V^T
    u, _, vh = torch.linalg.svd(g, full_matrices=False)
    torch.testing.assert_close(exact, u @ vh, atol=1e-6, rtol=0)


def test_newton_schulz_batch_equals_each_matrix():
    g = tensors(4, [(3, 10, 6)])[0]
    batch = blocks.newton_schulz(g)
    for i in range(3):
        torch.testing.assert_close(batch[i], blocks.newton_schulz(g[i]), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="matrix"):
        blocks.newton_schulz(torch.ones(3))


def test_trust_ratio():
    assert blocks.trust_ratio(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 0.5])).item() == 10.0
    assert blocks.trust_ratio(torch.zeros(2), torch.ones(2)).item() == 1.0
    assert blocks.trust_ratio(torch.ones(2), torch.zeros(2)).item() == 1.0


def test_factored_second_moment_is_exact_for_rank_one():
    """A rank-one matrix of squares is reconstructed exactly from its row and column means."""
    a, b = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), torch.tensor([0.5, 1.0, 4.0, 2.0], dtype=torch.float64)
    sq = torch.outer(a, b)
    row, col = torch.zeros(3, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
    blocks.factored_ema_(row, col, sq, 0.0)
    torch.testing.assert_close(blocks.factored_reconstruct(row, col), sq)


def test_stochastic_rounding_is_unbiased_and_between_neighbours():
    x = torch.full((200_000,), 1.0 + 2**-10, dtype=torch.float32)  # between bf16 1.0 and 1.0078125
    out = torch.empty_like(x, dtype=torch.bfloat16)
    blocks.stochastic_round_(out, x, generator=torch.Generator().manual_seed(0))
    assert set(out.float().unique().tolist()) == {1.0, 1.0078125}
    assert abs(out.float().mean().item() - x[0].item()) < 2e-4
    exact = torch.tensor([1.0, -2.5, float("inf"), float("nan")])
    blocks.stochastic_round_(out[:4], exact)
    assert out[:3].float().tolist() == [1.0, -2.5, float("inf")] and out[3].isnan()
    with pytest.raises(ValueError, match="bfloat16"):
        blocks.stochastic_round_(torch.zeros(2), torch.zeros(2))


# --- one tensor and a TensorList give the same numbers -----------------------------------------
def _apply_both(fn, *groups):
    """fn applied tensor by tensor, and once to TensorLists: (per-tensor results, list results)."""
    singles = [[t.clone() for t in g] for g in groups]
    many = [TensorList(t.clone() for t in g) for g in groups]
    loop = [fn(*(g[i] for g in singles)) for i in range(len(groups[0]))]
    together = fn(*many)
    return loop, together, singles, many


ELEMENTWISE = {
    "ema_": lambda a, x: blocks.ema_(a, x, 0.9),
    "ema_sq_": lambda a, x: blocks.ema_sq_(a, x, 0.99),
    "adam_direction": lambda m, v: blocks.adam_direction(m, v.abs(), step=3, beta1=0.9, beta2=0.99, eps=1e-8),
    "decoupled_decay_": lambda p, _: blocks.decoupled_decay_(p, 0.1, 0.01),
    "l2_into_grad": lambda g, p: blocks.l2_into_grad(g, p, 0.1),
    "sign_direction": lambda x, _: blocks.sign_direction(x),
    "atan2_direction": lambda m, v: blocks.atan2_direction(m, v.abs()),
    "cautious_": lambda u, g: blocks.cautious_(u, g),
    "grams_": lambda u, g: blocks.grams_(u, g),
    "orthograd": lambda g, p: blocks.orthograd(g, p),
}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_tensorlist_equals_loop(name):
    loop, together, singles, many = _apply_both(ELEMENTWISE[name], tensors(5), tensors(6))
    for a, b in zip(loop, together, strict=True):
        assert torch.equal(a, b), name
    for group_single, group_many in zip(singles, many):  # in-place effects agree too
        assert all(torch.equal(a, b) for a, b in zip(group_single, group_many))


def test_tensorlist_methods_equal_tensor_methods():
    x, y, z = tensors(7, positive=True), tensors(8, positive=True), tensors(9, positive=True)
    ops = [
        lambda a, b, c: a.mul_(0.5).add_(b, alpha=0.3).sub_(c, alpha=2.0),
        lambda a, b, c: a.addcmul_(b, c, value=0.1).addcdiv_(b, c, value=-0.2),
        lambda a, b, c: a.div_(b).sqrt_().abs_().sign_().neg_(),
        lambda a, b, c: a.lerp_(b, 0.25).clamp_min_(0.2).clamp_max_(0.9).mul_(c * 0.1),
        lambda a, b, c: (a + b) * c - a / b,
        lambda a, b, c: a.square().sqrt().abs().sign() + a.add(b, alpha=3.0),
        lambda a, b, c: a.clone().atan2_(b).reciprocal_().clamp_(min=-1.0, max=1.0),
    ]
    for op in ops:
        loop, together, _, _ = _apply_both(op, x, y, z)
        assert all(torch.equal(a, b) for a, b in zip(loop, together))
    many = TensorList(x)
    assert [n.item() for n in many.norm()] == pytest.approx([torch.linalg.vector_norm(t).item() for t in x])
    assert [s.item() for s in many.sum()] == [t.sum().item() for t in x]
    assert many.numel() == [t.numel() for t in x] and len(many) == len(x)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float64])
def test_tensorlist_scaling_by_numbers_equals_the_loop_in_every_float_dtype(dtype):
    """torch's in-place foreach multiply by a number rounds 16-bit floats unlike ``Tensor.mul_`` on the CPU."""
    x = [t.to(dtype) for t in tensors(14)]
    ops = [lambda a: a.mul_(0.9), lambda a: blocks.ema_(a, a * 2, 0.9), lambda a: blocks.decoupled_decay_(a, 0.1, 0.05)]
    for op in ops:
        loop, together, _, _ = _apply_both(op, x)
        assert all(torch.equal(a, b) for a, b in zip(loop, together)), dtype
    loop = [t.clone().mul_(s) for t, s in zip(x, range(2, 2 + len(x)))]
    together = TensorList(t.clone() for t in x).mul_([float(s) for s in range(2, 2 + len(x))])
    assert all(torch.equal(a, b) for a, b in zip(loop, together))


def test_zeros_to_inf_and_trust_ratio_on_lists():
    x = torch.tensor([0.0, 2.0])
    assert blocks.zeros_to_inf_(x).tolist() == [float("inf"), 2.0]
    many = TensorList([torch.tensor([0.0]), torch.tensor([3.0, 0.0])])
    blocks.zeros_to_inf_(many)
    assert many[0].tolist() == [float("inf")] and many[1].tolist() == [3.0, float("inf")]
    params, updates = tensors(10), tensors(11)
    ratios = blocks.trust_ratio(TensorList(params), TensorList(updates))
    assert [r.item() for r in ratios] == [blocks.trust_ratio(p, u).item() for p, u in zip(params, updates)]


def test_tensorlist_reflected_and_reduction_ops_equal_tensor_ops():
    x, y = tensors(12, positive=True), tensors(13, positive=True)
    ops = [
        lambda a, b: 1 - a * 0.5,
        lambda a, b: 2.0 / a,
        lambda a, b: a.div(b).mul(b).pow(1 / 3).clamp_min(0.5),
        lambda a, b: a.addcdiv(a, b, value=-1),
        lambda a, b: a / (b.square().sum().sqrt() + 1e-8),
    ]
    for op in ops:
        loop, together, _, _ = _apply_both(op, x, y)
        assert all(torch.equal(p, q) for p, q in zip(loop, together))
