"""SWAN (no installable upstream: the official code is not on PyPI, pytorch-optimizer has no SWAN).

Identities and hand values instead: GradNorm's row moments, the whitening against the polar
factor of an SVD, steps written out by hand, stateless matrices, the AdamW fallback against
torch.optim.AdamW, and the zero row sums of every matrix update.
"""

from __future__ import annotations

import math

import pytest
import torch

import zij
from zij._bench import state_bytes
from zij._registry import get_entry
from zij.memory_efficient.swan import grad_norm, grad_whitening

F64 = torch.float64


def _polar(a: torch.Tensor) -> torch.Tensor:
    """U V^T of a's SVD, on its nonzero singular values only (float64, independent of the class)."""
    u, s, vh = torch.linalg.svd(a.to(F64), full_matrices=False)
    keep = s > 1e-10 * s.max()
    return u[:, keep] @ vh[keep]


def test_grad_norm_rows_have_zero_mean_and_unit_std():
    torch.manual_seed(0)
    g = torch.randn(5, 7, dtype=F64) * torch.tensor([[0.1], [1.0], [10.0], [1e3], [1e-3]], dtype=F64) + 4.0
    out = grad_norm(g, eps=1e-12)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(5, dtype=F64), rtol=0, atol=1e-12)
    torch.testing.assert_close(out.std(dim=1, correction=0), torch.ones(5, dtype=F64), rtol=1e-8, atol=0)
    # the same standardization written with torch's own moments
    expected = (g - g.mean(dim=1, keepdim=True)) / (g.std(dim=1, keepdim=True, correction=0) + 1e-12)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_grad_norm_of_a_constant_row_is_zero():
    g = torch.tensor([[3.0, 3.0, 3.0], [1.0, 2.0, 3.0]], dtype=F64)
    out = grad_norm(g, eps=1e-8)
    assert torch.equal(out[0], torch.zeros(3, dtype=F64)) and torch.isfinite(out).all()


@pytest.mark.parametrize("shape", [(5, 9), (9, 5), (6, 6)], ids=["wide", "tall", "square"])
def test_whitening_converges_to_the_polar_factor(shape):
    """With enough iterations, GradWhitening(GradNorm(G)) is U V^T of GradNorm(G)'s SVD on its nonzero
    singular values (for m >= n the centred rows leave min(m, n - 1) of them)."""
    torch.manual_seed(1)
    g_tilde = grad_norm(torch.randn(shape, dtype=F64), eps=1e-8)
    s = torch.linalg.svdvals(g_tilde)
    nonzero = s[s > 1e-10 * s.max()]
    assert len(nonzero) == min(shape[0], shape[1] - 1) and nonzero.min() / s.max() > 0.02
    out = grad_whitening(g_tilde, steps=40, beta=0.5, eps=1e-8)
    torch.testing.assert_close(out, _polar(g_tilde), rtol=0, atol=1e-12)
    singular = torch.linalg.svdvals(out)
    torch.testing.assert_close(singular[:len(nonzero)], torch.ones(len(nonzero), dtype=F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 7), (7, 4), (12, 5)], ids=["wide", "tall", "taller"])
def test_whitening_of_a_rank_deficient_matrix_keeps_only_its_nonzero_singular_values(shape):
    """A centred matrix of rank 2 (below what centring leaves): the iteration gives the polar factor
    on those two singular values; along the other null directions (not deflated, unlike 1) only
    rounding noise remains, amplified by at most 1.5 per iteration (1.5^30 * 1e-16 < 1e-10)."""
    torch.manual_seed(2)
    m, n = shape
    right = torch.randn(2, n, dtype=F64)
    a = torch.randn(m, 2, dtype=F64) @ (right - right.mean(dim=1, keepdim=True))
    out = grad_whitening(a, steps=30, beta=0.5, eps=1e-8)
    torch.testing.assert_close(out, _polar(a), rtol=0, atol=1e-7)
    singular = torch.linalg.svdvals(out)
    torch.testing.assert_close(singular[:2], torch.ones(2, dtype=F64), rtol=0, atol=1e-10)
    assert singular[2:].max() < 1e-10


@pytest.mark.parametrize("shape", [(9, 5), (64, 64), (128, 32)])
def test_many_iterations_stay_accurate_in_float32(shape):
    """For m >= n the Gram matrix is singular along 1; with 1 1^T / n added, 100 float32 iterations
    stay at float32 accuracy (without it, rounding noise along 1 grows by 1.5 per iteration and a
    negative rounded eigenvalue makes it overflow), and the rows of the result sum to zero."""
    torch.manual_seed(9)
    g_tilde = grad_norm(torch.randn(shape, dtype=F64), eps=1e-8)
    out = grad_whitening(g_tilde.float(), steps=100, beta=0.5, eps=1e-8).double()
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, _polar(g_tilde), rtol=0, atol=1e-4)
    torch.testing.assert_close(out.sum(dim=1), torch.zeros(shape[0], dtype=F64), rtol=0, atol=1e-4)


def test_whitening_with_another_beta_is_a_scaled_polar_factor():
    """beta != 1/2 converges (linearly) to sqrt(3 - 1/beta) times the polar factor."""
    torch.manual_seed(3)
    a = grad_norm(torch.randn(4, 6, dtype=F64), eps=1e-8)
    out = grad_whitening(a, steps=120, beta=0.6, eps=1e-8)
    torch.testing.assert_close(out, math.sqrt(3 - 1 / 0.6) * _polar(a), rtol=0, atol=1e-9)


def test_first_steps_on_a_wide_matrix_by_hand():
    """G = [[1, 2, 3], [3, 1, 2]]: GradNorm gives sqrt(3/2) A, A = [[-1, 0, 1], [1, -1, 0]], and
    A A^T = [[2, -1], [-1, 2]] (eigenvalues 1 and 3) gives, with c = 1/sqrt(3),
    (A A^T)^{-1/2} A = 1/2 [[-2c, c - 1, 1 + c], [2c, -1 - c, 1 - c]]. Two steps with the same
    gradient: SWAN keeps no state, so both are the same step (here with decoupled decay)."""
    c = 1 / math.sqrt(3)
    u = 0.5 * torch.tensor([[-2 * c, c - 1, 1 + c], [2 * c, -1 - c, 1 - c]], dtype=F64)
    theta0 = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=F64)
    p = theta0.clone().requires_grad_()
    opt = zij.SWAN([p], lr=0.1, weight_decay=0.2)
    expected = theta0
    for _ in range(2):
        p.grad = torch.tensor([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]], dtype=F64)
        opt.step()
        expected = (1 - 0.1 * 0.2) * expected - 0.1 * u
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-12)


def test_first_step_on_a_tall_kernel_by_hand():
    """A tall matrix (3 x 2) of rank one after GradNorm: each row standardizes to +-(1, -1), so
    G~ = a b^T with a = (-1, 1, -1), b = (1, -1), whose polar factor is G~ / sqrt(6). The same
    gradient reshaped as a 3 x 1 x 2 kernel (flattened to 3 rows) gives the same step."""
    g = torch.tensor([[1.0, 2.0], [4.0, 3.0], [0.0, 5.0]], dtype=F64)
    u = torch.tensor([[-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]], dtype=F64) / math.sqrt(6)
    for shape in ((3, 2), (3, 1, 2)):
        p = torch.zeros(shape, dtype=F64, requires_grad=True)
        opt = zij.SWAN([p], lr=0.5, eps=1e-14)
        p.grad = g.reshape(shape)
        opt.step()
        torch.testing.assert_close(p.detach().reshape(3, 2), -0.5 * u, rtol=0, atol=1e-12)


def test_step_against_an_independent_float64_formula():
    """Random 6 x 10 and 10 x 6 gradients: one step equals -lr times the SVD polar factor of the
    gradient standardized row by row (written here with torch's std), with the default 10 steps
    to 1e-6 and with 40 steps to 1e-10."""
    torch.manual_seed(4)
    for shape in ((6, 10), (10, 6)):
        g = torch.randn(shape, dtype=F64) * 3 + 1
        g_tilde = (g - g.mean(dim=1, keepdim=True)) / (g.std(dim=1, keepdim=True, correction=0) + 1e-8)
        for steps, tol in ((10, 1e-6), (40, 1e-10)):
            p = torch.zeros(shape, dtype=F64, requires_grad=True)
            opt = zij.SWAN([p], lr=0.01, ns_steps=steps)
            p.grad = g.clone()
            opt.step()
            torch.testing.assert_close(p.detach(), -0.01 * _polar(g_tilde), rtol=0, atol=0.01 * tol)


def test_update_is_invariant_to_row_shifts_and_positive_row_scales():
    """GradNorm removes each row's offset and scale: D G + b 1^T (D > 0 diagonal) steps like G."""
    torch.manual_seed(5)
    g = torch.randn(4, 6, dtype=F64)
    scale = torch.tensor([[0.01], [1.0], [7.0], [300.0]], dtype=F64)
    shift = torch.tensor([[5.0], [-2.0], [0.0], [1e3]], dtype=F64)
    moved = []
    for grad in (g, scale * g + shift):
        p = torch.zeros(4, 6, dtype=F64, requires_grad=True)
        opt = zij.SWAN([p], lr=1.0, eps=1e-14)
        p.grad = grad
        opt.step()
        moved.append(p.detach())
    torch.testing.assert_close(moved[0], moved[1], rtol=0, atol=1e-10)


def test_every_matrix_update_has_zero_row_sums():
    """The rows of U_t sum to zero (the polar factor keeps GradNorm's null vector 1): without weight
    decay a matrix's row means never move, whatever the gradients."""
    torch.manual_seed(6)
    p = torch.randn(5, 8, dtype=F64, requires_grad=True)
    means = p.detach().mean(dim=1)
    opt = zij.SWAN([p], lr=0.1)
    for _ in range(5):
        p.grad = torch.randn(5, 8, dtype=F64)
        opt.step()
    torch.testing.assert_close(p.detach().mean(dim=1), means, rtol=0, atol=1e-12)


def test_matrices_keep_no_state_and_vectors_get_adamw_state():
    """A linear weight and a conv kernel keep only their step count; biases get AdamW's two moments."""
    torch.manual_seed(0)
    weights = [torch.randn(8, 6, requires_grad=True), torch.randn(4, 8, 3, requires_grad=True)]
    biases = [torch.randn(8, requires_grad=True), torch.randn(4, requires_grad=True)]
    for params, expected_bytes in ((weights, 0), (weights + biases, sum(2 * 4 * b.numel() for b in biases))):
        opt = zij.SWAN(params)
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()
        for w in weights:
            assert opt.state[w] == {"step": 1}
        for b in params[len(weights):]:
            assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq"}
        assert state_bytes(opt) == expected_bytes


@pytest.mark.parametrize("routing", ["by_shape", "use_muon_false"])
def test_fallback_steps_exactly_like_torch_adamw(routing):
    """Vectors (and a matrix in a use_muon=False group) take torch.optim.AdamW's steps with the
    fallback hyperparameters; a scheduler on lr leaves an explicit adam_lr alone."""
    torch.manual_seed(7)
    shapes = [(5,), (3,)] if routing == "by_shape" else [(5,), (3, 4)]
    start = [torch.randn(s, dtype=F64) for s in shapes]
    ours = [x.clone().requires_grad_() for x in start]
    theirs = [x.clone().requires_grad_() for x in start]
    kw = dict(adam_lr=0.01, adam_betas=(0.8, 0.99), adam_eps=1e-6, adam_weight_decay=0.1)
    group = {"params": ours} if routing == "by_shape" else {"params": ours, "use_muon": False}
    opt = zij.SWAN([group], lr=0.5, weight_decay=0.3, **kw)
    ref = torch.optim.AdamW(theirs, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, foreach=False)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(20):
        grads = [torch.randn(s, dtype=F64) for s in shapes]
        for params, o in ((ours, opt), (theirs, ref)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            o.step()
        scheduler.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


def test_use_muon_true_sends_matrices_and_rejects_vectors():
    w = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    opt = zij.SWAN([{"params": [w], "use_muon": True}], lr=0.1)
    w.grad = torch.tensor([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]], dtype=F64)
    opt.step()
    assert opt.state[w] == {"step": 1} and "momentum" not in opt.param_groups[0]
    with pytest.raises(ValueError, match="use_muon"):
        zij.SWAN([{"params": [torch.zeros(3, requires_grad=True)], "use_muon": True}])
    with pytest.raises(ValueError, match="use_muon"):
        zij.SWAN([{"params": [w], "use_muon": "yes"}])


def test_zero_and_low_precision_gradients():
    """A zero gradient moves nothing; a bfloat16 matrix is whitened in float32 and stays bfloat16."""
    p = torch.ones(3, 4, dtype=F64, requires_grad=True)
    opt = zij.SWAN([p])
    p.grad = torch.zeros(3, 4, dtype=F64)
    opt.step()
    assert torch.equal(p.detach(), torch.ones(3, 4, dtype=F64))
    torch.manual_seed(8)
    g = torch.randn(4, 6)
    q = torch.zeros(4, 6, dtype=torch.bfloat16, requires_grad=True)
    opt = zij.SWAN([q], lr=1.0)
    q.grad = g.to(torch.bfloat16)
    opt.step()
    assert q.dtype == torch.bfloat16
    expected = -_polar(grad_norm(g.to(torch.bfloat16).to(F64), 1e-8))
    torch.testing.assert_close(q.detach().to(F64), expected, rtol=0, atol=0.02)


def test_every_hyperparameter_has_an_error_input():
    """The registry's error inputs (run by test_matrix.py) cover every numeric hyperparameter."""
    named = {name for e in get_entry("SWAN").errors for name in e.kwargs}
    assert named >= {"lr", "weight_decay", "eps", "beta", "ns_steps", "ns_dtype", "adam_lr", "adam_betas",
                     "adam_eps", "adam_weight_decay"}
    for bad in ({"beta": True}, {"eps": -1.0}, {"ns_steps": 2.5}):
        (name,) = bad
        with pytest.raises(ValueError, match=name):
            zij.SWAN([torch.zeros(2, 2, requires_grad=True)], **bad)
