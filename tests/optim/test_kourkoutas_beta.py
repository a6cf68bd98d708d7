"""Kourkoutas-beta: identities with Adam and hand-computed sunspike steps (no PyTorch upstream exists)."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("KourkoutasBeta")


def _adam_pair(beta2):
    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    ref = torch.optim.Adam(theirs, lr=0.01, betas=(0.9, beta2), eps=1e-8)
    return ours, theirs, ref


def test_fixed_beta2_with_bias_correction_is_adam():
    # beta2_min = beta2_max: beta2_t = beta2_max whatever the sunspike, and both corrections are Adam's
    for mode in ("beta2max", "exact"):
        ours, theirs, ref = _adam_pair(0.99)
        opt = zij.KourkoutasBeta(ours, lr=0.01, beta1=0.9, beta2_max=0.99, beta2_min=0.99, eps=1e-8,
                                 bias_correction=mode)
        train_mlp(ENTRY, opt, ours, 25)
        train_mlp(ENTRY, ref, theirs, 25)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=mode)


def test_warmup_holds_beta2_at_the_midpoint():
    # during warm-up beta2 = (0.5 + 0.9) / 2 = 0.7 for every tensor; "exact" corrects with 1 - 0.7^t: Adam
    ours, theirs, ref = _adam_pair(0.7)
    opt = zij.KourkoutasBeta(ours, lr=0.01, beta1=0.9, beta2_max=0.9, beta2_min=0.5, eps=1e-8, warmup_steps=20,
                             bias_correction="exact")
    train_mlp(ENTRY, opt, ours, 20)
    train_mlp(ENTRY, ref, theirs, 20)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    train_mlp(ENTRY, opt, ours, 1)  # step 21 uses the sunspike: beta2 differs from 0.7
    train_mlp(ENTRY, ref, theirs, 1)
    assert not all(torch.allclose(a, b, rtol=1e-9, atol=0) for a, b in zip(ours, theirs))


def test_three_steps_by_hand():
    # lr = 0.1, beta1 = 0.5, beta2 in [0.3, 0.9], alpha = 0.5, tiny = 0, eps = 0, no bias correction; theta_0 = (1, 1)
    # step 1: g = (3, 4), n = 5, r = 0.5 * 0 + 0.5 * 5 = 2.5, ratio 2, s = 2/3, beta2 = 0.9 - 0.6 * 2/3 = 0.5
    #         m = (1.5, 2), v = 0.5 * (9, 16) = (4.5, 8), m / sqrt(v) = sqrt(0.5) each = 0.70710678
    # step 2: g = (1.5, 2), n = 2.5, r = 1.25 + 1.25 = 2.5, ratio 1, s = 1/2, beta2 = 0.9 - 0.3 = 0.6
    #         m = (1.5, 2), v = 0.6 * (4.5, 8) + 0.4 * (2.25, 4) = (3.6, 6.4), m / sqrt(v) = sqrt(0.625) = 0.79056942
    # step 3: g = (0.3, -0.4), n = 0.5, r = 1.25 + 0.25 = 1.5, ratio 1/3, s = 1/4, beta2 = 0.9 - 0.15 = 0.75
    #         m = (0.9, 0.8), v = 0.75 * (3.6, 6.4) + 0.25 * (0.09, 0.16) = (2.7225, 4.84), sqrt(v) = (1.65, 2.2)
    #         m / sqrt(v) = (6/11, 4/11) = (0.54545455, 0.36363636)
    # theta_3 = 1 - 0.1 * (0.70710678 + 0.79056942 + (0.54545455, 0.36363636)) = (0.79568693, 0.81386874)
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = zij.KourkoutasBeta([p], lr=0.1, beta1=0.5, beta2_max=0.9, beta2_min=0.3, alpha=0.5, eps=0.0,
                             tiny_spike=0.0, bias_correction="none")
    expected = [(0.92928932, 0.92928932), (0.85023238, 0.85023238), (0.79568693, 0.81386874)]
    for grad, want in zip([(3.0, 4.0), (1.5, 2.0), (0.3, -0.4)], expected):
        p.grad = torch.tensor(grad, dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    state = opt.state[p]
    assert abs(state["norm_ema"].item() - 1.5) < 1e-12
    assert abs(state["beta2_prod"].item() - 0.5 * 0.6 * 0.75) < 1e-12


def test_each_tensor_is_its_own_layer():
    # the same gradient history gives the same beta2 whether a tensor is alone or next to a spiking one
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(3, dtype=torch.float64, requires_grad=True)
    alone = torch.ones(3, dtype=torch.float64, requires_grad=True)
    together = zij.KourkoutasBeta([a, b], lr=0.01)
    single = zij.KourkoutasBeta([alone], lr=0.01)
    for scale in (1.0, 100.0, 1.0):
        a.grad = torch.full((3,), 0.5, dtype=torch.float64)
        b.grad = torch.full((3,), scale, dtype=torch.float64)
        alone.grad = torch.full((3,), 0.5, dtype=torch.float64)
        together.step()
        single.step()
    assert torch.equal(a, alone)
