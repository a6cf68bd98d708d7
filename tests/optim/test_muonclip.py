"""MuonClip: parity with pytorch-optimizer's MuonClip (Muon step and QK-Clip), hand values, the clip's cap.

pytorch-optimizer's MuonClip takes only groups with an explicit ``use_muon`` flag and takes the
attention logits as an argument of ``step``, so the shared parity check cannot drive it; this file does.
"""

from __future__ import annotations

import functools

import pytest
import torch

import zij

muon_base = pytest.importorskip("pytorch_optimizer.optimizer.muon.base")
from pytorch_optimizer import MuonClip as ReferenceMuonClip  # noqa: E402


def _attention(seed=0):
    """Query and key projections of 2 heads of width 3 (6 x 5 each) and an output matrix (5 x 6)."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(s, generator=g, dtype=torch.float64) * 0.8).requires_grad_() for s in [(6, 5), (6, 5), (5, 6)]]


def _loss_and_logits(ps):
    wq, wk, wo = ps
    x = torch.randn(7, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    q = (x @ wq.t()).view(7, 2, 3).transpose(0, 1)
    k = (x @ wk.t()).view(7, 2, 3).transpose(0, 1)
    logits = 4.0 * q @ k.transpose(-1, -2)
    out = (logits.softmax(-1) @ k).transpose(0, 1).reshape(7, 6) @ wo.t()
    # the second term rewards large logits, so the clip keeps acting
    return 1e4 * (out.square().mean() - 0.01 * logits.square().mean()), logits.detach().amax(dim=(-2, -1))


@pytest.mark.parametrize("clip", [False, True])
def test_parity_with_pytorch_optimizer(monkeypatch, clip):
    """50 steps of Muon, with or without QK-Clip, on an attention block equal pytorch-optimizer's MuonClip.

    Restrictions: its Newton-Schulz iteration runs in bfloat16 with fused addmm kernels, so both run
    the iteration in float64 here (its own function, given dtype=float64); it floors the norm at 1e-7
    where zij (Muon's official code) adds 1e-7, a relative difference of 1e-7 / norm that the loss
    scale of 1e4 keeps far below the tolerance; only matrices are compared (its AdamW groups write the
    step with addcdiv, checked for zij's shared fallback in tests/optim/test_muon_aux_adam.py). The
    threshold is low enough that the clip acts on about half the steps. It computes the clip factor in float32,
    zij in the parameter's precision (at least float32): a relative difference of about 1e-8 per clip
    that accumulates over the clipped steps, so with the clip the tolerance is rtol 1e-5, atol 1e-7
    (the weights are of order one).
    """
    ns = functools.partial(muon_base.zero_power_via_newton_schulz_5, dtype=torch.float64)
    monkeypatch.setattr(muon_base, "zero_power_via_newton_schulz_5", ns)
    ours, theirs = _attention(), _attention()
    kw = dict(lr=0.02, momentum=0.9, weight_decay=0.1, qk_clip_threshold=2.0, qk_clip_alpha=0.3)
    opt = zij.MuonClip([{"params": [ours[0]], "qk_clip": "query", "attention_name": "a"},
                        {"params": [ours[1]], "qk_clip": "key", "attention_name": "a"},
                        {"params": [ours[2]]}], ns_dtype=None, **kw)
    ref = ReferenceMuonClip([{"params": [theirs[0]], "use_muon": True, "qk_clip": "query", "attention_name": "a"},
                             {"params": [theirs[1]], "use_muon": True, "qk_clip": "key", "attention_name": "a"},
                             {"params": [theirs[2]], "use_muon": True}], foreach=False, **kw)
    clipped = 0
    for step in range(50):
        for o, ps in ((opt, ours), (ref, theirs)):
            o.zero_grad()
            loss, logits = _loss_and_logits(ps)
            loss.backward()
            o.step(attention_max_logits={"a": logits} if clip else None)
        clipped += int((logits > 2.0).any())
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-5 if clip else 1e-6, atol=1e-7 if clip else 1e-12,
                                       msg=lambda m: f"step {step + 1}: {m}")
    assert clipped > 20 or not clip


def _ns(x):
    y = x / (torch.linalg.norm(x) + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        a = y @ y.T
        y = 3.4445 * y + (-4.7750 * a + 2.0315 * a @ a) @ y
    return y.T if tall else y


def test_two_steps_against_hand_written_rule():
    torch.manual_seed(0)
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(6, 3, dtype=torch.float64) for _ in range(2)]
    x = p.detach().clone()
    opt = zij.MuonClip([p], lr=0.1, momentum=0.9, weight_decay=0.2, ns_dtype=None)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    m = torch.zeros(6, 3, dtype=torch.float64)
    for g in grads:
        m = 0.9 * m + g
        x = x - 0.1 * (0.2 * 6**0.5 * _ns(m) + 0.2 * x)
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)


def test_qk_clip_caps_each_heads_logit_at_the_threshold():
    """After the clip, recomputed logits of heads over the threshold equal it; others are unchanged."""
    ps = _attention()
    opt = zij.MuonClip([{"params": [ps[0]], "qk_clip": "query", "attention_name": "a"},
                        {"params": [ps[1]], "qk_clip": "key", "attention_name": "a"}], lr=0.0, qk_clip_alpha=0.7)
    _, logits = _loss_and_logits(ps)
    tau = float(logits.min() + logits.max()) / 2  # one head over, one under
    for g in opt.param_groups:
        g["qk_clip_threshold"] = tau
    before = [p.detach().clone() for p in ps]
    opt.step(attention_max_logits={"a": logits})  # no gradients: the clip alone
    _, after = _loss_and_logits(ps)
    expected = logits.clamp_max(tau)
    torch.testing.assert_close(after, expected, rtol=1e-12, atol=0)
    under = int(logits.argmin())
    rows = slice(3 * under, 3 * under + 3)
    assert torch.equal(ps[0][rows], before[0][rows]) and torch.equal(ps[1][rows], before[1][rows])
    over = 1 - under
    gamma = tau / float(logits[over])
    torch.testing.assert_close(ps[0][3 * over:3 * over + 3], before[0][3 * over:3 * over + 3] * gamma**0.7)
    torch.testing.assert_close(ps[1][3 * over:3 * over + 3], before[1][3 * over:3 * over + 3] * gamma**0.3)


def test_rotary_roles_and_protocol_errors():
    q_rot, k_rot = torch.ones(4, 2, requires_grad=True), torch.ones(4, 2, requires_grad=True)
    opt = zij.MuonClip([{"params": [q_rot], "qk_clip": "query_rotary", "attention_name": "a"},
                        {"params": [k_rot], "qk_clip": "key_rotary", "attention_name": "a"}], qk_clip_threshold=2.0)
    opt.step(attention_max_logits={"a": torch.tensor([8.0, 1.0])})
    assert torch.equal(q_rot.detach(), torch.tensor([[0.25, 0.25]] * 2 + [[1.0, 1.0]] * 2))
    assert torch.equal(k_rot.detach(), torch.ones(4, 2))  # the shared rotary key is never scaled
    opt.step(attention_max_logits={"b": torch.tensor([100.0])})  # another attention: nothing happens
    with pytest.raises(ValueError, match="divisible"):
        opt.step(attention_max_logits={"a": torch.tensor([8.0, 1.0, 1.0])})
    with pytest.raises(ValueError, match="qk_clip"):
        zij.MuonClip([{"params": [q_rot], "qk_clip": "value", "attention_name": "a"}])
    with pytest.raises(ValueError, match="attention_name"):
        zij.MuonClip([{"params": [q_rot], "qk_clip": "query"}])
