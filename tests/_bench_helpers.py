"""Synthetic benchmark results, in the files ``python -m zij.bench`` writes, for tests of the site.

Each class's runs are made up (deterministically, from the task's and the class's names) but shaped like
real ones: a grid of rates around a recipe rate, a U-shaped sensitivity whose best rate is sometimes at an
end of the grid (which then grows by a step, as the runner grows it), validation curves that fall and
sometimes diverge at high rates, and a few seeds at the best rate. The files are written by the package's
own ``summarize`` and ``write`` (``zij.bench.results``), so they follow its schema.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

# name: (description, parameters, steps, warm-up steps, evaluations, target, seeds) - the real tasks' settings
TASKS = {
    "digits-mlp": ("MLP 64-128-64-10 (tanh) on scikit-learn's 8x8 digits, batch 64", 17226, 300, 30, 15, 0.15, 3),
    "digits-cnn": ("CNN on the 8x8 digits, batch 64", 23722, 150, 15, 10, 0.15, 3),
    "char-lm": ("character-level transformer on pydoc_data topics, batch 8", 819200, 80, 8, 5, 2.6, 3),
    "rosenbrock": ("Rosenbrock function from (-1.5, 2.0)", 2, 500, 25, 25, 0.01, 1),
    "rastrigin": ("Rastrigin function (2-D) from (4.0, 4.5)", 2, 500, 25, 25, 0.5, 1),
}
FACTORS = (10**-1.5, 10**-1.0, 10**-0.5, 1.0, 10**0.5)
PROVENANCE = {
    "commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "torch": "2.13.0+cpu", "python": "3.11.7",
    "cpu": "Synthetic CPU", "cpu_count": 2, "threads_per_run": 1, "parallel_runs": 2, "device": "cpu",
    "date": "2026-12-01T00:00:00+00:00", "command": "python -m zij.bench (synthetic results for the tests)",
    "suite_seconds": 2490,
}


def eval_steps(steps: int, evals: int) -> list[int]:
    return sorted({round(steps * (i + 1) / evals) for i in range(evals)})


def _run(rng: random.Random, lr: float, seed: int, quality: float, evals: list[int], target: float,
         start: float, diverge: bool) -> dict:
    noise = random.Random(f"{rng.random()}/{seed}")
    floor = quality * (1 + 0.03 * noise.random())
    val = []
    for i, step in enumerate(evals):
        if diverge and i >= len(evals) // 2:
            val.append(None)
            break
        val.append(float(f"{floor + (start - floor) * math.exp(-4 * step / evals[-1]):.6g}"))
    val += [None] * (len(evals) - len(val))
    finite = [v for v in val if v is not None]
    reached = [s for s, v in zip(evals, val) if v is not None and v <= target]
    return {
        "lr": lr, "seed": seed, "train": [None if v is None else float(f"{v * 0.97:.6g}") for v in val], "val": val,
        "best_val": min(finite) if finite else None, "final_val": val[-1],
        "steps_to_target": reached[0] if reached else None,
        "diverged_at": evals[len(evals) // 2] if diverge else None, "grad_evals_per_step": 1.0,
        "peak_state_bytes": int(8 * 17226 * (1 + quality)), "median_step_ms": round(0.3 + noise.random(), 4),
    }


def class_record(task: str, name: str) -> tuple[list[float], list[dict]]:
    """(grid, runs) of class ``name`` on ``task``, as the runner would collect them."""
    _, _, steps, _, evals_n, target, seeds = TASKS[task]
    rng = random.Random(f"{task}/{name}")
    evals = eval_steps(steps, evals_n)
    recipe = float(f"{10 ** rng.uniform(-3.5, -1):.4g}")
    grid = [float(f"{recipe * f:.4g}") for f in FACTORS]
    best_at = rng.choice([0, 1, 2, 2, 3, 3, 4, 5])  # 5: past the grid's top, which then grows by a step
    scale = target * (0.5 + 3 * rng.random())
    start = scale * 8
    if best_at == 5:
        grid.append(float(f"{grid[-1] * 10 ** 0.5:.4g}"))
    runs = []
    for i, lr in enumerate(grid):
        quality = scale * (1 + 0.6 * (i - best_at) ** 2)
        runs.append(_run(rng, lr, 0, quality, evals, target, start, diverge=i == len(grid) - 1 and rng.random() < 0.3))
    best = min((r for r in runs if r["best_val"] is not None), key=lambda r: (r["best_val"], r["lr"]))
    for seed in range(1, seeds):
        runs.append(_run(rng, best["lr"], seed, best["best_val"], evals, target, start, diverge=False))
    return grid, runs


def write_results(dest: Path, classes: list[str], skipped: dict[str, str] | None = None,
                  tasks: tuple[str, ...] = tuple(TASKS)) -> Path:
    """One file per task in ``dest`` with every class of ``classes`` (and ``skipped``: class -> reason)."""
    from zij.bench.results import summarize, write

    for task in tasks:
        description, parameters, steps, warmup, evals_n, target, seeds = TASKS[task]
        header = {
            "name": task, "description": description, "parameters": parameters, "steps": steps,
            "warmup_steps": warmup, "schedule": "zij.schedulers.WarmupCosine(warmup_steps, total_steps=steps), eta_min 0",
            "eval_steps": eval_steps(steps, evals_n), "target": target,
            "lr_factors": [float(f"{f:.6g}") for f in FACTORS], "seeds": seeds,
            "selection": "seed 0 runs every rate of the grid; the rate with the lowest best validation loss is the "
                         "class's best, and seeds 1.. run at that rate",
        }
        records = {}
        for name in classes:
            grid, runs = class_record(task, name)
            records[name] = summarize(name, "lr", grid[2], grid, runs)
        write(dest / f"{task}.json", header, PROVENANCE, records, dict(skipped or {}))
    return dest
