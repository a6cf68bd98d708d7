"""GaLoreAdamW: parity with galore-torch, the AdamW identity at full rank, and the size of its state.

galore-torch applies a group's ``rank`` to every tensor of the group, so its parity runs
here with the matrices in a projected group and the biases in a plain one.
"""

import pytest
import torch

import zij
from zij.memory_efficient import galore


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


def groups(params, **galore_options):
    return [{"params": [params[0], params[2]], **galore_options}, {"params": [params[1], params[3]]}]


@pytest.mark.parametrize("proj_type", ["std", "reverse_std", "left", "right", "full"])
def test_parity_with_galore_torch(proj_type):
    import galore_torch  # the test extra installs it: a missing package is a failure

    # galore-torch computes the SVD in float32 for any dtype but float32 (and casts the basis back):
    # float32 parameters make both sides use the same arithmetic; tolerances are float32's.
    options = dict(rank=3, update_proj_gap=7, scale=0.5, proj_type=proj_type)
    ours, theirs = mlp(dtype=torch.float32), mlp(dtype=torch.float32)
    opt = zij.GaLoreAdamW(groups(ours, **options), lr=1e-2, weight_decay=0.1)
    for group in opt.param_groups[1:]:
        group["rank"] = None
    ref = galore_torch.GaLoreAdamW(groups(theirs, **options), lr=1e-2, weight_decay=0.1, no_deprecation_warning=True)
    for step in range(50):
        train(opt, ours, 1)
        train(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"step {step + 1}: {m}")


def test_full_rank_identity_projection_is_adamw(monkeypatch):
    # With the SVD basis replaced by the identity, the projected moments are AdamW's; with eps = 0 and
    # no weight decay the official code's AdamW (eps before the bias correction) is torch's.
    def identity(grad, rank, side):
        m, n = grad.shape
        eye = {"left": (torch.eye(m, dtype=grad.dtype),), "right": (torch.eye(n, dtype=grad.dtype),),
               "full": (torch.eye(m, dtype=grad.dtype), torch.eye(n, dtype=grad.dtype))}
        return eye[side]

    monkeypatch.setattr(galore, "svd_basis", identity)
    # "std" projects the smaller side, whose size is the full rank (6 of 16 x 6, 5 of 5 x 16)
    ours, theirs = mlp(), mlp()
    opt = zij.GaLoreAdamW(ours, lr=1e-2, eps=0.0, rank=6, update_proj_gap=3, scale=1.0)
    ref = torch.optim.AdamW(theirs, lr=1e-2, eps=0.0, weight_decay=0.0)
    train(opt, ours, 20)
    train(ref, theirs, 20)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # a square matrix is at full rank on either side and on both
    for proj_type in ("left", "right", "full", "reverse_std"):
        a = torch.randn(6, 6, dtype=torch.float64, requires_grad=True)
        b = a.detach().clone().requires_grad_()
        opt = zij.GaLoreAdamW([a], lr=1e-2, eps=0.0, rank=6, update_proj_gap=3, scale=1.0, proj_type=proj_type)
        ref = torch.optim.AdamW([b], lr=1e-2, eps=0.0, weight_decay=0.0)
        for _ in range(20):
            g = torch.randn(6, 6, dtype=torch.float64)
            a.grad, b.grad = g.clone(), g.clone()
            opt.step()
            ref.step()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_full_rank_svd_projection_of_a_square_matrix_keeps_its_norm():
    # A square matrix at full rank: P is orthogonal, so the first step (sign-like, |N| = 1 / (1 + eps))
    # moves the weights by lr * scale * ||P N|| = lr * scale * ||N||.
    p = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.GaLoreAdamW([p], lr=0.1, eps=0.0, rank=4, scale=0.5)
    p.grad = torch.randn(4, 4, dtype=torch.float64)
    opt.step()
    assert opt.state[p]["projector"].shape == (4, 4)
    torch.testing.assert_close(torch.linalg.matrix_norm(p.detach()), torch.tensor(0.1 * 0.5 * 4, dtype=torch.float64))


def test_projection_refreshes_every_gap_steps():
    p = torch.zeros(6, 8, dtype=torch.float64, requires_grad=True)
    opt = zij.GaLoreAdamW([p], rank=2, update_proj_gap=3)
    seen = []
    for _ in range(7):
        p.grad = torch.randn(6, 8, dtype=torch.float64)
        opt.step()
        seen.append(opt.state[p]["projector"].clone())
    changed = [not torch.equal(a, b) for a, b in zip(seen, seen[1:])]
    assert changed == [False, False, True, False, False, True]  # new bases at steps 1, 4 and 7


def test_state_of_a_64_by_128_matrix():
    # rank 8, m = 64 < n = 128: the projection acts from the left; moments 8 x 128 each, basis 64 x 8.
    p = torch.randn(64, 128, requires_grad=True)
    opt = zij.GaLoreAdamW([p], rank=8)
    p.grad = torch.randn(64, 128)
    opt.step()
    shapes = {k: tuple(t.shape) for k, t in opt.state[p].items() if isinstance(t, torch.Tensor)}
    assert shapes == {"exp_avg": (8, 128), "exp_avg_sq": (8, 128), "projector": (64, 8)}
    assert sum(t.numel() for t in opt.state[p].values() if isinstance(t, torch.Tensor)) == 2 * 8 * 128 + 64 * 8
    # the transpose projects from the right: moments 128 x 8, basis 8 x 128
    q = torch.randn(128, 64, requires_grad=True)
    opt = zij.GaLoreAdamW([q], rank=8)
    q.grad = torch.randn(128, 64)
    opt.step()
    assert opt.state[q]["exp_avg"].shape == (128, 8) and opt.state[q]["projector"].shape == (8, 64)
