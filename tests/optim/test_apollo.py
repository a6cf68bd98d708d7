"""APOLLO and APOLLO-Mini: parity with apollo-torch, the size of their state, and the channel scaling.

apollo-torch applies a group's ``rank`` to every tensor of the group, so its parity runs here
with the matrices in a scaled group and the biases in a plain one.
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


CASES = {
    "apollo": dict(rank=3, scale=1.0, scale_type="channel"),
    "apollo-mini": dict(rank=1, scale=128.0, scale_type="tensor"),
    "no-limiter": dict(rank=3, scale=2.0, scale_type="channel", disable_nl=True),
    "scale-front": dict(rank=3, scale=4.0, scale_type="channel", scale_front=True),
}


@pytest.mark.parametrize("case", CASES)
def test_parity_with_apollo_torch(case):
    import apollo_torch  # the test extra installs it: a missing package is a failure

    options = dict(CASES[case])
    optimizer_options = {k: options.pop(k) for k in ("disable_nl", "scale_front") if k in options}
    ours, theirs = mlp(), mlp()
    opt = zij.APOLLO([{"params": [ours[0], ours[2]], "update_proj_gap": 7, **options},
                      {"params": [ours[1], ours[3]], "rank": None}], lr=1e-2, weight_decay=0.1, **optimizer_options)
    # the official optimizer scales groups that have a rank: the matrices; the biases take its AdamW step
    ref = apollo_torch.APOLLOAdamW([{"params": [theirs[0], theirs[2]], "update_proj_gap": 7, "proj": "random",
                                     "proj_type": "std", **options}, {"params": [theirs[1], theirs[3]]}],
                                   lr=1e-2, weight_decay=0.1, **optimizer_options)
    for step in range(50):
        train(opt, ours, 1)
        train(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def test_state_of_a_64_by_128_matrix():
    # r x n moments (m < n), the m x r projection and the last update's norm.
    for rank, scale_type in ((8, "channel"), (1, "tensor")):
        p = torch.randn(64, 128, requires_grad=True)
        opt = zij.APOLLO([p], rank=rank, scale_type=scale_type)
        for _ in range(2):
            p.grad = torch.randn(64, 128)
            opt.step()
        tensors = {k: t for k, t in opt.state[p].items() if isinstance(t, torch.Tensor)}
        assert tensors["exp_avg"].shape == tensors["exp_avg_sq"].shape == (rank, 128)
        assert tensors["projection"].shape == (64, rank)
        assert sum(t.numel() for t in tensors.values()) == 2 * rank * 128 + 64 * rank + 1
    q = torch.randn(128, 64, requires_grad=True)
    opt = zij.APOLLO([q], rank=8)
    q.grad = torch.randn(128, 64)
    opt.step()
    assert opt.state[q]["exp_avg"].shape == (128, 8)


def test_channel_scales_of_the_first_step():
    # Without the limiter, at step 1 with eps = 0 the low-rank direction is sign(R) (bias-corrected: the
    # step size sqrt(1 - b2) / (1 - b1) times m / sqrt(v) = (1 - b1) R / (sqrt(1 - b2) |R|)), so column j of
    # the update is g_j * ||sign(R_j)|| / ||R_j|| = g_j sqrt(r) / ||R_j||, whatever the projection.
    torch.manual_seed(0)
    p = torch.zeros(4, 6, dtype=torch.float64, requires_grad=True)
    opt = zij.APOLLO([p], lr=1.0, eps=0.0, rank=2, disable_nl=True)
    g = torch.randn(4, 6, dtype=torch.float64)
    p.grad = g.clone()
    opt.step()
    from zij.memory_efficient.apollo import random_projection

    proj = random_projection((4, 2), 2, opt.state[p]["seed"]).to(g.dtype)
    assert torch.equal(proj, opt.state[p]["projection"])
    low = proj.mT @ g
    expected = -g * (2 ** 0.5) / (torch.linalg.vector_norm(low, dim=0) + 1e-8)  # the code's 1e-8
    torch.testing.assert_close(p.detach(), expected, rtol=1e-10, atol=1e-12)


def test_the_limiter_caps_growth_at_one_percent():
    p = torch.zeros(4, 6, dtype=torch.float64, requires_grad=True)
    opt = zij.APOLLO([p], lr=1.0, rank=2, correct_bias=False)
    norms = []
    for k in range(4):
        before = p.detach().clone()
        p.grad = torch.randn(4, 6, dtype=torch.float64) * 10 ** k  # gradients growing tenfold each step
        opt.step()
        norms.append(torch.linalg.matrix_norm(p.detach() - before).item())
    for a, b in zip(norms, norms[1:]):
        assert b <= 1.01 * a * (1 + 1e-9)
