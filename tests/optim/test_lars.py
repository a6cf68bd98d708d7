"""LARS on vectors (the parity check adapts matrices only) and its identities."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("LARS")


def test_golden_values_on_a_vector():
    # f(theta) = theta_0 - theta_1: constant gradient g = (1, -1), |g| = sqrt(2) = 1.4142135624.
    # eta = 1, beta = 0.9, lambda = 0.1, kappa = 0.1, theta_0 = (3, 4):
    # t=1: r = 0.1 * 5 / (1.4142135624 + 0.1 * 5) = 0.2612038750, g + lambda theta = (1.3, -0.6)
    #      b_1 = 0.2612038750 * (1.3, -0.6) = (0.3395650375, -0.1567223250); theta_1 = (2.6604349625, 4.1567223250)
    # t=2: |theta_1| = 4.9352056367, r = 0.4935205637 / 1.9077341261 = 0.2586946247,
    #      g + lambda theta_1 = (1.2660434963, -0.5843277675),
    #      b_2 = 0.9 b_1 + r (...) = (0.6331271808, -0.2922125450); theta_2 = (2.0273077818, 4.4489348699)
    # t=3: |theta_2| = 4.8890692692, r = 0.2568975163, g + lambda theta_2 = (1.2027307782, -0.5551065130),
    #      b_3 = (0.8787930124, -0.4055967749); theta_3 = (1.1485147694, 4.8545316449)
    p = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    opt = zij.LARS([p], lr=1.0, momentum=0.9, weight_decay=0.1, trust_coefficient=0.1)
    expected = [(2.6604349625, 4.1567223250), (2.0273077818, 4.4489348699), (1.1485147694, 4.8545316449)]
    for want in expected:
        opt.zero_grad()
        (p[0] - p[1]).backward()
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)


def test_zero_weights_use_ratio_one():
    # theta_0 = 0: kappa |theta| / (...) would be 0; the local rate is 1, so b_1 = eta * g and theta_1 = -0.5 * (1, -1).
    p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = zij.LARS([p], lr=0.5, momentum=0.9, weight_decay=0.1, trust_coefficient=0.01)
    (p[0] - p[1]).backward()
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([-0.5, 0.5], dtype=torch.float64))


def test_excluded_vectors_are_momentum_sgd():
    # exclude_vectors: 1-D tensors follow b = beta b + eta g, theta -= b, which is torch's SGD
    # (buf = beta buf + g, theta -= eta buf) with b = eta buf.
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    vectors = [p for p in ours if p.ndim == 1]
    opt = zij.LARS(vectors, lr=0.1, momentum=0.9, weight_decay=0.5, exclude_vectors=True)
    ref = torch.optim.SGD([p for p in base if p.ndim == 1], lr=0.1, momentum=0.9)
    train_mlp(ENTRY, opt, ours, 10)
    train_mlp(ENTRY, ref, base, 10)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
