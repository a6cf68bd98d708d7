"""``python -m zij_canon.trajectory_runs``: run optimizers on 2-D test functions and draw their paths.

The documentation build never imports torch or matplotlib; :mod:`zij_canon.trajectories`
starts this module in a subprocess for the plots its cache lacks, with the name of a JSON file
listing the jobs (or the list on stdin). Each job is one (class, problem) pair with its resolved
settings, or one problem's shared contour; its SVG is written to the job's ``out`` path, and a
path's summary (end point, value, steps) beside it as ``.json``. Jobs run in worker processes
of one thread each; a job's result does not depend on which worker runs it or in what order,
so the output is deterministic.

How a class is stepped (its documented protocol):

* the point is one ``(1, 2)`` parameter, so matrix rules (Muon and its kin) step it with
  their own rule; the settings' ``group`` adds keys to its parameter group (``use_muon: true``
  forces the matrix route of a class that routes by a flag; ``sam_on: true`` marks it for SAM-ON);
* wrappers get ``base: [Name, {kwargs}]``, their inner optimizer, built over the point;
* every step is ``opt.step(closure)`` with a closure that zeroes the gradients, evaluates the
  function and calls ``backward`` (two-pass wrappers and line searches call it as often as they
  need; Hessian classes run it with ``create_graph`` themselves); classes taking sparse gradients
  only get them sparsified;
* classes with ``train``/``eval`` modes (Schedule-Free) are read in ``eval`` mode, the point
  they would be evaluated at.
"""

from __future__ import annotations

import json
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from zij._registry import get_entry
from zij.bench.tasks import rastrigin, rosenbrock

FUNCTIONS = {"rosenbrock": rosenbrock, "rastrigin": rastrigin}
RESERVED = ("group", "omit")  # settings keys that are not constructor arguments


def _build(name: str, xy: torch.Tensor, settings: dict):
    entry = get_entry(name)
    kwargs = {k: v for k, v in settings.items() if k not in RESERVED}
    group = {"params": [xy], **settings.get("group", {})}
    for key, value in kwargs.items():
        if isinstance(value, list) and key != "base":
            kwargs[key] = tuple(value)  # YAML lists stand for tuples (betas)
    if entry.wraps:
        base_name, base_kwargs = kwargs.pop("base")
        return entry.cls(get_entry(base_name).cls([group], **base_kwargs), **kwargs)
    if hasattr(entry.cls, "from_model"):
        model = torch.nn.Module()
        model.xy = torch.nn.Parameter(xy.detach().clone())
        return entry.cls.from_model(model, **kwargs), model.xy
    return entry.cls([group], **kwargs)


def trajectory(name: str, problem: str, start: tuple[float, float], steps: int, settings: dict) -> list[list[float]]:
    """The points ``[x, y]`` of ``name`` on ``problem`` from ``start``: the start, then one per step.

    Points after the first non-finite one are dropped (a diverged run ends there).
    """
    torch.manual_seed(0)
    fn = FUNCTIONS[problem]
    xy = torch.tensor([list(start)], dtype=torch.float64, requires_grad=True)
    opt = _build(name, xy, settings)
    if isinstance(opt, tuple):
        opt, xy = opt
    sparse = get_entry(name).capabilities.sparse_only
    modes = callable(getattr(opt, "eval", None)) and callable(getattr(opt, "train", None))

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = fn(xy)
        loss.backward()
        if sparse:
            xy.grad = xy.grad.to_sparse()
        return loss

    def point():
        if modes:
            opt.eval()
        value = xy.detach()[0].tolist()
        if modes:
            opt.train()
        return value

    points = [point()]
    for _ in range(steps):
        opt.step(closure)
        p = point()
        if not all(math.isfinite(v) for v in p):
            break
        points.append(p)
    return points


def _run_job(job: dict) -> str:
    torch.set_num_threads(1)
    from . import trajectory_plot

    if job["kind"] == "contour":
        svg = trajectory_plot.contour_svg(job["problem"], job["view"], job["start"], job["minimum"])
    else:
        try:
            points = trajectory(job["name"], job["problem"], tuple(job["start"]), job["steps"], job["settings"])
        except Exception as exc:  # a broken class: its pages say so, the build warns (and a strict one stops)
            _write(job["out"][: -len(".svg")] + ".json", json.dumps({"error": f"{type(exc).__name__}: {exc}"[:300]}))
            return job["out"]
        fn = FUNCTIONS[job["problem"]]
        final = float(fn(torch.tensor([points[-1]], dtype=torch.float64)))
        diverged = len(points) < job["steps"] + 1
        summary = {"end": [round(v, 4) for v in points[-1]], "value": float(f"{final:.4g}"),
                   "steps": len(points) - 1, "diverged": diverged}
        svg = trajectory_plot.path_svg(points, job["view"], job["every"], job["title"])
        _write(job["out"], svg)
        _write(job["out"][: -len(".svg")] + ".json", json.dumps(summary, sort_keys=True))  # written last: done
        return job["out"]
    _write(job["out"], svg)
    return job["out"]


def _write(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def run_jobs(jobs: list[dict], workers: int) -> None:
    """Run ``jobs`` (in ``workers`` processes when more than one)."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _run_job(job)
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        for _ in pool.map(_run_job, jobs, chunksize=4):
            pass


def main() -> None:
    if len(sys.argv) > 1:
        with open(sys.argv[1], encoding="utf-8") as f:
            jobs = json.load(f)
    else:
        jobs = json.load(sys.stdin)
    # a worker costs an import of torch and the registry: one per 20 jobs at most
    workers = int(os.environ.get("ZIJ_TRAJECTORY_JOBS", "0")) or min(len(os.sched_getaffinity(0)), 8, -(-len(jobs) // 20))
    run_jobs(jobs, workers)


if __name__ == "__main__":
    main()
