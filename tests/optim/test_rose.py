"""Rose by hand: row ranges and their trust blend, vectors, scalars, the decay floor, and no state."""

from __future__ import annotations

import torch

import zij

F64 = torch.float64


def _step(p, grad, **kwargs):
    opt = zij.Rose([p], **kwargs)
    p.grad = torch.as_tensor(grad, dtype=p.dtype)
    opt.step()
    return opt


def test_matrix_rows_by_hand():
    """G = [[1, 2, 6], [0, 0, 3]]: centred rows (-2, -1, 3) and (-1, -1, 2), ranges 5 and 3, mean 4, std 1,
    trust 4/5: denominators 4.8 and 3.2."""
    w = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    opt = _step(w, [[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]], lr=0.1, weight_decay=0.0)
    expected = -0.1 * torch.tensor([[-2 / 4.8, -1 / 4.8, 3 / 4.8], [-1 / 3.2, -1 / 3.2, 2 / 3.2]], dtype=F64)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-14, atol=1e-15)
    assert all(len(s) == 0 for s in opt.state.values())  # stateless, not even a step count


def test_matrix_without_centring_or_trust():
    w = torch.zeros(2, 3, dtype=F64, requires_grad=True)
    _step(w, [[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]], lr=0.1, weight_decay=0.0, centralize=False, stabilize=False)
    expected = -0.1 * torch.tensor([[1 / 5, 2 / 5, 6 / 5], [0.0, 0.0, 1.0]], dtype=F64)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-14, atol=1e-15)


def test_vector_scalar_and_zero_range():
    """A vector is divided by |max| - min of its entries as they are (here |-1| - (-3) = 4); a constant
    gradient has range 0 and is taken as is; a scalar moves by -lr sign(g)."""
    v = torch.zeros(2, dtype=F64, requires_grad=True)
    _step(v, [-3.0, -1.0], lr=0.1, weight_decay=0.0)
    torch.testing.assert_close(v.detach(), torch.tensor([0.3 / 4, 0.1 / 4], dtype=F64))
    c = torch.zeros(3, dtype=F64, requires_grad=True)
    _step(c, [2.0, 2.0, 2.0], lr=0.1, weight_decay=0.0)
    torch.testing.assert_close(c.detach(), torch.full((3,), -0.2, dtype=F64))
    s = torch.tensor(1.0, dtype=F64, requires_grad=True)
    _step(s, -5.0, lr=0.1, weight_decay=0.0)
    assert s.item() == 1.1


def test_decay_factor_is_floored_and_follows_the_schedule():
    w = torch.ones(3, dtype=F64, requires_grad=True)
    _step(w, [0.0, 0.0, 0.0], lr=2.0, weight_decay=1.0)  # 1 - 2 < 0: the weights go to zero, not through it
    assert torch.equal(w.detach(), torch.zeros(3, dtype=F64))
    w = torch.ones(3, dtype=F64, requires_grad=True)
    opt = zij.Rose([w], lr=0.1, weight_decay=0.5, wd_schedule=True)
    for lr in (0.1, 0.05):  # the reference is the first step's rate: factors 1 - 0.5, then 1 - 0.25
        opt.param_groups[0]["lr"] = lr
        w.grad = torch.zeros(3, dtype=F64)
        opt.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.5 * 0.75, dtype=F64))
    w = torch.ones(3, dtype=F64, requires_grad=True)
    _step(w, [0.0, 0.0, 0.0], lr=0.1, weight_decay=0.5, wd_schedule=0.2)  # a given reference: 1 - 0.25
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.75, dtype=F64))


def test_bfloat16_weights_round_stochastically():
    """Steps of lr / 4 = 2^-12 are below bfloat16's spacing at 1 (2^-7): with rounding to nearest they would be
    lost; stochastic rounding moves the weights by the right amount on average."""
    torch.manual_seed(0)
    w = torch.ones(4096, dtype=torch.bfloat16, requires_grad=True)
    opt = zij.Rose([w], lr=2.0**-10, weight_decay=0.0)
    for _ in range(16):
        w.grad = torch.cat([torch.full((2048,), -1.0), torch.full((2048,), 3.0)]).to(torch.bfloat16)
        opt.step()
    moved = w.detach().double().mean().item() - 1.0
    # each step: grads -1 and 3, range 4: +2^-12 for half, -3 * 2^-12 for the other half; mean -2^-12
    assert abs(moved - 16 * -(2.0**-12)) < 2e-4


def test_compute_dtype_names():
    w = torch.zeros(2, 2, requires_grad=True)
    for name in ("fp32", "float64", None, torch.float32):
        zij.Rose([w], compute_dtype=name)
