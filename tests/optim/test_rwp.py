"""RWP: reductions to its base optimizer, a step checked against its noise, and the noise's scale.

No installable package implements RWP (its official code is a distributed training script), so
it is checked by (1) alpha = 0 with gamma = 0 giving the base optimizer bit for bit, and each of
them alone up to the rounding of the mix or of adding and removing the noise, (2) one step on
f = |W|^2 / 2 against the noise redrawn from the same generator state, (3) the noise's standard
deviation per row (matrices) and per tensor (vectors), and (4) seeding and resuming.
"""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp
from zij.sharpness_aware.rwp import rwp_noise

ENTRY = zij.get_entry("RWP")
F64 = torch.float64


@pytest.mark.parametrize("kwargs, exact", [({"alpha": 0.0, "gamma": 0.0}, True), ({"alpha": 0.0, "gamma": 0.05}, False),
                                           ({"alpha": 0.7, "gamma": 0.0}, False)], ids=["both", "alpha0", "gamma0"])
@pytest.mark.parametrize("base", [(torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), (torch.optim.AdamW, {"lr": 0.01})],
                         ids=["sgd", "adamw"])
def test_neutral_settings_are_the_base_optimizer(base, kwargs, exact):
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.RWP(base[0](ours, **base[1]), **kwargs), ours, 10)
    train_mlp(ENTRY, base[0](plain_params, **base[1]), plain_params, 10)
    for a, b in zip(ours, plain_params):
        if exact:
            assert torch.equal(a, b)
        else:
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_step_mixes_the_perturbed_and_clean_gradients():
    """f = |W|^2 / 2: the clean gradient is W, the perturbed one W + n; SGD lr 0.1 gives
    W - 0.1 (alpha (W + n) + (1 - alpha) W). The closure sees W, then W + n; the clean loss is returned."""
    w = torch.tensor([[3.0, 4.0, 0.0], [0.5, -1.0, 2.0]], dtype=F64, requires_grad=True)
    start = w.detach().clone()
    seen = []

    def closure():
        w.grad = None
        seen.append(w.detach().clone())
        loss = 0.5 * (w**2).sum()
        loss.backward()
        return loss
    opt = zij.RWP(torch.optim.SGD([w], lr=0.1), alpha=0.3, gamma=0.2, seed=7)
    loss = opt.step(closure)
    noise = rwp_noise(start, 0.2, torch.Generator().manual_seed(7))
    assert loss.item() == pytest.approx(0.5 * float((start**2).sum()))
    assert torch.equal(seen[0], start)
    torch.testing.assert_close(seen[1], start + noise, rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(w.detach(), start - 0.1 * (0.3 * (start + noise) + 0.7 * start), rtol=1e-14, atol=1e-14)


def test_noise_scale_follows_rows_and_whole_vectors():
    g = torch.Generator().manual_seed(0)
    rows = torch.stack([torch.full((40000,), 0.01), torch.full((40000,), 0.05)]).to(F64)  # row norms 2 and 10
    noise = rwp_noise(rows, 0.1, g)
    torch.testing.assert_close(noise.std(dim=1), torch.tensor([0.2, 1.0], dtype=F64), rtol=0.02, atol=0)
    cube = torch.ones(2, 100, 100, dtype=F64)  # filters flattened: each of the 2 rows has norm 100
    torch.testing.assert_close(rwp_noise(cube, 0.01, g).reshape(2, -1).std(dim=1),
                               torch.tensor([1.0, 1.0], dtype=F64), rtol=0.03, atol=0)
    vector = torch.full((40000,), 0.01, dtype=F64)  # norm 2
    assert rwp_noise(vector, 0.1, g).std().item() == pytest.approx(0.2, rel=0.02)
    assert torch.equal(rwp_noise(torch.zeros(3, 4, dtype=F64), 0.1, g), torch.zeros(3, 4, dtype=F64))


def test_seeds_and_resume():
    def trained(seed, steps=6, opt=None, params=None):
        params = params if params is not None else mlp_params(ENTRY)
        opt = opt or zij.RWP(torch.optim.SGD(params, lr=0.05, momentum=0.9), gamma=0.1, seed=seed)
        train_mlp(ENTRY, opt, params, steps)
        return opt, params
    _, a = trained(3)
    _, b = trained(3)
    _, c = trained(4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    half, params = trained(3, steps=3)
    fresh = [p.detach().clone().requires_grad_() for p in params]
    reloaded = zij.RWP(torch.optim.SGD(fresh, lr=0.05, momentum=0.9), gamma=0.1, seed=99)
    reloaded.load_state_dict(half.state_dict())
    trained(None, steps=3, opt=reloaded, params=fresh)
    assert all(torch.equal(x, y) for x, y in zip(a, fresh))


def test_global_seed_when_seed_is_none():
    torch.manual_seed(5)
    first = mlp_params(ENTRY)
    train_mlp(ENTRY, zij.RWP(torch.optim.SGD(first, lr=0.05), gamma=0.1, seed=None), first, 3)
    torch.manual_seed(5)
    second = mlp_params(ENTRY)
    train_mlp(ENTRY, zij.RWP(torch.optim.SGD(second, lr=0.05), gamma=0.1, seed=None), second, 3)
    assert all(torch.equal(x, y) for x, y in zip(first, second))
