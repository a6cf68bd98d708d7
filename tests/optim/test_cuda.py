"""CUDA variants of the matrix: the same optimizers on a GPU agree with the CPU.

Marked ``cuda``; they skip cleanly without a CUDA device, and run on the GPU
runner (.github/workflows/gpu.yml).
"""

from __future__ import annotations

import io

import pytest
import torch

from zij._registry import entries

from _problem_helpers import closure_for, mlp_params, quadratic_loss, quadratic_params, train_mlp

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]
ENTRIES = [e for e in entries() if not e.capabilities.sparse_only]
FOREACH = [e for e in ENTRIES if e.capabilities.foreach]
COMPILED = [e for e in ENTRIES if getattr(e.cls, "supports_compile", False)]


def to_cuda(params):
    return [p.detach().to("cuda").requires_grad_() for p in params]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_cuda_matches_cpu(entry):
    cpu = mlp_params(entry)
    gpu = to_cuda(cpu)
    for params in (cpu, gpu):
        opt = entry.make(params, **entry.recipe)
        train_mlp(entry, opt, params, 20)
    for a, b in zip(cpu, gpu):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("entry", FOREACH, ids=[e.name for e in FOREACH])
def test_cuda_foreach_matches_loop(entry):
    """On CUDA the multi-tensor kernels may fuse differently from the loop: equal to rounding."""
    results = []
    for foreach in (False, True):
        params = to_cuda(mlp_params(entry))
        opt = entry.make(params, **{**entry.recipe, "foreach": foreach})
        train_mlp(entry, opt, params, 10)
        results.append(params)
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_cuda_resume_bitwise(entry):
    straight = to_cuda(mlp_params(entry, torch.float32))
    opt = entry.make(straight, **entry.recipe)
    train_mlp(entry, opt, straight, 20)
    resumed = to_cuda(mlp_params(entry, torch.float32))
    opt = entry.make(resumed, **entry.recipe)
    train_mlp(entry, opt, resumed, 10)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    fresh = entry.make(resumed, **entry.recipe)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    train_mlp(entry, fresh, resumed, 10)
    for a, b in zip(straight, resumed):
        assert torch.equal(a, b)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_cuda_quadratic_converges(entry):
    params = to_cuda(quadratic_params())
    opt = entry.make(params, **entry.kwargs_for("quadratic"))
    closure = closure_for(entry, opt, params, quadratic_loss)
    first = float(opt.step(closure))
    for _ in range(500):
        last = float(opt.step(closure))
    assert last < 1e-2 * first


@pytest.mark.parametrize("entry", COMPILED, ids=[e.name for e in COMPILED])
def test_cuda_compiled_step_matches_eager(entry):
    """The opt-in compiled step (inductor's fused kernels) against the eager foreach path, in float32."""
    results = []
    for compiled in (False, True):
        params = to_cuda(mlp_params(entry, torch.float32))
        opt = entry.make(params, **entry.recipe)
        if compiled:
            torch._dynamo.reset()
            opt.compile()
        train_mlp(entry, opt, params, 10)
        results.append(params)
    for a, b in zip(*results):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)
