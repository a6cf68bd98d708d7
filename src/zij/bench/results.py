"""Results files: provenance, per-class summaries, and writing one JSON file per task.

A file (schema 1) holds ``task`` (its name, description, parameter count, steps, warm-up, the
evaluation steps every curve is sampled at, the target, the grid factors, seeds, the selection rule
and the data's provenance), ``provenance`` (commit, dirty tree, torch, Python, CPU model, CPUs,
threads per run, parallel runs, device, UTC date and time the command started, the command, and the wall seconds the whole suite
of that command took, every task together), ``classes`` (ranked by mean best
validation loss; each with its step key, recipe rate, grid, best rate and whether it is at an end of
the grid, the sensitivity curve (seed 0's best validation loss per rate), mean and spread over seeds
at the best rate, seeds reaching the target and their median steps to it, median step time, peak
state bytes, gradient evaluations per step, and every run with its ``train`` and ``val`` curves)
and ``skipped`` (class: reason). Losses have six significant digits; a missing or non-finite value
is ``null`` (a diverged run stops at the evaluation that saw it, ``diverged_at``).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
from pathlib import Path

import torch

from .tasks import Task, corpus_info, parameter_count

SCHEMA = 1


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(device: str, jobs: int, argv: list[str]) -> dict:
    """Where and how the numbers were made (read-only git queries; no network)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    info = {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads_per_run": 1 if device == "cpu" else torch.get_num_threads(),
        "parallel_runs": jobs,
        "device": device if device == "cpu" else f"{device} ({torch.cuda.get_device_name()})",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m zij.bench " + " ".join(argv),
    }
    return info


def task_header(task: Task, steps: int, factors, seeds: int) -> dict:
    header = {
        "name": task.name, "description": task.description, "parameters": parameter_count(task),
        "steps": steps, "warmup_steps": max(1, round(task.warmup * steps / task.steps)),
        "schedule": "zij.schedulers.WarmupCosine(warmup_steps, total_steps=steps), eta_min 0",
        "eval_steps": task.eval_steps(steps), "target": task.target,
        "lr_factors": [float(f"{f:.6g}") for f in factors], "seeds": seeds,
        "selection": "seed 0 runs every rate of the grid; the rate with the lowest best validation loss is the "
                     "class's best (a best rate at an end of the grid grows the grid by a half-decade step past it, "
                     "at most once by default), and seeds 1.. run at that rate",
    }
    if task.name.startswith("char-lm"):
        header["data"] = corpus_info()
    elif task.name.startswith("digits"):
        header["data"] = {"source": "sklearn.datasets.load_digits (bundled with scikit-learn)",
                          "split": "fixed permutation (torch seed 0): 1437 train, 360 validation"}
    return header


def summarize(name: str, key: str, recipe_rate: float, grid: list[float], runs: list[dict]) -> dict:
    """The class's record: its runs, its best rate, and the mean over seeds at that rate."""
    sweep = {r["lr"]: r["best_val"] for r in runs if r["seed"] == 0}
    finite = {lr: v for lr, v in sweep.items() if v is not None}
    best = min(finite, key=lambda lr: (finite[lr], lr)) if finite else None
    at_best = [r for r in runs if r["lr"] == best]
    vals = [r["best_val"] for r in at_best if r["best_val"] is not None]
    steps = [r["steps_to_target"] for r in at_best]
    reached = sorted(s for s in steps if s is not None)
    return {
        "name": name, "step_key": key, "recipe_lr": recipe_rate, "lrs": grid,
        "best_lr": best, "best_lr_at_grid_edge": best is not None and best in (grid[0], grid[-1]),
        "sensitivity": [{"lr": lr, "best_val": sweep.get(lr)} for lr in grid],
        "best_val_mean": float(f"{statistics.fmean(vals):.6g}") if vals else None,
        "best_val_std": float(f"{statistics.pstdev(vals):.6g}") if len(vals) > 1 else (0.0 if vals else None),
        "seeds_reaching_target": len(reached), "seeds_at_best": len(at_best),
        "steps_to_target_median": reached[len(reached) // 2] if len(reached) * 2 > len(at_best) else None,
        "median_step_ms": float(f"{statistics.median(r['median_step_ms'] for r in at_best):.4g}") if at_best else None,
        "peak_state_bytes": max((r["peak_state_bytes"] for r in runs), default=0),
        "grad_evals_per_step": max((r["grad_evals_per_step"] for r in runs), default=0),
        "runs": sorted(runs, key=lambda r: (r["lr"], r["seed"])),
    }


def write(path: Path, header: dict, prov: dict, classes: dict, skipped: dict) -> None:
    """One task's file; classes ranked by mean best validation loss (missing last)."""
    ranked = sorted(classes.values(), key=lambda c: (c["best_val_mean"] is None, c["best_val_mean"] or 0.0, c["name"]))
    doc = {"schema": SCHEMA, "generated_by": "make bench-tasks (python -m zij.bench); never edit by hand",
           "task": header, "provenance": prov, "classes": ranked, "skipped": skipped}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, allow_nan=False)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(text + "\n")
    tmp.replace(path)


def finite_numbers(value) -> bool:
    """Every number in ``value`` is finite (None stands for a missing one)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(finite_numbers(v) for v in value)
    return True


def load(path: Path) -> dict:
    return json.loads(Path(path).read_text())

