"""``python -m zij.bench.state`` (part of ``make bench``): optimizer state bytes per parameter.

Every registered class, torch's included, is built on the ``char-lm`` benchmark model (a small
transformer: embeddings, attention and MLP matrices, norm gains and biases, all float32) the way
the benchmark builds it (:func:`zij.bench.protocol.build`: wrappers around SGD with momentum,
matrix rules with their routed AdamW for the other tensors, and so on), stepped twice with the
benchmark's closure, and its state measured (:func:`zij.bench.protocol.state_bytes`: every state
tensor once, wrapped and routed optimizers included). The figure is state bytes divided by the
model's parameter count: 8.0 for Adam's two float32 moments, less for factored, low-rank and
quantized states. It depends on the model's shapes, which the file records.

The table is deterministic (no timing, no date), so the committed file
(``benchmarks/state-bytes.json``) can be checked against a fresh measurement, and the site shows
each class's figure on its API page.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path

import torch

from .._registry import OptimizerEntry, entries
from .protocol import recipe_rate, run, skip_reason
from .tasks import TASKS, parameter_count

TASK = "char-lm"
COMMITTED = Path("benchmarks/state-bytes.json")


def measure(entry: OptimizerEntry, task_name: str = TASK) -> dict:
    """``entry``'s state on the task's model after two steps: bytes and bytes per parameter, or the
    reason it was not measured."""
    task = TASKS[task_name]
    reason = skip_reason(entry, task)
    if reason is not None:
        return {"skipped": reason}
    torch.manual_seed(0)
    record = run(entry, task, recipe_rate(entry, task), seed=0, steps=2)
    total = record["peak_state_bytes"]
    return {"bytes": total, "per_param": round(total / parameter_count(task), 3)}


def table(pattern: str = "*", task_name: str = TASK) -> dict:
    """The whole file's content for the classes whose name matches ``pattern``."""
    task = TASKS[task_name]
    rows = {e.name: measure(e, task_name) for e in entries() if fnmatch.fnmatch(e.name.lower(), pattern.lower())}
    return {
        "task": task_name,
        "model": task.description,
        "parameters": parameter_count(task),
        "dtype": "float32",
        "steps": 2,
        "torch": torch.__version__.split("+")[0],
        "classes": rows,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(COMMITTED), help="where the JSON table goes")
    parser.add_argument("--only", default="*", help="fnmatch pattern of class names (a partial table)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = table(args.only)
    out = Path(args.out)
    if args.only != "*" and out == COMMITTED:
        raise SystemExit("a partial table (--only) never replaces the committed file: give --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    for name, row in data["classes"].items():
        print(f"{name:<24} " + (f"{row['per_param']:7.3f} B/param" if "per_param" in row else f"skipped: {row['skipped']}"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
