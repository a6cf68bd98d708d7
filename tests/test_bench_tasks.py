"""The benchmark suite's machinery (``make bench-tasks``): its files, and that CPU runs reproduce.

No timing is asserted: step times are recorded, never checked.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the digits tasks read scikit-learn's bundled dataset: pip install 'zij[bench]'")

from zij import get_entry  # noqa: E402
from zij.bench.__main__ import main  # noqa: E402
from zij.bench.protocol import run  # noqa: E402
from zij.bench.results import cpu_model, finite_numbers  # noqa: E402
from zij.bench.tasks import TASKS  # noqa: E402

# a plain class, a two-pass closure wrapper, a matrix-only class routed with AdamW, a Polyak step
# size (no ``lr``), a Hessian class (create_graph closures) and a class built from the model
CLASSES = "AdamW,SAM,Muon,AliG,AdaHessian,AdamMini"
CHEAP_TASKS = ["digits-mlp", "digits-cnn", "rosenbrock", "rastrigin"]
LM_CLASSES = "AdamW,Muon,AdamMini"  # the transformer costs most: fewer classes
TASK_NAMES = [*CHEAP_TASKS, "char-lm"]
COMMITTED = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
RUN_KEYS = ("lr", "seed", "train", "val", "best_val", "final_val", "steps_to_target", "diverged_at",
            "grad_evals_per_step", "peak_state_bytes")


def without_timing(doc: dict) -> dict:
    """The file's numbers less what is not reproducible: timings, date and command."""
    doc = json.loads(json.dumps(doc))
    doc.pop("provenance")
    for c in doc["classes"]:
        c.pop("median_step_ms")
        for r in c["runs"]:
            r.pop("median_step_ms")
    return doc


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    outs = []
    for i in range(2):
        out = tmp_path_factory.mktemp(f"quick{i}")
        stream = io.StringIO()
        common = ["--quick", "--jobs", "1", "--out", str(out)]
        assert main([*common, "--classes", CLASSES, "--tasks", ",".join(CHEAP_TASKS)], stream=stream) == 0
        assert main([*common, "--classes", LM_CLASSES, "--tasks", "char-lm"], stream=stream) == 0
        outs.append((out, stream.getvalue()))
    return outs


def test_quick_writes_one_file_per_task_with_provenance(quick_runs):
    out, log = quick_runs[0]
    assert sorted(p.stem for p in out.glob("*.json")) == sorted(TASK_NAMES)
    assert "ETA" in log and "runs" in log
    for name in TASK_NAMES:
        doc = json.loads((out / f"{name}.json").read_text())
        assert set(doc["provenance"]) >= {"commit", "torch", "cpu", "threads_per_run", "date", "suite_seconds"}
        assert isinstance(doc["provenance"]["suite_seconds"], int) and doc["provenance"]["suite_seconds"] >= 0
        task = doc["task"]
        assert task["name"] == name and task["steps"] == TASKS[name].quick_steps and task["seeds"] == 1
        expected = LM_CLASSES if name == "char-lm" else CLASSES
        assert {c["name"] for c in doc["classes"]} == set(expected.split(","))
        for c in doc["classes"]:
            assert len(c["lrs"]) == 2 and c["best_lr"] in c["lrs"], c["name"]
            assert len(c["runs"]) == 2 and {r["lr"] for r in c["runs"]} == set(c["lrs"])
            for r in c["runs"]:
                assert set(RUN_KEYS) <= set(r) and len(r["val"]) == len(r["train"]) == len(task["eval_steps"])
                assert r["median_step_ms"] > 0 and r["grad_evals_per_step"] >= 1
            assert c["peak_state_bytes"] >= 0
        assert finite_numbers(doc), name


def test_quick_numbers_are_finite_where_training_did_not_diverge(quick_runs):
    out, _ = quick_runs[0]
    doc = json.loads((out / "digits-mlp.json").read_text())
    for c in doc["classes"]:
        best = [r for r in c["runs"] if r["lr"] == c["best_lr"]][0]
        assert best["diverged_at"] is None and all(v is not None and math.isfinite(v) for v in best["val"]), c["name"]
        assert best["best_val"] == min(best["val"]) and c["best_val_mean"] == best["best_val"]


def test_two_quick_runs_give_identical_numbers(quick_runs):
    (a, _), (b, _) = quick_runs
    for name in TASK_NAMES:
        first, second = (without_timing(json.loads((d / f"{name}.json").read_text())) for d in (a, b))
        assert first == second, name


def test_closure_classes_are_stepped_through_their_protocols(quick_runs):
    out, _ = quick_runs[0]
    doc = json.loads((out / "digits-mlp.json").read_text())
    by_name = {c["name"]: c for c in doc["classes"]}
    assert by_name["SAM"]["grad_evals_per_step"] == 2.0  # two passes per step
    assert by_name["AdamW"]["grad_evals_per_step"] == 1.0
    assert by_name["AliG"]["step_key"] == "max_lr" and by_name["SAM"]["step_key"] == "base.lr"


def test_sparse_only_classes_are_skipped_with_a_reason(tmp_path):
    stream = io.StringIO()
    main(["--quick", "--classes", "SparseAdam,SGD", "--tasks", "rosenbrock", "--jobs", "1", "--out", str(tmp_path)],
         stream=stream)
    doc = json.loads((tmp_path / "rosenbrock.json").read_text())
    assert "sparse" in doc["skipped"]["SparseAdam"] and [c["name"] for c in doc["classes"]] == ["SGD"]


def test_estimate_projects_every_step_key(tmp_path):
    stream = io.StringIO()
    assert main(["--estimate", "--classes", "AliG,SGD,SAM", "--tasks", "rosenbrock", "--jobs", "1"], stream=stream) == 0
    assert "rosenbrock" in stream.getvalue() and "(3 classes" in stream.getvalue()


def _slice(docs: list[dict], rng: random.Random, k: int) -> list[tuple[dict, dict, dict]]:
    """``k`` random runs of classes still registered, preferring ones that take a few seconds at most."""
    pool = []
    for doc in docs:
        for c in doc["classes"]:
            try:
                get_entry(c["name"])
            except ValueError:
                continue
            for r in c["runs"]:
                cheap = r["median_step_ms"] * doc["task"]["steps"] < 3000
                pool.append((cheap, doc, c, r))
    cheap = [p[1:] for p in pool if p[0]] or [p[1:] for p in pool]
    return rng.sample(cheap, min(k, len(cheap)))


def test_committed_results_reproduce():
    files = sorted(COMMITTED.glob("*.json"))
    if not files:
        pytest.skip(f"no committed results yet in {COMMITTED}: run `make bench-tasks` and commit them")
    docs = [json.loads(f.read_text()) for f in files]
    import torch

    seed = os.environ.get("ZIJ_BENCH_SLICE_SEED") or str(random.randrange(10**6))
    chosen = _slice(docs, random.Random(seed), 3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for doc, c, r in chosen:
            task = TASKS[doc["task"]["name"]]
            assert task.eval_steps(doc["task"]["steps"]) == doc["task"]["eval_steps"], "stale file: rerun make bench-tasks"
            again = run(get_entry(c["name"]), task, r["lr"], r["seed"], steps=doc["task"]["steps"])
            where = f"{task.name} {c['name']} lr={r['lr']} seed={r['seed']} (ZIJ_BENCH_SLICE_SEED={seed})"
            made_here = (doc["provenance"]["torch"], doc["provenance"]["cpu"]) == (torch.__version__, cpu_model())
            if made_here:  # the same CPU and torch: every number, bit for bit
                for key in RUN_KEYS:
                    assert again[key] == r[key], f"{where}: {key} {again[key]} != committed {r[key]}"
            else:  # another CPU or torch may round its kernels differently: the outcome, to 0.1%
                assert (again["best_val"] is None) == (r["best_val"] is None), where
                if r["best_val"] is not None:
                    assert again["best_val"] == pytest.approx(r["best_val"], rel=1e-3), where
    finally:
        torch.set_num_threads(threads)


def test_task_sizes_and_defaults():
    from zij.bench.__main__ import default_tasks
    from zij.bench.tasks import parameter_count

    assert default_tasks("cpu") == TASK_NAMES[:2] + ["char-lm"] + TASK_NAMES[2:4]
    assert default_tasks("cuda") == ["char-lm-large"]
    assert 0.5e6 < parameter_count(TASKS["char-lm"]) < 1.5e6  # about 1M parameters
    assert parameter_count(TASKS["char-lm-large"]) > 10e6  # tens of millions, for --device cuda
