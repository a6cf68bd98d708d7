"""F-SAM: reductions, a hand-computed second step, and parity with pytorch-optimizer's FriendlySAM.

pytorch-optimizer's FriendlySAM builds its own base optimizer and expects the first gradients to be computed
before ``step(closure)``, which then calls the closure once: the matrix's parity test cannot drive it.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("FriendlySAM")
F64 = torch.float64


def half_square(w, a=(1.0, 1.0)):
    scale = torch.tensor(a, dtype=w.dtype)

    def closure():
        w.grad = None
        loss = 0.5 * (scale * w**2).sum()
        loss.backward()
        return loss
    return closure


@pytest.mark.parametrize("adaptive", [False, True])
def test_sigma_zero_is_sam(adaptive):
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.FriendlySAM(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, sigma=0.0,
                                     adaptive=adaptive), ours, 10)
    sam = (zij.ASAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05, eta=0.0) if adaptive
           else zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05))
    train_mlp(ENTRY, sam, sam_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, sam_params))


def test_rho_zero_is_the_base_optimizer():
    ours, plain = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.FriendlySAM(torch.optim.AdamW(ours, lr=0.01), rho=0.0), ours, 10)
    train_mlp(ENTRY, torch.optim.AdamW(plain, lr=0.01), plain, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain))


def test_two_steps_by_hand():
    """f = (w1^2 + 2 w2^2)/2 from (3, 4), SGD lr 0.1, rho 0.5, sigma 1, lambda 0.5.
    Step 1 is SAM's: d = g = (3, 8). Step 2: d = g_2 - m_1 with m_1 = g_1; m_2 = (g_1 + g_2) / 2."""
    w = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    opt = zij.FriendlySAM(torch.optim.SGD([w], lr=0.1), rho=0.5, sigma=1.0, lmbda=0.5)
    closure = half_square(w, (1.0, 2.0))

    def grad(x):
        return (x[0], 2 * x[1])

    def sam_step(x, d):
        n = math.hypot(*d)
        g = grad((x[0] + 0.5 * d[0] / n, x[1] + 0.5 * d[1] / n))
        return (x[0] - 0.1 * g[0], x[1] - 0.1 * g[1])
    x0 = (3.0, 4.0)
    g1 = grad(x0)
    x1 = sam_step(x0, g1)
    opt.step(closure)
    torch.testing.assert_close(w.detach(), torch.tensor(x1, dtype=F64), rtol=1e-12, atol=1e-12)
    g2 = grad(x1)
    x2 = sam_step(x1, (g2[0] - g1[0], g2[1] - g1[1]))
    opt.step(closure)
    torch.testing.assert_close(w.detach(), torch.tensor(x2, dtype=F64), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[w]["momentum"], torch.tensor([(g1[0] + g2[0]) / 2, (g1[1] + g2[1]) / 2],
                                                                      dtype=F64))


def test_manual_halves_equal_step_and_settings_survive_state_dict():
    a = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    first = zij.FriendlySAM(torch.optim.SGD([a], lr=0.05, momentum=0.9), rho=0.1, lmbda=0.8)
    second = zij.FriendlySAM(torch.optim.SGD([b], lr=0.05, momentum=0.9), rho=0.1, lmbda=0.8)
    for _ in range(4):
        first.step(half_square(a, (1.0, 3.0)))
        half_square(b, (1.0, 3.0))()
        second.first_step(zero_grad=True)
        half_square(b, (1.0, 3.0))()
        second.second_step(zero_grad=True)
    assert torch.equal(a, b)
    other = zij.FriendlySAM(torch.optim.SGD([b], lr=0.05, momentum=0.9))
    other.load_state_dict(first.state_dict())
    assert (other.sigma, other.lmbda) == (1.0, 0.8)
    assert torch.equal(other.state[b]["momentum"], first.state[a]["momentum"])
    with pytest.raises(ValueError, match="closure"):
        first.step()


@pytest.mark.parametrize("adaptive", [False, True])
def test_parity_with_pytorch_optimizer(adaptive):
    reference = pytest.importorskip("pytorch_optimizer").FriendlySAM
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    twin = copy.deepcopy(model)
    x, y = torch.randn(16, 4, dtype=F64), torch.randn(16, 1, dtype=F64)
    ours = zij.FriendlySAM(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), rho=0.1, sigma=1.0,
                           lmbda=0.9, adaptive=adaptive)
    theirs = reference(twin.parameters(), torch.optim.SGD, rho=0.1, sigma=1.0, lmbda=0.9, adaptive=adaptive,
                       lr=0.05, momentum=0.9, foreach=False)

    def closure_for(net, opt):
        def closure():
            opt.zero_grad()
            loss = (net(x) - y).square().mean()
            loss.backward()
            return loss
        return closure
    for _ in range(50):
        ours.step(closure_for(model, ours))
        closure = closure_for(twin, theirs)
        closure()
        theirs.step(closure)
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
