"""``python -m zij.bench --estimate``: the suite's projected duration, from a few measured steps.

For every (task, class) pair it times a few steps of the class on the task's model (after two
unmeasured ones) and one validation pass, in process CPU time with one thread, so the figure is
what an otherwise idle core would take even while the machine is busy. A run's cost is then
build + steps x step + evaluations x evaluation; the suite's is the sum over every planned run
(grid rates + further seeds; grid growth is not known in advance and is left out) divided by the
number of parallel runs.
"""

from __future__ import annotations

import statistics
import time

import torch

from .protocol import build, expose_step_size, lr_grid, recipe_rate, skip_reason, step_key
from .tasks import TASKS

PROBE_STEPS = {"char-lm": 3, "char-lm-large": 2, "digits-cnn": 8}


def step_cost(entry, task) -> tuple[float, float, float]:
    """(build, step, evaluation) CPU seconds of ``entry`` on ``task``."""
    start = time.process_time()
    problem = task.build(0)
    torch.manual_seed(0)
    opt = build(entry, problem, task, recipe_rate(entry, task))
    expose_step_size(opt, step_key(entry, task))
    built = time.process_time() - start
    batch = None

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = problem.loss_on(batch)
        loss.backward()
        return loss

    n = PROBE_STEPS.get(task.name, 20)
    times = []
    for step in range(n + 2):
        batch = problem.next_batch(step)
        start = time.process_time()
        opt.step(closure)
        times.append(time.process_time() - start)
    start = time.process_time()
    problem.val_loss()
    return built, statistics.median(times[2:]), time.process_time() - start


def estimate(tasks: list[str], classes: list, factors, seeds: int, steps: dict[str, int], jobs: int,
             stream) -> float:
    """Print the projected cost per task and in all; return the projected wall seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    total = 0.0
    try:
        for name in tasks:
            task, cost, slowest = TASKS[name], 0.0, []
            for entry in classes:
                if skip_reason(entry, task):
                    continue
                made, step, evaluation = step_cost(entry, task)
                runs = len(lr_grid(entry, task, factors)) + task.seeds(seeds) - 1
                run = made + steps[name] * step + len(task.eval_steps(steps[name])) * evaluation
                cost += runs * run
                slowest.append((run, entry.name))
            slowest.sort(reverse=True)
            print(f"{name:14} {cost / 60:7.1f} CPU-min  ({len(slowest)} classes; slowest runs: "
                  + ", ".join(f"{n} {s:.1f}s" for s, n in slowest[:3]) + ")", file=stream, flush=True)
            total += cost
    finally:
        torch.set_num_threads(threads)
    wall = total / jobs
    print(f"total {total / 60:.1f} CPU-min; with {jobs} parallel runs about {wall / 60:.1f} min "
          "(plus grid growth where a best rate is at an end of its grid)", file=stream, flush=True)
    return wall
