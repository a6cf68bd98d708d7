"""The worker of the distributed tests: each registered optimizer under DDP or FSDP2 against one process.

Every rank builds the same small MLP (float32) and trains it on its half of a fixed batch with
the optimizer under test, wrapped by DDP or sharded by FSDP2 (``fully_shard``). Next to it, each
rank trains a plain copy with no communication at all: the single-process run, whose gradient is
the mean of the two half-batch gradients, formed as DDP and FSDP2 form it (each half divided by
two, then summed). After every step the ranks compare the two sets of parameters; rank 0 saves,
per optimizer, the largest difference in units in the last place (ULP) or the error it raised.
"""

from __future__ import annotations

import datetime
import os
import traceback

import torch
import torch.distributed as dist

from _problem_helpers import mlp_forward, mlp_params
from zij._registry import entries

STEPS = 3
SEED = 0


class MLP(torch.nn.Module):
    def __init__(self, params: list[torch.Tensor]):
        super().__init__()
        self.weights = torch.nn.ParameterList([torch.nn.Parameter(p.detach().clone()) for p in params])

    def forward(self, x):
        return mlp_forward(list(self.weights), x)


def batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 4, generator=g), torch.randn(16, 3, generator=g)


def half_loss(model_or_params, rank: int):
    x, y = batch()
    x, y = x[8 * rank:8 * rank + 8], y[8 * rank:8 * rank + 8]
    out = model_or_params(x)
    return ((out - y) ** 2).mean()


def ulps(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest difference between ``a`` and ``b`` in units in the last place of the larger."""
    if torch.equal(a, b):
        return 0.0
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("inf")
    big = torch.maximum(a.abs(), b.abs())
    spacing = torch.nextafter(big, torch.full_like(big, float("inf"))) - big
    return float(((a - b).abs() / spacing).max())


def run_one(entry, mode: str, rank: int) -> float:
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel

    initial = [p.detach().float() for p in mlp_params(entry)]
    reference = MLP(initial)
    model = MLP(initial)
    wrapped = DistributedDataParallel(model) if mode == "ddp" else fully_shard(model)
    ref_opt = entry.make(list(reference.parameters()), **entry.recipe)
    opt = entry.make(list(model.parameters()), **entry.recipe)

    def closure():
        opt.zero_grad()
        loss = half_loss(wrapped, rank)
        loss.backward()
        loss = loss.detach().clone()  # the whole batch's loss, for rules that read it (L-BFGS, Polyak steps)
        dist.all_reduce(loss)
        return loss / 2

    def ref_closure():
        halves, losses = [], []
        for r in (0, 1):
            ref_opt.zero_grad()
            loss = half_loss(reference, r)
            loss.backward()
            halves.append([p.grad.clone() for p in reference.parameters()])
            losses.append(loss.detach())
        for p, g0, g1 in zip(reference.parameters(), *halves):
            p.grad = g0.div(2).add_(g1.div(2))
        return (losses[0] + losses[1]) / 2

    worst = 0.0
    for step in range(STEPS):
        torch.manual_seed(SEED + step)
        opt.step(closure)
        torch.manual_seed(SEED + step)
        ref_opt.step(ref_closure)
        for p, q in zip(model.parameters(), reference.parameters()):
            full = p.full_tensor() if hasattr(p, "full_tensor") else p
            worst = max(worst, ulps(full.detach(), q.detach()))
    return worst


def worker(rank: int, world: int, mode: str, names: list[str], port: int, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=120))
    chosen = {e.name: e for e in entries()}
    results = {}
    for name in names:
        if os.environ.get("ZIJ_DIST_VERBOSE"):
            print(rank, name, flush=True)
        try:
            results[name] = run_one(chosen[name], mode, rank)
        except Exception as error:  # reported per optimizer by the test
            results[name] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=-3)}"
        dist.barrier()
    if rank == 0:
        torch.save(results, out)
    dist.destroy_process_group()
