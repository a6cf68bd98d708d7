"""Running the suite: every (task, class) pair through its sweep, then its seeds, in parallel runs.

For each pair, seed 0 runs every rate of the grid; if the best rate is at an end of the grid the
grid grows by one more half-decade step past it (at most ``extend`` times); then seeds 1.. run at
the best rate. Runs go to ``jobs`` worker processes of one thread each (a CPU run's numbers
do not depend on which worker makes them), or run in this process when ``jobs`` is 1.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

import torch

from .._registry import get_entry
from .protocol import lr_grid, recipe_rate, run, step_key
from .tasks import TASKS

HALF_DECADE = 10**0.5


@dataclass(frozen=True)
class Job:
    task: str
    entry: str
    lr: float
    seed: int
    steps: int
    device: str


def _init_worker() -> None:
    torch.set_num_threads(1)


def work(job: Job) -> tuple[Job, dict, float]:
    """Run one job; (job, its record, wall seconds)."""
    start = time.perf_counter()
    record = run(get_entry(job.entry), TASKS[job.task], job.lr, job.seed, steps=job.steps, device=job.device)
    return job, record, time.perf_counter() - start


@dataclass
class Pair:
    """One (task, class): its grid, its runs so far, how often its grid grew."""

    task: str
    entry: str
    grid: list[float]
    runs: list[dict] = field(default_factory=list)
    extensions: int = 0
    seeding: bool = False
    pending: int = 0


class Progress:
    """A progress bar with an ETA on stderr (a line every 5% when stderr is not a terminal)."""

    def __init__(self, jobs: int, stream=None):
        self.jobs, self.stream = jobs, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.done, self.total = time.perf_counter(), 0, 0
        self.seconds: dict[str, list[float]] = {}
        self.left: dict[str, int] = {}
        self.last_line = -1.0

    def add(self, task: str, n: int = 1) -> None:
        self.total += n
        self.left[task] = self.left.get(task, 0) + n

    def finished(self, task: str, seconds: float, label: str) -> None:
        self.done += 1
        self.left[task] -= 1
        self.seconds.setdefault(task, []).append(seconds)
        self.show(label)

    def eta(self) -> float:
        known = [s for v in self.seconds.values() for s in v]
        fallback = sum(known) / len(known) if known else 0.0
        mean = {t: (sum(v) / len(v) if v else fallback) for t, v in self.seconds.items()}
        return sum(n * mean.get(t, fallback) for t, n in self.left.items()) / self.jobs

    def show(self, label: str = "") -> None:
        fraction = self.done / self.total if self.total else 1.0
        elapsed = time.perf_counter() - self.start
        width = 30
        bar = "#" * int(width * fraction) + "." * (width - int(width * fraction))
        line = (f"[{bar}] {self.done}/{self.total} runs {100 * fraction:3.0f}%  elapsed {_clock(elapsed)}  "
                f"ETA {_clock(self.eta())}  {label}")
        if self.tty:
            self.stream.write("\r" + line[:150].ljust(150))
            if self.done == self.total:
                self.stream.write("\n")
        elif fraction - self.last_line >= 0.05 or self.done == self.total:
            self.last_line = fraction
            self.stream.write(line + "\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m{seconds % 60:02d}s" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


class Suite:
    """Plans and runs every pair; ``results[task][entry]`` holds each pair's runs when done."""

    def __init__(self, tasks: list[str], entries: list, factors, seeds: int, steps: dict[str, int],
                 extend: int, device: str, jobs: int, progress: Progress | None = None):
        self.seeds, self.steps, self.extend, self.device, self.jobs = seeds, steps, extend, device, jobs
        self.progress = progress or Progress(jobs)
        self.pairs = {(t, e.name): Pair(t, e.name, lr_grid(e, TASKS[t], factors)) for t in tasks for e in entries}
        self.queue: list[Job] = []

    def _submit(self, pair: Pair, lr: float, seed: int) -> None:
        pair.pending += 1
        self.progress.add(pair.task)
        self.queue.append(Job(pair.task, pair.entry, lr, seed, self.steps[pair.task], self.device))

    def _plan(self) -> None:
        rounds = max(len(p.grid) for p in self.pairs.values())
        for i in range(rounds):  # interleave tasks and classes, so the ETA sees every task early
            for pair in self.pairs.values():
                if i < len(pair.grid):
                    self._submit(pair, pair.grid[i], 0)
        for pair in self.pairs.values():  # the seeds' runs to come, for the progress total
            self.progress.add(pair.task, self._seeds(pair) - 1)

    def _seeds(self, pair: Pair) -> int:
        return TASKS[pair.task].seeds(self.seeds)

    def _after(self, pair: Pair) -> None:
        """A pair's run finished: grow its grid, start its seeds, or close it."""
        if pair.pending or pair.seeding:
            return
        scores = {r["lr"]: r["best_val"] for r in pair.runs if r["best_val"] is not None}
        best = min(scores, key=lambda lr: (scores[lr], lr)) if scores else None
        if best is not None and pair.extensions < self.extend and best in (pair.grid[0], pair.grid[-1]) \
                and len(pair.grid) > 1:
            lr = float(f"{(best / HALF_DECADE if best == pair.grid[0] else best * HALF_DECADE):.4g}")
            pair.grid = sorted([*pair.grid, lr])
            pair.extensions += 1
            self._submit(pair, lr, 0)
            return
        pair.seeding = True
        seeds = self._seeds(pair)
        self.progress.total -= seeds - 1
        self.progress.left[pair.task] -= seeds - 1
        for seed in range(1, seeds):
            self._submit(pair, best if best is not None else pair.grid[len(pair.grid) // 2], seed)

    def _record(self, job: Job, record: dict, seconds: float) -> None:
        pair = self.pairs[(job.task, job.entry)]
        pair.runs.append(record)
        pair.pending -= 1
        self.progress.finished(job.task, seconds, f"{job.task} {job.entry} lr={job.lr:g} seed={job.seed}")
        self._after(pair)

    def run(self) -> dict:
        self._plan()
        self.progress.show()
        if self.jobs == 1:
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                while self.queue:
                    self._record(*work(self.queue.pop(0)))
            finally:
                torch.set_num_threads(threads)
        else:
            with ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
                running = set()
                while self.queue or running:
                    while self.queue:
                        running.add(pool.submit(work, self.queue.pop(0)))
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._record(*future.result())
        return self.pairs


def default_jobs(device: str) -> int:
    return 1 if device != "cpu" else max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                           else os.cpu_count() or 1)


def keys_for(entry, task: str) -> tuple[str, float]:
    return step_key(entry, TASKS[task]), recipe_rate(entry, TASKS[task])


__all__ = ["Job", "Pair", "Progress", "Suite", "default_jobs", "keys_for", "work"]
