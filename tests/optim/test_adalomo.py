"""AdaLomo: parity with pytorch-optimizer's fused-backward AdaLOMO (driven through a model), and identities.

The reference updates inside backward hooks, driven by ``grad_norm(loss)`` (when norm clipping is on)
and ``fused_backward(loss, lr)``; it computes in float32, so the comparison runs in float32, with its
loss scaling off (``loss_scale=0``: scaling and unscaling is an identity up to rounding). The tolerance
is float32's: the reference takes reciprocal square roots of the factors, zij the square root of their
product, and the near-sign updates carry such rounding differences forward (a wrong rule differs by O(1)).
"""

import math

import pytest
import torch

from zij.memory_efficient.adalomo import AdaLomo

from test_lomo import MLP


@pytest.mark.parametrize("extra", [{}, {"weight_decay": 0.1}, {"clip_grad_norm": 0.5}, {"clip_grad_value": 0.05, "clip_threshold": 0.5}])
def test_parity_with_pytorch_optimizer_fused_backward(extra):
    reference = pytest.importorskip("pytorch_optimizer").AdaLOMO
    ours_model, ref_model = MLP(), MLP()
    ours = AdaLomo(ours_model.parameters(), lr=0.05, **extra)
    ref = reference(ref_model, lr=0.05, loss_scale=0, **extra)
    for step in range(50):
        ours.zero_grad()
        ours_model.loss().backward()
        ours.step()
        if "clip_grad_norm" in extra:
            ref.grad_norm(ref_model.loss())
        ref.fused_backward(ref_model.loss(), lr=0.05)
        for a, b in zip(ours_model.parameters(), ref_model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m: f"step {step + 1}: {m}")


def test_first_step_hand_values():
    # t = 1: beta = 1 - 1 = 0, so the statistics are this step's: for a vector v = g^2 + eps1, U = g / |g| (eps1 ~ 0).
    # RMS(U) = 1 = d: no clipping. eta_1 = eta * max(eps2, RMS(theta)) with theta = (3, 4): RMS = 5 / sqrt(2).
    p = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt = AdaLomo([p], lr=0.1, weight_decay=0.2)
    p.grad = torch.tensor([0.5, -2.0], dtype=torch.float64)
    opt.step()
    eta = 0.1 * 5 / math.sqrt(2)
    want = torch.tensor([3.0, 4.0], dtype=torch.float64) * (1 - eta * 0.2) - eta * torch.tensor([1.0, -1.0], dtype=torch.float64)
    torch.testing.assert_close(p, want, rtol=1e-12, atol=0)


def test_factored_statistics_of_a_rank_one_square_are_exact():
    # G = outer(a, b): G^2 = outer(a^2, b^2) is rank one, so V_hat = G^2 (+ eps1) and U = sign(G) at t = 1;
    # RMS(U) = 1 and tiny weights use eps2: theta moves by lr * eps2 * sign(G).
    a = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    b = torch.tensor([0.5, 4.0], dtype=torch.float64)
    p = torch.zeros(3, 2, dtype=torch.float64)
    opt = AdaLomo([p], lr=0.5, eps=(0.0, 1e-3))
    p.grad = torch.outer(a, b)
    opt.step()
    torch.testing.assert_close(p, -0.5 * 1e-3 * torch.outer(a, b).sign(), rtol=1e-12, atol=0)
    state = opt.state[p]
    torch.testing.assert_close(state["exp_avg_sq_row"], (torch.outer(a, b) ** 2).mean(dim=1))
    torch.testing.assert_close(state["exp_avg_sq_col"], (torch.outer(a, b) ** 2).mean(dim=0))


def test_update_rms_is_clipped_to_the_threshold():
    p = torch.ones(4, 4, dtype=torch.float64)
    opt = AdaLomo([p], lr=1.0, clip_threshold=0.25)
    p.grad = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    before = p.clone()
    opt.step()
    moved = (before - p) / 1.0  # eta_t = 1 * max(1e-3, RMS(ones)) = 1
    assert abs(torch.linalg.vector_norm(moved).item() / 4 - 0.25) < 1e-12
