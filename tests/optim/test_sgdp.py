"""SGDP: the projection on scale-invariant weights (which the MLP parity seldom reaches) and identities."""

import pytest
import torch

import zij
from test_adamp import scale_invariant_loss, scale_invariant_params, train

KWARGS = {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "delta": 0.1, "wd_ratio": 0.1}


def test_matches_official_code_with_nesterov():
    import adamp
    ours, theirs = scale_invariant_params(), scale_invariant_params()
    opt = zij.SGDP(ours, **KWARGS, nesterov=True)
    ref = adamp.SGDP(theirs, **KWARGS, nesterov=True, eps=1e-12)
    for _ in range(30):
        train(opt, ours, 1)
        train(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_buffer_is_not_projected():
    # The paper's rule projects the step q_t, not the momentum b_t (pytorch-optimizer agrees; the official code
    # without Nesterov momentum would project b_t in place). The buffer stays the plain momentum of the gradients.
    params = scale_invariant_params()
    opt = zij.SGDP(params, **KWARGS)
    buffers = [torch.zeros_like(p) for p in params]
    for _ in range(5):
        opt.zero_grad()
        scale_invariant_loss(params).backward()
        for b, p in zip(buffers, params):
            b.mul_(0.9).add_(p.grad)
        opt.step()
    for b, p in zip(buffers, params):
        torch.testing.assert_close(opt.state[p]["momentum_buffer"], b, rtol=1e-12, atol=1e-15)


def test_matches_pytorch_optimizer_without_nesterov():
    import pytorch_optimizer as po
    ours, theirs = scale_invariant_params(), scale_invariant_params()
    opt = zij.SGDP(ours, **KWARGS)
    ref = po.SGDP(theirs, **KWARGS, eps=1e-12)
    for _ in range(30):
        train(opt, ours, 1)
        train(ref, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_delta_zero_without_decay_is_torch_sgd(nesterov):
    # |cos| < 0 never holds and lambda = 0: SGDP is SGD with (Nesterov) momentum.
    ours, base = scale_invariant_params(), scale_invariant_params()
    train(zij.SGDP(ours, lr=0.05, momentum=0.9, delta=0.0, nesterov=nesterov), ours, 20)
    train(torch.optim.SGD(base, lr=0.05, momentum=0.9, nesterov=nesterov), base, 20)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_decay_is_scaled_by_one_over_one_minus_momentum_and_the_ratio():
    # Zero gradient on a matrix: cos = 0 passes the test, the step is 0, and only the decay acts:
    # theta_1 = theta_0 (1 - eta lambda rho / (1 - mu)) = 1 - 0.1 * 0.5 * 0.1 / 0.5 = 0.99.
    p = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.SGDP([p], lr=0.1, momentum=0.5, weight_decay=0.5, wd_ratio=0.1)
    p.grad = torch.zeros(2, 3, dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2, 3), 0.99, dtype=torch.float64), rtol=0, atol=1e-15)
