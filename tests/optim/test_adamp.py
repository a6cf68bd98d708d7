"""AdamP: the projection on scale-invariant weights (which the MLP parity seldom reaches) and identities."""

import pytest
import torch

import zij
from _problem_helpers import mlp_loss, mlp_params
from zij.first_order.adamp import project_scale_invariant

ENTRY = zij.get_entry("AdamP")


def scale_invariant_params(seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randn(6, 5, generator=g, dtype=torch.float64).requires_grad_()  # each row normalized
    whole = torch.randn(3, 4, generator=g, dtype=torch.float64).requires_grad_()  # normalized as a whole
    return [rows, whole]


def scale_invariant_loss(params):
    """Depends on each row of the first tensor and on the second tensor only through their directions."""
    rows, whole = params
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, generator=g, dtype=torch.float64)
    y = torch.randn(16, 6, generator=g, dtype=torch.float64)
    a = torch.randn(3, 2, generator=g, dtype=torch.float64)
    hidden = x @ (rows / rows.norm(dim=1, keepdim=True)).t()
    mixed = torch.tanh(hidden[:, :4]) @ (whole / whole.norm()).t() @ a
    return ((hidden - y) ** 2).mean() + ((mixed - 1) ** 2).mean()


def train(opt, params, steps):
    for _ in range(steps):
        opt.zero_grad()
        scale_invariant_loss(params).backward()
        opt.step()


def test_projection_removes_the_radial_part_per_channel_and_per_layer():
    rows, whole = scale_invariant_params()
    scale_invariant_loss([rows, whole]).backward()
    for p in (rows, whole):
        update = torch.randn(p.shape, dtype=torch.float64)
        assert project_scale_invariant(p.detach(), p.grad, update, delta=0.1)
        if p is rows:  # each row is scale-invariant: the channel view passes and every row is projected
            assert (update * p).sum(dim=1).abs().max() < 1e-12
        else:  # only the whole tensor is: the layer view passes
            assert (update * p).sum().abs() < 1e-12


def test_projection_leaves_other_weights_and_vectors_alone():
    p = torch.ones(3, 4, dtype=torch.float64)
    update = torch.randn(3, 4, dtype=torch.float64)
    before = update.clone()
    assert not project_scale_invariant(p, p.clone(), update, delta=0.1)  # gradient parallel to the weight
    assert torch.equal(update, before)
    v = torch.ones(4, dtype=torch.float64)
    assert not project_scale_invariant(v, torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64), v.clone(), delta=1.0)


def test_matches_official_code_on_scale_invariant_weights():
    import adamp
    kwargs = {"lr": 0.01, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "delta": 0.1, "wd_ratio": 0.1}
    for nesterov in (False, True):
        ours, theirs = scale_invariant_params(), scale_invariant_params()
        opt = zij.AdamP(ours, **kwargs, nesterov=nesterov)
        ref = adamp.AdamP(theirs, **kwargs, nesterov=nesterov)
        for _ in range(30):
            train(opt, ours, 1)
            train(ref, theirs, 1)
            for a, b in zip(ours, theirs):
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_norm_of_scale_invariant_weights_barely_grows():
    # Adam's radial step grows the norm of scale-invariant weights; AdamP removes it (the norm then grows only
    # to second order in the step).
    adamp_params, adam_params = scale_invariant_params(), scale_invariant_params()
    start = [p.detach().norm() for p in adamp_params]
    train(zij.AdamP(adamp_params, lr=0.05), adamp_params, 30)
    train(torch.optim.Adam(adam_params, lr=0.05), adam_params, 30)
    for p, q, n0 in zip(adamp_params, adam_params, start):
        assert p.detach().norm() - n0 < 0.25 * (q.detach().norm() - n0)


def test_delta_zero_never_projects_and_is_adamw():
    # |cos| < 0 never holds: AdamP is AdamW (bias-corrected Adam, decoupled decay).
    ours, base = scale_invariant_params(), scale_invariant_params()
    train(zij.AdamP(ours, lr=0.01, weight_decay=0.1, delta=0.0), ours, 20)
    train(torch.optim.AdamW(base, lr=0.01, weight_decay=0.1), base, 20)
    for a, b in zip(ours, base):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_delta_zero_with_nesterov_follows_the_rule():
    # Nesterov momentum: p_t = (beta1 m_t + (1 - beta1) g_t) / (1 - beta1^t) / (sqrt(v_t / (1 - beta2^t)) + eps),
    # written out with plain tensor arithmetic.
    params = mlp_params(ENTRY)
    opt = zij.AdamP(params, lr=0.01, betas=(0.9, 0.99), delta=0.0, nesterov=True)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    expected = [p.detach().clone() for p in params]
    for t in range(1, 6):
        opt.zero_grad()
        mlp_loss(params).backward()
        for i, p in enumerate(params):
            g = p.grad
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.99 * v[i] + 0.01 * g * g
            step = (0.9 * m[i] + 0.1 * g) / (1 - 0.9**t) / ((v[i] / (1 - 0.99**t)).sqrt() + 1e-8)
            expected[i] = expected[i] - 0.01 * step
        opt.step()
        for p, e in zip(params, expected):
            torch.testing.assert_close(p.detach(), e, rtol=1e-12, atol=1e-14)
