"""``python -m zij._bench``: step time and state size of every elementwise optimizer on CPU.

Each optimizer steps over about 10M float32 parameters in a few shapes; the
median step time is reported as a ratio to ``torch.optim.AdamW(foreach=True)``
measured in the same run, with the optimizer state in bytes per parameter.
Writes ``build/bench/results.json`` and ``build/bench/results.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ._registry import entries

SHAPES = [(2048, 2048), (4096, 1024), (1024, 1024), (512, 2048), (1_048_576,), (4096,)]


def make_params():
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g).requires_grad_() for s in SHAPES]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return params


def time_steps(opt, repeats: int) -> float:
    opt.step()  # creates state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def state_bytes(opt) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() if isinstance(s, dict)
               for v in s.values() if isinstance(v, torch.Tensor) and v.dim() > 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="build/bench")
    args = parser.parse_args(argv)
    n = sum(p.numel() for p in make_params())

    def adamw_foreach() -> float:
        return time_steps(torch.optim.AdamW(make_params(), lr=1e-3, foreach=True), args.repeats)

    before = adamw_foreach()
    rows = []
    for entry in entries():
        if not entry.capabilities.elementwise or entry.wraps:
            continue
        params = make_params()
        opt = entry.make(params, **entry.recipe)
        rows.append({"name": entry.name, "median_step_s": time_steps(opt, args.repeats),
                     "state_bytes_per_param": state_bytes(opt) / n})
        print(f"{entry.name:<22} {rows[-1]['median_step_s'] * 1e3:8.1f} ms  {rows[-1]['state_bytes_per_param']:.1f} B/param")
    # the baseline is timed before and after the others, so drift in machine load shows up
    baseline = statistics.median([before, adamw_foreach()])
    for row in rows:
        row["ratio_to_adamw_foreach"] = row["median_step_s"] / baseline
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"parameters": n, "shapes": SHAPES, "baseline_adamw_foreach_s": baseline, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "rows": rows}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = ["| optimizer | median step (ms) | vs AdamW(foreach) | state bytes/param |", "|---|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['median_step_s'] * 1e3:.1f} | {r['ratio_to_adamw_foreach']:.2f} | {r['state_bytes_per_param']:.1f} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print(f"{n} parameters; AdamW(foreach=True) {baseline * 1e3:.1f} ms; wrote {out}/results.json and results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
