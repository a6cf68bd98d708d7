"""Every registered optimizer under torch.distributed (gloo, 2 CPU processes) against one process.

DDP: each rank holds whole parameters and the all-reduced gradient, so a step must equal the
single-process step bit for bit. FSDP2 (``fully_shard``): each rank holds a shard; a zij class
whose rule is per-element steps its shard, any other gathers whole tensors (``zij._sharded``),
so an elementwise class must agree within 1 ULP (in practice every zij class here is exact). A
class that cannot run distributed must say so with a clear error. The two runs spawn once each
and step every optimizer in turn (``_dist_helpers``).
"""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _dist_helpers import worker
from zij._registry import entries

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="this torch build has no torch.distributed")

ENTRIES = entries()
HESSIAN = "takes Hessian-vector products (a double backward)"

#: Entries that cannot run under a mode, with the reason and the error they must raise.
CANNOT = {
    ("ddp", "SparseAdam"): ("torch's SparseAdam takes only sparse gradients, and DDP all-reduces dense ones",
                            "does not support dense gradients"),
    ("fsdp", "SparseAdam"): ("torch's SparseAdam takes only sparse gradients, and FSDP2 reduces dense ones",
                             "does not support dense gradients"),
    ("ddp", "AdaHessian"): ("Hessian-vector products are not synchronized by DDP", HESSIAN),
    ("ddp", "Sophia"): ("Hessian-vector products are not synchronized by DDP", HESSIAN),
    ("fsdp", "AdaHessian"): ("FSDP2 has no double backward", HESSIAN),
    ("fsdp", "Sophia"): ("FSDP2 has no double backward", HESSIAN),
}

#: torch.optim classes whose own step does not handle FSDP2's DTensor shards (torch's code, not ours).
TORCH_FSDP = {
    "Adafactor": "torch's Adafactor raises on a DTensor shard (an in-place pow on a partial placement)",
    "Rprop": "torch's Rprop raises on a DTensor shard (index_put_ would change the placement)",
    "LBFGS": "torch's LBFGS flattens all parameters, which an unevenly sharded DTensor cannot do",
    "Muon": "torch's Muon runs Newton-Schulz on the sharded DTensor in its own precision; the result "
            "drifts from one process by far more than rounding, so it is not compared",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = {}
    names = [e.name for e in ENTRIES]
    for mode in ("ddp", "fsdp"):
        path = tmp_path_factory.mktemp("dist") / f"{mode}.pt"
        mp.spawn(worker, args=(2, mode, names, free_port(), str(path)), nprocs=2)
        out[mode] = torch.load(path, weights_only=True)
    return out


def check(results, mode: str, entry, tolerance_ulps: float | None) -> None:
    outcome = results[mode][entry.name]
    if (mode, entry.name) in CANNOT:
        reason, message = CANNOT[(mode, entry.name)]
        assert isinstance(outcome, str) and message in outcome, f"expected a clear error ({reason}), got {outcome!r}"
        return
    assert not isinstance(outcome, str), f"{entry.name} failed under {mode}:\n{outcome}"
    if tolerance_ulps is None:
        return
    assert outcome <= tolerance_ulps, f"{entry.name} under {mode} differs from one process by {outcome} ULP"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_ddp_equals_one_process_bitwise(results, entry):
    check(results, "ddp", entry, 0.0)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_fsdp2_equals_one_process(results, entry):
    if entry.builtin and entry.name in TORCH_FSDP:
        pytest.skip(TORCH_FSDP[entry.name])
    if entry.builtin or entry.capabilities.elementwise:
        check(results, "fsdp", entry, 1.0)
        return
    # whole-tensor rules: exact when gathered (zij's ZijOptimizer classes); wrappers reduce over the
    # DTensor shards, so their norms round differently: they must agree to float32 precision.
    outcome = results["fsdp"][entry.name]
    check(results, "fsdp", entry, None)
    if not isinstance(outcome, str):
        assert outcome <= 2.0**10, f"{entry.name} under FSDP2 differs by {outcome} ULP"


def test_zij_rules_are_exact_under_fsdp2(results):
    """Beyond the 1-ULP bound: the per-element shards and the gathered wholes give exactly one process's numbers."""
    from zij._base import ZijOptimizer

    inexact = {name: value for name, value in results["fsdp"].items()
               if isinstance(value, float) and value != 0.0
               and issubclass(next(e.cls for e in ENTRIES if e.name == name), ZijOptimizer)}
    assert not inexact, f"zij classes not exact under FSDP2: {inexact}"
