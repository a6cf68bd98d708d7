"""NorMuon: parity with pytorch-optimizer's NorMuon, a hand-written official step, and its row identity.

pytorch-optimizer's NorMuon takes only groups with an explicit ``use_muon`` flag, so the shared
parity check cannot drive it; this file does.
"""

from __future__ import annotations

import functools

import pytest
import torch

import zij

from _problem_helpers import mlp_loss

normuon_module = pytest.importorskip("pytorch_optimizer.optimizer.muon.normuon")


def _matrices(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(s, generator=g, dtype=torch.float64) * 0.5).requires_grad_() for s in [(8, 4), (3, 8)]]


@pytest.mark.parametrize("nesterov", [True, False])
def test_parity_with_pytorch_optimizer(monkeypatch, nesterov):
    """50 steps on the MLP's two matrices (one tall, one wide) equal pytorch-optimizer's NorMuon.

    Restrictions: its Newton-Schulz iteration always runs in bfloat16 with fused addmm kernels, whose
    rounding differs from separate products, so both run the iteration in float64 here (its own
    function, given dtype=float64); and only matrices are compared, since its AdamW groups write the
    step differently from the official adam_update (addcdiv against lerp and division), which
    tests/optim/test_muon_aux_adam.py checks against the official code for the shared fallback.
    Its normalization floors the norm at 1e-7 where the official code adds 1e-7, a relative
    difference of 1e-7 / norm; the loss is scaled by 1e4 (which NorMuon's normalizations
    otherwise ignore) so that difference stays far below the tolerance.
    """
    ns = functools.partial(normuon_module.zero_power_via_newton_schulz_5, dtype=torch.float64)
    monkeypatch.setattr(normuon_module, "zero_power_via_newton_schulz_5", ns)
    ours, theirs = _matrices(), _matrices()
    opt = zij.NorMuon(ours, lr=0.02, momentum=0.9, beta2=0.9, weight_decay=0.1, nesterov=nesterov, ns_dtype=None)
    ref = normuon_module.NorMuon([dict(params=theirs, use_muon=True)], lr=0.02, momentum=0.9, beta2=0.9,
                                 weight_decay=0.1, nesterov=nesterov, foreach=False)

    def loss(ps):
        w1, w2 = ps
        x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        return 1e4 * (torch.tanh(x @ w1.t()) @ w2.t()).square().mean()

    for step in range(50):
        for o, ps in ((opt, ours), (ref, theirs)):
            o.zero_grad()
            loss(ps).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


def _ns(x):
    y = x / (torch.linalg.norm(x) + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        a = y @ y.T
        y = 3.4445 * y + (-4.7750 * a + 2.0315 * a @ a) @ y
    return y.T if tall else y


def test_two_steps_against_hand_written_official_rule():
    """Two float64 steps on a tall matrix equal the record's rule written out by hand."""
    torch.manual_seed(0)
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(6, 3, dtype=torch.float64) for _ in range(2)]
    x = p.detach().clone()
    opt = zij.NorMuon([p], lr=0.1, momentum=0.9, beta2=0.8, weight_decay=0.2, ns_dtype=None)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    m, v = torch.zeros(6, 3, dtype=torch.float64), torch.zeros(6, 1, dtype=torch.float64)
    for g in grads:
        m = 0.9 * m + 0.1 * g
        o = _ns(0.1 * g + 0.9 * m)
        v = 0.8 * v + 0.2 * (o * o).mean(dim=1, keepdim=True)
        o_hat = o / (v.sqrt() + 1e-10)
        u = torch.linalg.norm(o) / (torch.linalg.norm(o_hat) + 1e-10) * (6 / 3) ** 0.5 * o_hat
        x = (1 - 0.1 * 0.2) * x - 0.1 * u
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)


def test_rows_of_the_update_have_equal_norms_without_averaging():
    """With beta2 = 0 each row is divided by its own RMS, so every row of the update has the same norm,
    and the update keeps the Frobenius norm of the orthogonalized matrix (wide: shape factor 1)."""
    torch.manual_seed(0)
    g = torch.randn(5, 12, dtype=torch.float64) * torch.linspace(0.1, 3, 5, dtype=torch.float64)[:, None]
    p = torch.zeros(5, 12, dtype=torch.float64, requires_grad=True)
    opt = zij.NorMuon([p], lr=1.0, momentum=0.0, beta2=0.0, nesterov=False, ns_dtype=None)
    p.grad = g
    opt.step()
    update = -p.detach()
    row_norms = update.norm(dim=1)
    torch.testing.assert_close(row_norms, row_norms.mean().expand(5), rtol=1e-9, atol=0)
    torch.testing.assert_close(update.norm(), _ns(g).norm(), rtol=1e-9, atol=0)


def test_vectors_go_to_adamw_and_state_has_one_value_per_row():
    w, b = torch.randn(4, 3, requires_grad=True), torch.randn(4, requires_grad=True)
    kernel = torch.randn(5, 2, 3, 3, requires_grad=True)
    opt = zij.NorMuon([w, b, kernel])
    (w.sum() + b.sum() + kernel.square().sum()).backward()
    opt.step()
    assert opt.state[w]["row_sq"].shape == (4, 1) and opt.state[kernel]["row_sq"].shape == (5, 1)
    assert set(opt.state[b]) == {"step", "exp_avg", "exp_avg_sq"}


def test_adamw_fallback_equals_muon_with_aux_adam():
    params = [[t.detach().clone().requires_grad_() for t in _matrices()] + [torch.randn(3, dtype=torch.float64)]
              for _ in range(2)]
    params[1][2] = params[0][2].clone()
    for ps in params:
        ps[2].requires_grad_()
    opts = [zij.NorMuon(params[0], adam_lr=0.01), zij.MuonWithAuxAdam(params[1], adam_lr=0.01)]
    for _ in range(5):
        for o, ps in zip(opts, params):
            o.zero_grad()
            (ps[2].square().sum() + mlp_loss(ps[:2])).backward()
            o.step()
    assert torch.equal(params[0][2], params[1][2])
