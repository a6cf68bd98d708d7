"""Parameters sharded by FSDP2 (``torch.distributed.fsdp.fully_shard``): DTensors, met two ways.

A rule whose every element depends only on that element (its gradient, weight and state, and
scalars shared by the group) gives on a shard exactly what it gives on the whole tensor, so a
class that sets ``per_element = True`` is stepped on each rank's local shard: plain tensors,
no communication, state as large as the shard. Any other rule (per-tensor norms, matrices,
sums over all parameters) needs whole tensors: each rank gathers the full parameter and
gradient (an all-gather per tensor), steps a full-size state like one process would, and
keeps its own shard of the result. That is exact but holds full-size state on every rank, as
DDP does; the class docstrings and the README say which classes do which.
"""

from __future__ import annotations

import torch

try:  # torch.distributed is optional in some builds
    from torch.distributed.tensor import DTensor, distribute_tensor
except ImportError:  # pragma: no cover - builds without distributed support
    DTensor = None
    distribute_tensor = None


def is_dtensor(t) -> bool:
    return DTensor is not None and isinstance(t, DTensor)


def local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of ``t`` (the tensor itself when it is not a DTensor); writes reach ``t``."""
    return t.to_local() if is_dtensor(t) else t


def gather(t: torch.Tensor) -> torch.Tensor:
    """The whole of a DTensor, on every rank (a collective: every rank must call it, in the same order)."""
    return t.full_tensor()


@torch.no_grad()
def keep_shard_(param: torch.Tensor, full: torch.Tensor) -> None:
    """Write into ``param`` (a DTensor) its own shard of the updated whole tensor ``full`` (no communication)."""
    mine = distribute_tensor(full, param.device_mesh, param.placements, src_data_rank=None).to_local()
    local(param).copy_(mine)
