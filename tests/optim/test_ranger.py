"""Ranger identities: RAdam inside Lookahead, with torch.optim.RAdam as the inner optimizer."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("Ranger")
RADAM = dict(lr=0.01, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.1)


def test_alpha1_is_radam_with_decoupled_weight_decay():
    # alpha = 1: phi <- theta, theta <- phi leaves the fast weights as they are
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.Ranger(ours, **RADAM, k=3, alpha=1.0)
    ref = torch.optim.RAdam(theirs, **RADAM, decoupled_weight_decay=True)
    train_mlp(ENTRY, opt, ours, 30)  # beta2 = 0.99: rho_t > 5 from step 6, so both branches run
    train_mlp(ENTRY, ref, theirs, 30)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_is_lookahead_around_radam():
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.Ranger(ours, **RADAM, k=4, alpha=0.5)
    ref = zij.Lookahead(torch.optim.RAdam(theirs, **RADAM, decoupled_weight_decay=True), k=4, alpha=0.5)
    train_mlp(ENTRY, opt, ours, 30)
    train_mlp(ENTRY, ref, theirs, 30)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_alpha0_returns_to_start_every_k_steps():
    params = mlp_params(ENTRY)
    start = [p.detach().clone() for p in params]
    opt = zij.Ranger(params, lr=0.01, k=3, alpha=0.0)
    train_mlp(ENTRY, opt, params, 3)
    assert all(torch.equal(a, b) for a, b in zip(params, start))
    train_mlp(ENTRY, opt, params, 1)
    assert not any(torch.equal(a, b) for a, b in zip(params, start))
