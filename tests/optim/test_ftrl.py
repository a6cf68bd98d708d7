"""FTRL-Proximal: hand-computed steps and L1 sparsity."""

import math

import torch

import zij


def test_golden_values():
    # eta = 1, delta = 1, lambda1 = 0.5, lambda2 = 0, theta_0 = 0.
    # t=1: g = 2: sigma = (2 - 0) / 1 = 2, z = 2 - 2 * 0 = 2, n = 4; |z| > 0.5: theta = -(2 - 0.5) / (1 + 2) = -0.5
    # t=2: g = 1: sigma = sqrt5 - 2, z = 2 + 1 - (sqrt5 - 2)(-0.5) = 3 + (sqrt5 - 2)/2, n = 5;
    #      theta = -(z - 0.5) / (1 + sqrt5)
    p = torch.tensor([0.0], dtype=torch.float64)
    opt = zij.FTRL([p], lr=1.0, beta=1.0, lambda1=0.5)
    z2 = 3 + (math.sqrt(5) - 2) / 2
    for g, want in ((2.0, -0.5), (1.0, -(z2 - 0.5) / (1 + math.sqrt(5)))):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        assert abs(p.item() - want) < 1e-12


def test_l1_keeps_small_accumulated_gradients_at_zero():
    # |z| <= lambda1 gives exactly zero, whatever the denominator.
    p = torch.tensor([0.0, 0.0], dtype=torch.float64)
    opt = zij.FTRL([p], lr=1.0, lambda1=1.0, lambda2=0.5)
    for g in ([0.3, 3.0], [-0.2, 1.0], [0.4, 0.5]):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        assert p[0].item() == 0.0 and p[1].item() < 0.0


def test_a_step_at_zero_learning_rate_changes_nothing():
    # FTRL divides by the learning rate; a warm-up schedule's first step at lr = 0 is no step at all.
    p = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    opt = zij.FTRL([p], lr=0.1, lambda1=1e-3)
    p.grad = torch.tensor([1.0, -2.0, 0.5])
    opt.step()
    before = p.detach().clone(), {k: v.clone() for k, v in opt.state[p].items() if torch.is_tensor(v)}
    opt.param_groups[0]["lr"] = 0.0
    p.grad = torch.tensor([3.0, 1.0, -1.0])
    opt.step()
    assert torch.equal(p.detach(), before[0])
    for k in ("z", "n"):
        assert torch.equal(opt.state[p][k], before[1][k])
