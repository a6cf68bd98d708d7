"""``python -m zij._bench``: step time and state size of every elementwise optimizer on CPU.

Two parameter sets, as in a real network: ``large``, a few big tensors (about 6M
parameters), and ``small``, 400 tensors of 64x64 and 64 (biases, norms and small
layers). Each optimizer is built as a user would (its recipe's learning rate, its
defaults otherwise) and timed interleaved with ``torch.optim.AdamW(foreach=True)``:
baseline, optimizer, baseline, optimizer, so drift in machine load falls on both.
The figure reported is the median over rounds of (optimizer median step time) /
(baseline median step time) for each set, with the optimizer state in bytes per
parameter. With ``--compiled``, classes that have the opt-in compiled step
(``ZijOptimizer.compile``, inductor) are timed compiled too, against the same baseline;
compilation happens in the untimed first step; torch's fused AdamW is timed then as well,
as the reference of what one fused pass over the tensors costs on the machine. Writes
``build/bench/results.json`` and ``build/bench/results.md``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from ._registry import entries

SETS = {
    "large": [(2048, 2048), (1024, 1024), (512, 2048), (1_000_000,), (4096,)],
    "small": [(64, 64)] * 200 + [(64,)] * 200,
}


def make_params(shapes):
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 1e-3
    return params


def fixed_loss() -> torch.Tensor:
    """The closure of rules that read the loss (AliG's and SPS's Polyak steps); the gradients are already set."""
    return torch.tensor(1.0)


def time_steps(opt, repeats: int, closure=None) -> float:
    opt.step(closure)  # creates state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step(closure)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def state_bytes(opt) -> int:
    return sum(v.numel() * v.element_size() for s in opt.state.values() if isinstance(s, dict)
               for v in s.values() if isinstance(v, torch.Tensor) and v.dim() > 0)


def user_arguments(entry) -> dict:
    """What a user must pass: the recipe's learning rate (where the class takes one), and the recipe's values of
    arguments without a default (Ranger21's ``num_iterations``)."""
    signature = inspect.signature(entry.cls).parameters
    required = [name for name, p in signature.items()
                if p.default is inspect.Parameter.empty and p.kind is not p.VAR_POSITIONAL and name != "params"]
    rate = {"lr": entry.recipe.get("lr", 1e-3)} if "lr" in signature else {}
    return {**rate, **{name: entry.recipe[name] for name in required if name in entry.recipe}}


def interleaved(build, shapes, repeats: int, rounds: int, closure=None) -> dict:
    """Median over rounds of (step time of ``build(params)``) / (AdamW(foreach=True)'s, timed just before it)."""
    ratios, state = [], 0.0
    for _ in range(rounds):
        baseline = time_steps(torch.optim.AdamW(make_params(shapes), lr=1e-3, foreach=True), repeats)
        params = make_params(shapes)
        opt = build(params)
        ratios.append(time_steps(opt, repeats, closure) / baseline)
        state = state_bytes(opt) / sum(p.numel() for p in params)
    return {"ratio": statistics.median(ratios), "state_bytes_per_param": state}


def measure(entry, shapes, repeats: int, rounds: int, compiled: bool = False) -> dict:
    """Interleaved ratio of ``entry`` (compiled, if asked) to AdamW(foreach=True) on one parameter set."""
    def build(params):
        opt = entry.make(params, **user_arguments(entry))
        return opt.compile() if compiled else opt

    return interleaved(build, shapes, repeats, rounds, fixed_loss if entry.capabilities.needs_closure else None)


#: With ``--compiled``, the floor a fused kernel reaches on this machine: torch's own one-pass AdamW.
REFERENCE = "torch.optim.AdamW(fused=True)"


def reference(shapes, repeats: int, rounds: int) -> dict:
    """:data:`REFERENCE`'s interleaved ratio on one parameter set."""
    return interleaved(lambda params: torch.optim.AdamW(params, lr=1e-3, fused=True), shapes, repeats, rounds)


def benchmarked() -> list:
    """zij's own elementwise classes (torch's are the baseline's kin, not ours to speed up)."""
    return [e for e in entries() if e.capabilities.elementwise and not e.wraps and not e.builtin]


def summary(rows: list[dict], name: str) -> str:
    ratios = [r[name]["ratio"] for r in rows]
    worst = max(rows, key=lambda r: r[name]["ratio"])
    over = sum(x > 1.5 for x in ratios)
    return (f"{name}: median {statistics.median(ratios):.2f}, max {worst[name]['ratio']:.2f} ({worst['name']}), "
            f"{over} of {len(ratios)} above 1.5")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved baseline/optimizer rounds per set")
    parser.add_argument("--only", default="*", help="comma-separated fnmatch patterns of optimizer names")
    parser.add_argument("--compiled", action="store_true", help="also time the compiled step where a class has one")
    parser.add_argument("--out", default="build/bench")
    args = parser.parse_args(argv)
    import fnmatch

    rows, floor = [], {}
    if args.compiled:
        floor = {name: reference(shapes, args.repeats, args.rounds)["ratio"] for name, shapes in SETS.items()}
        print(f"{REFERENCE}: large {floor['large']:.2f}  small {floor['small']:.2f}", flush=True)
    for entry in benchmarked():
        if not any(fnmatch.fnmatch(entry.name.lower(), pattern.strip()) for pattern in args.only.lower().split(",")):
            continue
        row = {"name": entry.name}
        for name, shapes in SETS.items():
            row[name] = measure(entry, shapes, args.repeats, args.rounds)
            if args.compiled and entry.cls.supports_compile:
                row[f"{name} compiled"] = measure(entry, shapes, args.repeats, args.rounds, compiled=True)
        rows.append(row)
        compiled = "".join(f"  {name} {row[name]['ratio']:5.2f}" for name in ("large compiled", "small compiled")
                           if name in row)
        print(f"{entry.name:<22} large {row['large']['ratio']:5.2f}  small {row['small']['ratio']:5.2f}{compiled}  "
              f"{row['large']['state_bytes_per_param']:.1f} B/param", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"sets": {k: [list(s) for s in v] for k, v in SETS.items()}, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "baseline": "torch.optim.AdamW(foreach=True)", "rows": rows}
    if floor:
        result["reference"] = {"name": REFERENCE, **floor}
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = ["| optimizer | large set vs AdamW(foreach) | small set vs AdamW(foreach) | compiled, large | compiled, small "
             "| state bytes/param |", "|---|---:|---:|---:|---:|---:|"]
    cell = lambda r, name: f"{r[name]['ratio']:.2f}" if name in r else "-"  # noqa: E731
    lines += [f"| {r['name']} | {cell(r, 'large')} | {cell(r, 'small')} | {cell(r, 'large compiled')} | "
              f"{cell(r, 'small compiled')} | {r['large']['state_bytes_per_param']:.1f} |" for r in rows]
    for name in ("large", "small", "large compiled", "small compiled"):
        measured = [r for r in rows if name in r]
        if measured:
            lines += ["", summary(measured, name)]
            print(summary(measured, name))
    if floor:
        lines += ["", f"reference, {REFERENCE} (one fused kernel per tensor): large {floor['large']:.2f}, "
                      f"small {floor['small']:.2f}"]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/results.json and results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
