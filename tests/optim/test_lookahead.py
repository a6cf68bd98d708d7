"""Lookahead identities that hold whatever the inner optimizer."""

import torch

import zij
from _problem_helpers import mlp_loss, mlp_params, train_mlp

ENTRY = zij.get_entry("Lookahead")


def test_k1_alpha1_is_the_inner_optimizer():
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    wrapped = zij.Lookahead(torch.optim.AdamW(ours, lr=0.01), k=1, alpha=1.0)
    inner = torch.optim.AdamW(base, lr=0.01)
    train_mlp(ENTRY, wrapped, ours, 12)
    train_mlp(ENTRY, inner, base, 12)
    # equal up to the rounding of the sync phi + 1 * (theta - phi), a few ulps on some CPUs
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-16)


def test_alpha0_returns_to_start_every_k_steps():
    params = mlp_params(ENTRY)
    start = [p.detach().clone() for p in params]
    opt = zij.Lookahead(torch.optim.SGD(params, lr=0.1), k=3, alpha=0.0)
    train_mlp(ENTRY, opt, params, 3)
    assert all(torch.equal(a, b) for a, b in zip(params, start))
    train_mlp(ENTRY, opt, params, 1)
    assert not all(torch.equal(a, b) for a, b in zip(params, start))


def test_sync_is_the_interpolation():
    p = torch.tensor([2.0], requires_grad=True)
    opt = zij.Lookahead(torch.optim.SGD([p], lr=0.5), k=2, alpha=0.25)
    for _ in range(2):
        opt.zero_grad()
        (p**2).sum().backward()  # gradient 2p: 2.0 -> 0.0 after one SGD step, stays 0.0
        opt.step()
    # fast weights after 2 steps: 0.0; slow: 2 + 0.25 * (0 - 2) = 1.5
    assert p.item() == 1.5


def test_scheduler_reaches_inner_optimizer_after_resume():
    params = mlp_params(ENTRY)
    opt = zij.Lookahead(torch.optim.SGD(params, lr=0.1))
    train_mlp(ENTRY, opt, params, 2)
    fresh = zij.Lookahead(torch.optim.SGD(params, lr=0.1))
    fresh.load_state_dict(opt.state_dict())
    zij.optim.lr_scheduler.StepLR(fresh, step_size=1, gamma=0.5).step()
    assert fresh.optimizer.param_groups[0]["lr"] == 0.05
    assert mlp_loss(params).isfinite()
