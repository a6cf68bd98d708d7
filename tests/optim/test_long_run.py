"""10,000 steps of every registered optimizer on a small noisy problem with bfloat16 parameters.

Long runs in low precision are where state goes bad: a moment that underflows to zero, a
denominator that reaches it, a counter that overflows a bias correction. Each class runs
10,000 steps of a noisy quadratic (its recipe for the quadratic problem, the gradient
written directly so that the optimizer's own cost dominates; rules that need a closure get
one through autograd) and must end with finite parameters, unless its docstring says it
needs float32 state (then it gets ``state_dtype=torch.float32`` where it takes one).
"""

from __future__ import annotations

import pytest
import torch

from zij._registry import entries

STEPS = 10_000
ENTRIES = [e for e in entries() if not e.capabilities.sparse_only]
NEEDS_FLOAT32 = "needs float32 state"


def params_for(entry) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 5), (5,)] if 1 in entry.capabilities.ndims else [(4, 5)]
    return [torch.randn(s, generator=g).to(torch.bfloat16).requires_grad_() for s in shapes]


def scales_for(p: torch.Tensor) -> torch.Tensor:
    return torch.linspace(0.5, 5.0, p.numel()).reshape(p.shape)


def optimum_for(p: torch.Tensor) -> torch.Tensor:
    """A minimum away from zero: weights that shrink towards 0 would turn subnormal, which the CPU
    computes a hundred times slower, and real weights do not sit there."""
    return torch.linspace(-1.5, 1.5, p.numel()).reshape(p.shape)


def needs_autograd(entry) -> bool:
    return entry.capabilities.needs_closure or entry.wraps or "create_graph" in (entry.cls.__doc__ or "")


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_ten_thousand_bfloat16_steps_stay_finite(entry):
    if "bfloat16" not in entry.capabilities.dtypes:
        pytest.skip(f"{entry.name} is not registered for bfloat16 parameters (its registry entry lists its dtypes)")
    kwargs = dict(entry.kwargs_for("quadratic"))
    if NEEDS_FLOAT32 in " ".join((entry.cls.__doc__ or "").split()):
        kwargs["state_dtype"] = torch.float32
    params = params_for(entry)
    opt = entry.make(params, **kwargs)
    scales = [scales_for(p) for p in params]
    optima = [optimum_for(p) for p in params]
    noise = torch.Generator().manual_seed(1)
    autograd = needs_autograd(entry)

    def closure():
        opt.zero_grad()
        loss = sum(0.5 * (s * (p.float() - c) ** 2).sum() for s, c, p in zip(scales, optima, params))
        loss.backward()
        for p in params:
            p.grad.add_(0.01 * torch.randn(p.shape, generator=noise).to(p.dtype))
        return loss

    for _ in range(STEPS):
        if autograd:
            opt.step(closure)
            continue
        with torch.no_grad():
            for p, s, c in zip(params, scales, optima):
                p.grad = (s * (p.float() - c) + 0.01 * torch.randn(p.shape, generator=noise)).to(p.dtype)
        opt.step()
    for p in params:
        assert torch.isfinite(p).all(), f"{entry.name}: non-finite parameters after {STEPS} bfloat16 steps"
