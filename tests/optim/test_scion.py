"""Scion: parity with pytorch-optimizer's SCION norm by norm, and the oracles' identities.

pytorch-optimizer names the norms and their options differently (``norm_type``, ``constraint``,
``normalize``, ``num_steps``), so the shared parity check cannot drive it; this file does.
"""

from __future__ import annotations

import functools

import pytest
import torch

import zij

scion_module = pytest.importorskip("pytorch_optimizer.optimizer.scion")
LMONorm = scion_module.LMONorm

CASES = {
    # name: (our norm and options, its norm_type and options, parameter shapes)
    "Spectral": (("Spectral", {}), (LMONorm.SPECTRAL, {}), [(8, 4), (3, 8)]),
    "Spectral-max": (("Spectral", {"max": True, "normalized": True}), (LMONorm.SPECTRAL, {"max_scale": True}),
                     [(8, 4), (3, 8)]),
    "SpectralConv": (("SpectralConv", {}), (LMONorm.SPECTRALCONV, {}), [(6, 2, 3, 3), (4, 3, 3)]),
    "ColNorm": (("ColNorm", {"normalized": True}), (LMONorm.COL, {"normalized": True}), [(8, 4), (3, 8)]),
    "RowNorm": (("RowNorm", {"transpose": True}), (LMONorm.ROW, {"transpose": True}), [(8, 4), (3, 8)]),
    "Sign": (("Sign", {}), (LMONorm.SIGN, {}), [(8, 4), (3, 8)]),
    "BiasRMS": (("BiasRMS", {}), (LMONorm.BIAS, {}), [(8,), (3,)]),
    "Auto": (("Auto", {}), (LMONorm.AUTO, {}), [(8, 4), (8,), (6, 2, 3, 3)]),
}


@pytest.mark.parametrize("unconstrained", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_pytorch_optimizer(monkeypatch, case, unconstrained):
    """50 float64 steps equal pytorch-optimizer's SCION for each norm.

    Restrictions: its Newton-Schulz iteration runs in bfloat16 with fused addmm kernels, whose
    rounding differs from separate products, so both iterate in float64 (its own function, given
    dtype=float64); it floors the norm at 1e-7 where the official code adds 1e-7, so the loss is
    scaled by 1e4, which the oracles otherwise ignore.
    """
    monkeypatch.setattr(scion_module, "zero_power_via_newton_schulz_5",
                        functools.partial(scion_module.zero_power_via_newton_schulz_5, dtype=torch.float64))
    (norm, kwargs), (norm_type, ref_kwargs), shapes = CASES[case]
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    opt = zij.Scion(ours, lr=0.01, momentum=0.2, norm=norm, norm_kwargs=kwargs, scale=3.0,
                    unconstrained=unconstrained, ns_dtype=None)
    ref = scion_module.SCION(theirs, lr=0.01, momentum=0.2, constraint=not unconstrained, norm_type=norm_type,
                             norm_kwargs=ref_kwargs, scale=3.0, foreach=False)
    targets = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]

    def loss(ps):
        return 1e4 * sum(((p - t) ** 4).sum() for p, t in zip(ps, targets))

    for step in range(50):
        for o, ps in ((opt, ours), (ref, theirs)):
            o.zero_grad()
            loss(ps).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-10, msg=lambda m: f"step {step + 1}: {m}")


def test_one_step_by_hand():
    """Constrained step with the sign norm and momentum: theta <- (1 - lr) theta - lr scale sign(d) / d_in."""
    p = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    opt = zij.Scion([p], lr=0.1, momentum=0.5, norm="Sign", scale=2.0)
    p.grad = torch.tensor([[0.5, 0.0, -1.0]], dtype=torch.float64)
    opt.step()
    # d = 0.5 * 0 + 0.5 * g = (0.25, 0, -0.5); lmo = sign(d) / 3
    f64 = functools.partial(torch.tensor, dtype=torch.float64)
    expected = 0.9 * f64([[1.0, -2.0, 3.0]]) - 0.1 * 2.0 * f64([[1.0, 0.0, -1.0]]) / 3
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-15)
    torch.testing.assert_close(opt.state[p]["momentum_buffer"], torch.tensor([[0.25, 0.0, -0.5]], dtype=torch.float64))


def test_spectral_oracle_is_scaled_orthogonalization_and_constrained_fixed_point():
    """The spectral oracle is sqrt(d_out/d_in) times Newton-Schulz's polar factor, and with alpha = 1 the
    constrained iteration keeps a point -scale * lmo(g) fixed when the gradient does not change."""
    torch.manual_seed(0)
    g = torch.randn(6, 3, dtype=torch.float64)
    p = torch.zeros(6, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.Scion([p], lr=1.0, momentum=1.0, norm="Spectral", scale=2.0, ns_dtype=None)
    p.grad = g
    opt.step()  # lr = 1: theta = -scale * lmo(g)
    polar = zij.blocks.newton_schulz(g)
    torch.testing.assert_close(p.detach(), -2.0 * 2**0.5 * polar, rtol=0, atol=1e-12)
    assert "momentum_buffer" not in opt.state[p]
    fixed = p.detach().clone()
    opt.param_groups[0]["lr"] = 0.3
    p.grad = g
    opt.step()
    torch.testing.assert_close(p.detach(), fixed, rtol=0, atol=1e-12)


def test_norms_check_shapes_and_options():
    with pytest.raises(ValueError, match="norm"):
        zij.Scion([torch.zeros(3, requires_grad=True)], norm="Spectral")
    with pytest.raises(ValueError, match="norm_kwargs"):
        zij.Scion([torch.zeros(3, 3, requires_grad=True)], norm="Sign", norm_kwargs={"steps": 3})
    opt = zij.Scion([torch.zeros(3, 3, requires_grad=True)])
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "momentum": 0.0})
