"""SGDW: hand-computed steps, with the decay scaled by the schedule multiplier s_t = lr / initial_lr."""

import torch

import zij


def test_golden_values_with_a_schedule():
    # alpha = 0.5, beta1 = 0.5, lambda = 0.1, theta_0 = 1; a StepLR halves lr after the first step.
    # t=1: s = 1, lr = 0.5, g = 2: m = 0.5 * 2 = 1;  theta = 1 - 1 - 0.1 * 1 = -0.1
    # t=2: s = 0.5, lr = 0.25, g = 4: m = 0.5 * 1 + 0.25 * 4 = 1.5;  theta = -0.1 - 1.5 - 0.5 * 0.1 * (-0.1) = -1.595
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SGDW([p], lr=0.5, momentum=0.5, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for g, want in ((2.0, -0.1), (4.0, -1.595)):
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        sched.step()
        assert abs(p.item() - want) < 1e-12
    assert opt.param_groups[0]["initial_lr"] == 0.5


def test_without_decay_equals_torch_sgd():
    # m_t = beta m + lr g with a constant lr is lr times torch's buffer (which starts at g_1).
    ours = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    base = ours.detach().clone().requires_grad_()
    opt = zij.SGDW([ours], lr=0.1, momentum=0.9)
    ref = torch.optim.SGD([base], lr=0.1, momentum=0.9)
    for g in ([1.0, 2.0], [-3.0, 0.5], [0.25, 1.0]):
        ours.grad = torch.tensor(g, dtype=torch.float64)
        base.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        ref.step()
    torch.testing.assert_close(ours, base, rtol=1e-12, atol=1e-12)
