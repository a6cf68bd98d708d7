"""LOMO: parity with pytorch-optimizer's fused-backward LOMO (driven through a model), and identities.

The reference updates inside backward hooks and is driven by ``grad_norm(loss)`` (the extra pass that
measures the norm for clipping) and ``fused_backward(loss, lr)``; zij's LOMO takes ``backward`` then
``step``. Both compute in float32, so the comparison runs in float32. pytorch-optimizer's LOMO has no
weight decay (lomo-optim, the official package, needs transformers); decay is checked by hand below.
"""

import sys
from pathlib import Path

import pytest
import torch

from zij.memory_efficient.lomo import LOMO

sys.path.insert(0, str(Path(__file__).parent))
from _problem_helpers import mlp_loss  # noqa: E402


class MLP(torch.nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        shapes = [(8, 4), (8,), (3, 8), (3,)]
        self.params = torch.nn.ParameterList(
            [torch.nn.Parameter((torch.randn(s, generator=g, dtype=torch.float64) * 0.5).float()) for s in shapes])

    def loss(self):
        return mlp_loss(list(self.params))


@pytest.mark.parametrize("clip", [{}, {"clip_grad_norm": 0.5}, {"clip_grad_value": 0.05}, {"clip_grad_norm": 0.3, "clip_grad_value": 0.1}])
def test_parity_with_pytorch_optimizer_fused_backward(clip):
    reference = pytest.importorskip("pytorch_optimizer").LOMO
    ours_model, ref_model = MLP(), MLP()
    ours = LOMO(ours_model.parameters(), lr=0.05, **clip)
    ref = reference(ref_model, lr=0.05, **clip)
    for step in range(50):
        ours.zero_grad()
        ours_model.loss().backward()
        ours.step()
        if "clip_grad_norm" in clip:
            ref.grad_norm(ref_model.loss())
        ref.fused_backward(ref_model.loss(), lr=0.05)
        for a, b in zip(ours_model.parameters(), ref_model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, msg=lambda m: f"step {step + 1}: {m}")


def test_hand_step_with_clipping_and_decay():
    # g = (3, -4) (norm 5), tau = 1: c = 1 / (5 + 1e-6); value clip v = 3.5 first: (3, -3.5);
    # theta = (1 - 0.1 * 0.5) (1, 1) - 0.1 c (3, -3.5)
    p = torch.tensor([1.0, 1.0], dtype=torch.float64)
    opt = LOMO([p], lr=0.1, clip_grad_norm=1.0, clip_grad_value=3.5, weight_decay=0.5)
    p.grad = torch.tensor([3.0, -4.0], dtype=torch.float64)
    opt.step()
    c = 1.0 / (5.0 + 1e-6)
    want = torch.tensor([0.95 - 0.1 * c * 3.0, 0.95 + 0.1 * c * 3.5], dtype=torch.float64)
    torch.testing.assert_close(p, want, rtol=1e-14, atol=0)


def test_global_norm_spans_groups_and_without_clipping_it_is_sgd():
    a, b = torch.tensor([3.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
    opt = LOMO([{"params": [a]}, {"params": [b], "lr": 0.2}], lr=0.1, clip_grad_norm=1.0)
    a.grad, b.grad = torch.tensor([3.0], dtype=torch.float64), torch.tensor([4.0], dtype=torch.float64)
    opt.step()
    c = 1.0 / (5.0 + 1e-6)
    assert abs(a.item() - (3.0 - 0.1 * c * 3.0)) < 1e-14 and abs(b.item() - (4.0 - 0.2 * c * 4.0)) < 1e-14
    x = torch.randn(5, 3, dtype=torch.float64)
    y = x.clone()
    ours, sgd = LOMO([x], lr=0.03, weight_decay=0.1), torch.optim.SGD([y], lr=0.03)
    for _ in range(5):
        g = torch.randn(5, 3, dtype=torch.float64)
        x.grad, y.grad = g.clone(), g.clone()
        ours.step()
        with torch.no_grad():
            y.mul_(1 - 0.03 * 0.1)
        sgd.step()
    torch.testing.assert_close(x, y, rtol=1e-14, atol=1e-15)


def test_bfloat16_weights_are_updated_in_float32():
    p = torch.tensor([1.0], dtype=torch.bfloat16)
    opt = LOMO([p], lr=1.0)
    p.grad = torch.tensor([0.001], dtype=torch.bfloat16)
    opt.step()
    assert p.dtype == torch.bfloat16 and p.item() == float(torch.tensor(1.0 - float(p.grad.float()), dtype=torch.float32).bfloat16())
