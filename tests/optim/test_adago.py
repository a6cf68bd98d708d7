"""AdaGO: hand-computed steps of the paper's rule, its accumulator, its floor and its AdamW fallback.

There is no official code, and pytorch-optimizer's AdaGO divides by the accumulated sum of
squared norms instead of its root (and adds Muon's shape factor), so it cannot serve as a
parity reference; these tests check the rule written out by hand.
"""

from __future__ import annotations

import torch

import zij

from _problem_helpers import mlp_loss


def _ns(x):
    y = x / (torch.linalg.norm(x) + 1e-7)
    tall = y.shape[0] > y.shape[1]
    if tall:
        y = y.T
    for _ in range(5):
        a = y @ y.T
        y = 3.4445 * y + (-4.7750 * a + 2.0315 * a @ a) @ y
    return y.T if tall else y


def test_three_steps_against_hand_written_rule():
    """Three float64 steps on a tall matrix, one gradient above the cap, equal the rule by hand."""
    torch.manual_seed(0)
    p = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    grads = [torch.randn(6, 3, dtype=torch.float64) * s for s in (1.0, 5.0, 0.3)]
    x = p.detach().clone()
    opt = zij.AdaGO([p], lr=0.1, momentum=0.9, weight_decay=0.2, gamma=4.0, eps=1e-3, v0=0.5, ns_dtype=None)
    for g in grads:
        p.grad = g.clone()
        opt.step()
    m, v2 = torch.zeros(6, 3, dtype=torch.float64), 0.5**2
    for g in grads:
        m = 0.9 * m + 0.1 * g
        capped = min(g.norm().item(), 4.0)
        v2 = v2 + capped**2
        alpha = max(1e-3, 0.1 * capped / v2**0.5)
        x = (1 - 0.1 * 0.2) * x - alpha * _ns(m)
    torch.testing.assert_close(p.detach(), x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(opt.state[p]["v"], torch.tensor(v2, dtype=torch.float64).sqrt(), rtol=1e-14, atol=0)


def test_step_is_floored_at_eps():
    """A tiny gradient after a large one gives a step of exactly eps along the orthogonalized momentum."""
    p = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.AdaGO([p], lr=0.01, momentum=0.0, eps=0.05, gamma=100.0, ns_dtype=None)
    g = torch.diag(torch.tensor([1e-6, 2e-6, 3e-6, 4e-6], dtype=torch.float64))
    p.grad = g
    opt.step()  # lr ||g|| / v = lr (v ~ ||g|| at the first step) < eps
    torch.testing.assert_close(-p.detach(), 0.05 * _ns(g), rtol=1e-12, atol=0)


def test_direction_has_singular_values_near_one():
    """The update direction is Muon's: U S' V^T with S' in Newton-Schulz's band around one."""
    torch.manual_seed(0)
    u, _ = torch.linalg.qr(torch.randn(12, 8, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))
    g = u @ torch.diag(torch.logspace(0, -1.5, 8, dtype=torch.float64)) @ v.T
    p = torch.zeros(12, 8, dtype=torch.float64, requires_grad=True)
    opt = zij.AdaGO([p], lr=1.0, momentum=0.0, ns_dtype=None, v0=1e-12)
    p.grad = g
    opt.step()  # step size lr ||g|| / sqrt(v0^2 + ||g||^2) = 1 up to v0
    s = torch.linalg.svdvals(-p.detach())
    assert s.min() > 0.6 and s.max() < 1.2, s


def test_vectors_go_to_adamw_like_muon_with_aux_adam():
    g = torch.Generator().manual_seed(0)
    shapes = [(8, 4), (3, 8), (3,)]
    params = [[(torch.randn(s, generator=g, dtype=torch.float64) * 0.5) for s in shapes]]
    params.append([t.clone() for t in params[0]])
    for ps in params:
        for t in ps:
            t.requires_grad_()
    opts = [zij.AdaGO(params[0], adam_lr=0.01), zij.MuonWithAuxAdam(params[1], adam_lr=0.01)]
    for _ in range(5):
        for o, ps in zip(opts, params):
            o.zero_grad()
            (ps[2].square().sum() + mlp_loss(ps[:2])).backward()
            o.step()
    assert torch.equal(params[0][2], params[1][2])
    assert set(opts[0].state[params[0][0]]) == {"step", "momentum_buffer", "v"}
    assert opts[0].state[params[0][0]]["v"].shape == ()
