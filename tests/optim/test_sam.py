"""SAM and ASAM: identities and hand-computed steps (no installable upstream takes a built base optimizer)."""

from __future__ import annotations

import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("SAM")


def half_square(w):
    def closure():
        w.grad = None
        loss = 0.5 * (w**2).sum()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("cls", [zij.SAM, zij.ASAM])
def test_rho_zero_is_the_base_optimizer(cls):
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    wrapped = cls(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.0)
    plain = torch.optim.SGD(base, lr=0.05, momentum=0.9)
    train_mlp(ENTRY, wrapped, ours, 10)
    train_mlp(ENTRY, plain, base, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, base))


def test_sam_hand_computed_step():
    """f = |w|^2 / 2 at w = (3, 4): e = rho w / 5 = (0.3, 0.4); the SGD step uses the gradient w + e."""
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SAM(torch.optim.SGD([w], lr=0.1), rho=0.5)
    loss = opt.step(half_square(w))
    assert loss.item() == 12.5  # the loss at the unperturbed weights
    torch.testing.assert_close(w.detach(), torch.tensor([3 - 0.1 * 3.3, 4 - 0.1 * 4.4], dtype=torch.float64))


def test_asam_hand_computed_step():
    """T = |w| (eta 0): e = rho T^2 g / |T g| = rho (27, 64) / sqrt(337)."""
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ASAM(torch.optim.SGD([w], lr=0.1), rho=0.5, eta=0.0)
    opt.step(half_square(w))
    e = torch.tensor([27.0, 64.0], dtype=torch.float64) * 0.5 / math.sqrt(337)
    start = torch.tensor([3.0, 4.0], dtype=torch.float64)
    torch.testing.assert_close(w.detach(), start - 0.1 * (start + e))


def test_manual_halves_equal_step_with_closure():
    a = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    b = a.detach().clone().requires_grad_()
    first = zij.SAM(torch.optim.AdamW([a], lr=0.01), rho=0.1)
    second = zij.SAM(torch.optim.AdamW([b], lr=0.01), rho=0.1)
    for _ in range(5):
        first.step(half_square(a))
        half_square(b)()
        second.first_step(zero_grad=True)
        half_square(b)()
        second.second_step(zero_grad=True)
    assert torch.equal(a, b)


def test_schedulers_reach_the_base_and_errors_are_clear():
    w = torch.ones(2, requires_grad=True)
    opt = zij.SAM(torch.optim.SGD([w], lr=0.1))
    torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5).step()
    assert opt.optimizer.param_groups[0]["lr"] == 0.05
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="no .inner."):
        opt.load_state_dict(torch.optim.SGD([w], lr=0.1).state_dict())
    with pytest.raises(ValueError, match="rho"):
        zij.SAM(torch.optim.SGD([w], lr=0.1), rho=-1.0)


def test_asam_normalizing_nothing_is_sam_and_a_subset_is_mixed():
    a, b = (torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True) for _ in range(2))
    zij.ASAM(torch.optim.SGD([a], lr=0.1), rho=0.5, eta=0.0, normalize=[]).step(half_square(a))
    zij.SAM(torch.optim.SGD([b], lr=0.1), rho=0.5).step(half_square(b))
    torch.testing.assert_close(a, b, rtol=1e-15, atol=0)
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    opt = zij.ASAM(torch.optim.SGD([w, bias], lr=0.1), rho=0.5, eta=0.0, normalize=[w])
    assert opt.normalized == [0]
    w.grad, bias.grad = w.detach().clone(), torch.tensor([2.0], dtype=torch.float64)
    opt.first_step()
    # T g = (9, 16) for w and g = 2 for the bias: norm sqrt(81 + 256 + 4)
    scale = 0.5 / math.sqrt(341)
    torch.testing.assert_close(w.detach() - torch.tensor([3.0, 4.0], dtype=torch.float64),
                               torch.tensor([27.0, 64.0], dtype=torch.float64) * scale)
    torch.testing.assert_close(bias.detach(), torch.tensor([2.0], dtype=torch.float64) * scale)
