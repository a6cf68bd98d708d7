"""SMMF (the official code is not a package): hand-computed factors and identities."""

import torch

from zij.memory_efficient.smmf import SMMF, effective_shape, nnmf


def test_effective_shape():
    assert effective_shape(16) == (4, 4) and effective_shape(12) == (4, 3) and effective_shape(7) == (7, 1)
    assert effective_shape(1) == (1, 1) and effective_shape(2048) == (64, 32) and effective_shape(90) == (10, 9)


def test_nnmf_hand_values():
    # p >= q: rows are plain sums, columns are divided by the total.
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 2.0]], dtype=torch.float64)
    row, col = nnmf(x)
    assert row.tolist() == [3.0, 7.0, 2.0] and col.tolist() == [4.0 / 12, 8.0 / 12]
    # p < q: the rows are normalized instead
    row, col = nnmf(x.T)
    assert row.tolist() == [4.0 / 12, 8.0 / 12] and col.tolist() == [3.0, 7.0, 2.0]
    # a rank-one non-negative matrix is rebuilt exactly
    r1 = torch.outer(torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64), torch.tensor([3.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(torch.outer(*nnmf(r1)), r1, rtol=1e-15, atol=0)
    assert all(t.sum() == 0 for t in nnmf(torch.zeros(3, 2)))


def full_state_reference(theta, grads, *, lr, beta, eps, decay_rate, growth_rate, weight_decay=0.0):
    """The same rates on unfactored moments (what SMMF computes when the moments are rank one)."""
    m, v = torch.zeros_like(theta), torch.zeros_like(theta)
    out = []
    for t, g in enumerate(grads, start=1):
        theta = theta * (1 - lr * weight_decay)
        b1, b2 = beta * growth_rate ** (t - 1), 1 - t**decay_rate
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * m / (v.sqrt() + eps)
        out.append(theta)
    return out


def test_rank_one_gradients_give_the_unfactored_rule():
    # Gradients c_t * outer(a, b) with positive a, b keep M and V rank one (and M of one sign): the factors are exact.
    a = torch.tensor([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    b = torch.tensor([0.2, 1.0, 4.0], dtype=torch.float64)
    grads = [c * torch.outer(a, b) for c in (1.0, 0.5, 2.0, 1.5, 0.25)]
    p = torch.ones(4, 3, dtype=torch.float64)
    opt = SMMF([p], lr=0.1, beta=0.9, weight_decay=0.1, decay_rate=-0.8, growth_rate=0.99)
    want = full_state_reference(torch.ones(4, 3, dtype=torch.float64), grads, lr=0.1, beta=0.9, eps=1e-8,
                                decay_rate=-0.8, growth_rate=0.99, weight_decay=0.1)
    for g, w in zip(grads, want):
        p.grad = g.clone()
        opt.step()
        torch.testing.assert_close(p, w, rtol=1e-12, atol=1e-12)
    assert opt.state[p]["sign"].all()


def test_first_step_hand_values():
    # t = 1: b2 = 1 - 1^c = 0, so V = G^2 and M = (1 - beta) G: theta moves by lr (1 - beta) sign(g) (eps = 0).
    p = torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=torch.float64)
    opt = SMMF([p], lr=0.1, beta=0.9, eps=0.0)
    p.grad = torch.tensor([[3.0, -2.0], [0.1, -5.0]], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p, torch.tensor([[0.99, -0.99], [0.49, 2.01]], dtype=torch.float64))
    state = opt.state[p]
    # stored: |M| = 0.1 |G| = [[0.3, 0.2], [0.01, 0.5]]; rows 0.5, 0.51; columns normalized by 1.01
    torch.testing.assert_close(state["m_row"], torch.tensor([0.5, 0.51], dtype=torch.float64))
    torch.testing.assert_close(state["m_col"], torch.tensor([0.31, 0.7], dtype=torch.float64) / 1.01)
    assert state["sign"].tolist() == [[True, False], [True, False]]


def test_memory_of_the_state():
    p = torch.zeros(300, 200, requires_grad=True)
    opt = SMMF([p])
    p.grad = torch.randn_like(p)
    opt.step()
    state = opt.state[p]
    floats = sum(state[k].numel() for k in ("m_row", "m_col", "v_row", "v_col"))
    assert floats == 2 * (250 + 240) and state["sign"].dtype == torch.bool and state["sign"].numel() == p.numel()


def test_vectors_without_reshape_keep_full_moments_and_beta_none_uses_the_gradient():
    p = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    opt = SMMF([p], lr=0.1, beta=None, eps=0.0, vector_reshape=False)
    grads = [torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64)]
    p.grad = grads[0]
    opt.step()
    assert set(opt.state[p]) == {"step", "exp_avg_sq"}
    # t = 1: v = g^2, step lr sign(g); t = 2: b2 = 1 - 2^-0.5, v = b2 g1^2 + (1 - b2) g2^2, step lr g2 / sqrt(v)
    b2 = 1 - 2**-0.5
    v = b2 * grads[0] ** 2 + (1 - b2) * grads[1] ** 2
    want = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64) - 0.1 * grads[0].sign() - 0.1 * grads[1] / v.sqrt()
    p.grad = grads[1]
    opt.step()
    torch.testing.assert_close(p, want, rtol=1e-12, atol=1e-12)
