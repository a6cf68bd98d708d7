"""``python -m zij.bench`` (``make bench-tasks``): every optimizer class on the benchmark tasks.

Writes one JSON file per task (``benchmarks/results/<task>.json`` for the full suite; a partial
run, ``--quick`` or ``--classes``, writes under ``build/bench-tasks`` unless ``--out`` says
otherwise, so a partial run never replaces a committed file).
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import time
from pathlib import Path

from .._registry import entries
from .protocol import LR_FACTORS, QUICK_FACTORS, skip_reason
from .results import provenance, summarize, task_header, write
from .runner import Progress, Suite, default_jobs, keys_for
from .tasks import TASKS

COMMITTED = Path("benchmarks/results")
PARTIAL = Path("build/bench-tasks")


def default_tasks(device: str) -> list[str]:
    """Every CPU task on the CPU; on a GPU the tasks made for it (the large language model)."""
    return [n for n, t in TASKS.items() if t.info.get("default", True) == (device == "cpu")]


def select_classes(patterns: str | None) -> list:
    every = entries()
    if not patterns:
        return every
    chosen = []
    for pattern in patterns.split(","):
        hits = [e for e in every if fnmatch.fnmatch(e.name.lower(), pattern.strip().lower())]
        if not hits:
            raise SystemExit(f"--classes: no registered class matches {pattern!r}")
        chosen += [e for e in hits if e not in chosen]
    return chosen


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m zij.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one seed, two learning rates, a few steps (proves the machinery)")
    p.add_argument("--tasks", help="comma-separated tasks (default: the CPU tasks, or with --device cuda the GPU "
                   f"task; known: {', '.join(TASKS)})")
    p.add_argument("--classes", help="comma-separated class names or fnmatch patterns (default: every registered class)")
    p.add_argument("--device", default="cpu", help="torch device (cpu or cuda)")
    p.add_argument("--jobs", type=int, help="parallel runs, one thread each (default: the CPUs this process may use)")
    p.add_argument("--seeds", type=int, help="seeds at the best rate (default 3; --quick: 1)")
    p.add_argument("--extend", type=int, help="times a grid grows past a best rate at its end (default 1; --quick: 0)")
    p.add_argument("--steps", type=int, help="steps per run for every task (default: each task's budget)")
    p.add_argument("--estimate", action="store_true",
                   help="measure a few steps of every class and print the projected duration; run nothing")
    p.add_argument("--out", type=Path, help=f"results folder (default {COMMITTED}, or {PARTIAL} for a partial run)")
    return p


def main(argv: list[str] | None = None, stream=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    tasks = args.tasks.split(",") if args.tasks else default_tasks(args.device)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"--tasks: unknown {', '.join(unknown)} (known: {', '.join(TASKS)})")
    classes = select_classes(args.classes)
    factors = QUICK_FACTORS if args.quick else LR_FACTORS
    seeds = args.seeds or (1 if args.quick else 3)
    extend = args.extend if args.extend is not None else (0 if args.quick else 1)
    steps = {t: args.steps or (TASKS[t].quick_steps if args.quick else TASKS[t].steps) for t in tasks}
    partial = args.quick or args.classes or args.steps or args.seeds or args.extend is not None
    # the committed CPU tasks' files hold CPU numbers: a GPU run of them is not theirs to replace
    partial = partial or (args.device != "cpu" and any(TASKS[t].info.get("default", True) for t in tasks))
    out = args.out or (PARTIAL if partial else COMMITTED)
    jobs = args.jobs or default_jobs(args.device)

    if args.estimate:
        from .estimate import estimate

        estimate(tasks, classes, factors, seeds, steps, jobs, stream or sys.stderr)
        return 0
    skipped = {t: {} for t in tasks}
    applies = {}
    for task in tasks:
        for entry in classes:
            reason = skip_reason(entry, TASKS[task])
            if reason:
                skipped[task][entry.name] = reason
            else:
                applies.setdefault(task, []).append(entry)
    prov = provenance(args.device, jobs, argv)
    progress = Progress(jobs, stream)
    names = {e.name for task in tasks for e in applies.get(task, [])}
    # one suite over every task, so runs of all tasks interleave; its pairs are split back per task below
    suite = Suite(tasks, [e for e in classes if e.name in names], factors, seeds, steps, extend, args.device, jobs,
                  progress)
    suite.pairs = {k: v for k, v in suite.pairs.items() if k[1] not in skipped[k[0]]}
    started = time.perf_counter()
    pairs = suite.run()
    prov["suite_seconds"] = round(time.perf_counter() - started)
    for task in tasks:
        header = task_header(TASKS[task], steps[task], factors, TASKS[task].seeds(seeds))
        records = {}
        for entry in applies.get(task, []):
            pair = pairs[(task, entry.name)]
            key, rate = keys_for(entry, task)
            records[entry.name] = summarize(entry.name, key, rate, pair.grid, pair.runs)
        path = out / f"{task}.json"
        write(path, header, prov, records, skipped[task])
        print(f"wrote {path}", file=stream or sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
