"""Fira: parity with the official fira package, its residual, and the size of its state.

fira applies a group's ``rank`` to every tensor of the group, so its parity runs here with the
matrices in a projected group and the biases in a plain one.
"""

import pytest
import torch

import zij


def mlp(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    shapes = [(16, 6), (16,), (5, 16), (5,)]
    return [(torch.randn(s, generator=g, dtype=torch.float64) * 0.5).to(dtype).requires_grad_() for s in shapes]


def loss_of(params):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 6, generator=g, dtype=torch.float64).to(params[0].dtype)
    y = torch.randn(32, 5, generator=g, dtype=torch.float64).to(params[0].dtype)
    w1, b1, w2, b2 = params
    return ((torch.tanh(x @ w1.t() + b1) @ w2.t() + b2 - y) ** 2).mean()


def train(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_of(params).backward()
        opt.step()


@pytest.mark.parametrize("proj_type,alpha", [("std", 1.0), ("std", 0.25), ("reverse_std", 1.0), ("left", 0.5),
                                             ("right", 0.5)])
def test_parity_with_fira(proj_type, alpha):
    import fira  # the test extra installs it: a missing package is a failure

    # fira computes the SVD in float32 for any dtype but float32 (and casts the basis back): float32
    # parameters make both sides use the same arithmetic; tolerances are float32's.
    options = dict(rank=3, update_proj_gap=7, alpha=alpha, proj_type=proj_type)
    ours, theirs = mlp(dtype=torch.float32), mlp(dtype=torch.float32)
    opt = zij.Fira([{"params": [ours[0], ours[2]], **options}, {"params": [ours[1], ours[3]], "rank": None}],
                   lr=1e-2, weight_decay=0.1)
    ref = fira.FiraAdamW([{"params": [theirs[0], theirs[2]], **options}, {"params": [theirs[1], theirs[3]]}],
                         lr=1e-2, weight_decay=0.1, no_deprecation_warning=True)
    for step in range(50):
        train(opt, ours, 1)
        train(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"step {step + 1}: {m}")


def test_full_rank_has_no_residual_and_equals_galore():
    # At full rank on the projected side, alpha = 1: P P^T = I, so the residual is zero and Fira is GaLore.
    torch.manual_seed(0)
    a = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = zij.Fira([a], lr=1e-2, rank=4, update_proj_gap=5)
    ref = zij.GaLoreAdamW([b], lr=1e-2, rank=4, update_proj_gap=5, scale=1.0)
    for _ in range(12):
        g = torch.randn(4, 7, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
        assert ours.state[a]["last_norm"] < 1e-10
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_first_step_adds_the_scaled_residual():
    # Step 1, eps = 0: psi = sign(R) (after the bias-corrected step size), phi_j = sqrt(r) / ||R_j||,
    # so the update is alpha P sign(R) + (G - alpha P R) diag(phi), with step size lr (sqrt(1 - b2) / (1 - b1)
    # times (1 - b1) / sqrt(1 - b2)).
    torch.manual_seed(1)
    p = torch.zeros(3, 8, dtype=torch.float64, requires_grad=True)
    opt = zij.Fira([p], lr=1.0, eps=0.0, rank=2, alpha=0.5)
    g = torch.randn(3, 8, dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    P = opt.state[p]["projector"]
    assert P.shape == (3, 2)
    R = P.T @ g
    phi = 2 ** 0.5 / (torch.linalg.vector_norm(R, dim=0) + 1e-8)
    expected = -(0.5 * P @ R.sign() + (g - 0.5 * P @ R) * phi)
    torch.testing.assert_close(p.detach(), expected, rtol=1e-10, atol=1e-12)


def test_state_of_a_64_by_128_matrix():
    # rank 8, m = 64 < n = 128: moments 8 x 128 each, an SVD basis 64 x 8, and the residual's last norm.
    p = torch.randn(64, 128, requires_grad=True)
    opt = zij.Fira([p], rank=8)
    p.grad = torch.randn(64, 128)
    opt.step()
    shapes = {k: tuple(t.shape) for k, t in opt.state[p].items() if isinstance(t, torch.Tensor)}
    assert shapes == {"exp_avg": (8, 128), "exp_avg_sq": (8, 128), "projector": (64, 8), "last_norm": ()}
    assert sum(t.numel() for t in opt.state[p].values() if isinstance(t, torch.Tensor)) == 2 * 8 * 128 + 64 * 8 + 1
