"""Flora: parity with flora-opt (the official code packaged), and the memory layout.

flora_opt's step calls the closure under no_grad, so the matrix's parity test cannot drive it;
here both step after an explicit backward pass, 60 float64 steps on a tall, a wide and an
embedding-like matrix (the last keeps a full momentum), a vector, a 3-D tensor and a scalar,
with compressed momentum resampled every 5 steps, with full momentum and without momentum.
Also: which tensors get a compressed momentum, its shape, and the seeds' schedule.
"""

from __future__ import annotations

import pytest
import torch

import zij
from zij.memory_efficient.flora import next_seed, projection


def test_compressed_momentum_shapes_and_seeds():
    tall = torch.zeros(12, 6, requires_grad=True)
    wide = torch.zeros(5, 15, requires_grad=True)
    embedding = torch.zeros(50, 6, requires_grad=True)  # aspect ratio above 4: full momentum
    vector = torch.zeros(6, requires_grad=True)
    opt = zij.Flora([tall, wide, embedding, vector], lr=1e-2, rank=3, beta1=0.9, seed=10)
    for p in (tall, wide, embedding, vector):
        p.grad = torch.randn(p.shape)
    opt.step()
    assert opt.state[tall]["exp_avg"].shape == (12, 3)
    assert opt.state[wide]["exp_avg"].shape == (3, 15)
    assert opt.state[embedding]["exp_avg"].shape == (50, 6)
    assert opt.state[vector]["exp_avg"].shape == (6,) and "exp_avg_sq" in opt.state[vector]
    assert opt.state[tall]["exp_avg_sq_row"].shape == (12,) and opt.state[tall]["exp_avg_sq_col"].shape == (6,)
    assert [opt.state[p]["seed"] for p in (tall, wide, embedding, vector)] == [11, 12, 13, 14]


def test_projection_is_gaussian_with_variance_one_over_rank():
    a = projection(3, (4000, 500), 8, device="cpu", dtype=torch.float64)
    assert a.shape == (500, 8)
    assert a.var().item() == pytest.approx(1 / 8, rel=0.02)
    assert torch.equal(a, projection(3, (4000, 500), 8, device="cpu", dtype=torch.float64))
    assert projection(3, (5, 500), 2, device="cpu", dtype=torch.float64).shape == (2, 5)


def test_seed_moves_on_every_kappa_steps():
    w = torch.zeros(8, 8, requires_grad=True)
    opt = zij.Flora([w], lr=1e-2, rank=2, beta1=0.9, kappa=3)
    seeds = []
    for _ in range(7):
        w.grad = torch.randn(8, 8)
        opt.step()
        seeds.append(opt.state[w]["seed"])
    first = 1
    assert seeds == [first] * 2 + [next_seed(first)] * 3 + [next_seed(next_seed(first))] * 2


@pytest.mark.parametrize("kwargs", [
    {"lr": 1e-2, "rank": 3, "kappa": 5, "beta1": 0.9, "weight_decay": 0.01},
    {"lr": 1e-2, "beta1": 0.8},
    {"lr": 1e-2},
    {"lr": 3e-2, "rank": 2, "kappa": 4, "beta1": 0.9, "scale_parameter": False, "clip_threshold": 0.5,
     "decay_rate": -0.5},
], ids=["compressed", "full-momentum", "no-momentum", "unscaled"])
def test_parity_with_flora_opt(kwargs):
    reference = pytest.importorskip("flora_opt.optimizers.torch.flora").Flora
    g = torch.Generator().manual_seed(0)
    shapes = [(12, 6), (5, 15), (50, 6), (6,), (3, 4, 2), ()]
    ours = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    ours_opt, theirs_opt = zij.Flora(ours, **kwargs), reference(theirs, **kwargs)
    for _ in range(60):
        for params, opt in ((ours, ours_opt), (theirs, theirs_opt)):
            opt.zero_grad()
            loss = sum(((i + 1) * p.sin()).sum() + (p**2).sum() for i, p in enumerate(params))
            loss.backward()
            opt.step()
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
