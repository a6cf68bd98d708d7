"""The benchmark results (``make bench-tasks``), read and checked for the site.

``python -m zij.bench`` writes one JSON file per task (schema 1, documented in
``zij/bench/results.py``): the task's header, where the numbers were made
(``provenance``), its classes ranked by mean best validation loss, and the classes
it skipped. :func:`read_folder` reads every ``*.json`` of a folder into the frozen
dataclasses below, keeping only what the site shows (a class's validation curve
is seed 0's at its best rate); anything missing, of the wrong type or
inconsistent raises a :class:`BenchError` naming the file and the field.

Parsed files are kept in the build cache (``bench-<key>.pickle``, a
:class:`~zij_canon.cache.DigestCache` keyed by each file's path and bytes), so a
build parses only the files that changed since the last one.
The pages are drawn by :mod:`zij_canon.leaderboard`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

from .cache import DigestCache

SCHEMA = 1
HINT = "write it again with `make bench-tasks` (python -m zij.bench); the files are never edited by hand"
Number = (int, float)


class BenchError(ValueError):
    """A results folder or file the site cannot show: the message names it, the field, and the fix."""


@dataclass(frozen=True)
class Provenance:
    """Where and how a file's numbers were made."""

    commit: str | None
    dirty: bool | None
    torch: str
    python: str
    cpu: str
    cpu_count: int | None
    threads_per_run: int
    parallel_runs: int
    device: str
    date: str
    command: str
    suite_seconds: int | None = None
    """Wall seconds of the whole command that wrote the file (every task together); None in older files."""


@dataclass(frozen=True)
class ClassResult:
    """One class on one task."""

    name: str
    rank: int | None
    """1 + the number of classes with a lower mean best validation loss (None: no finite loss)."""
    lrs: tuple[float, ...]
    best_lr: float | None
    best_lr_at_grid_edge: bool
    sensitivity: tuple[tuple[float, float | None], ...]
    """(rate, seed 0's best validation loss) for every rate of the grid."""
    best_val_mean: float | None
    best_val_std: float | None
    seeds_reaching_target: int
    seeds_at_best: int
    steps_to_target_median: int | None
    median_step_ms: float | None
    peak_state_bytes: int
    curve: tuple[float | None, ...]
    """Seed 0's validation loss at the best rate, at each of the task's ``eval_steps`` (empty: no best rate)."""


@dataclass(frozen=True)
class TaskResults:
    """One task's file."""

    source: Path
    name: str
    description: str
    parameters: int
    steps: int
    warmup_steps: int
    schedule: str
    eval_steps: tuple[int, ...]
    target: float
    lr_factors: tuple[float, ...]
    seeds: int
    selection: str
    provenance: Provenance
    classes: tuple[ClassResult, ...]
    """In rank order, as the file lists them."""
    skipped: tuple[tuple[str, str], ...]
    """(class, reason), sorted by class."""


class _File:
    """Typed access to one parsed file; every failure names the file and the field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, problem: str) -> BenchError:
        return BenchError(f"{self.path}: {where}: {problem}; {HINT}")

    def get(self, data: dict, key: str, where: str, kinds, nullable: bool = False):
        at = f"{where}.{key}" if where else key
        if not isinstance(data, dict):
            raise self.fail(where or "(top level)", "expected an object")
        if key not in data:
            raise self.fail(at, "missing")
        value = data[key]
        if value is None and nullable:
            return None
        if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
            raise self.fail(at, f"expected {_kind_name(kinds)}, found {value!r}")
        if not isinstance(value, kinds) or (isinstance(value, float) and not math.isfinite(value)):
            raise self.fail(at, f"expected {_kind_name(kinds)}{' or null' if nullable else ''}, found {_shown(value)}")
        return value

    def numbers(self, data: dict, key: str, where: str, kind=Number, nullable_items: bool = False) -> tuple:
        values = self.get(data, key, where, list)
        for i, v in enumerate(values):
            if not (v is None and nullable_items) and (isinstance(v, bool) or not isinstance(v, kind)):
                raise self.fail(f"{where}.{key}[{i}]", f"expected {_kind_name(kind)}, found {_shown(v)}")
        return tuple(values)


def _kind_name(kinds) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list", dict: "an object"}
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return "a number" if set(kinds) == set(Number) else " or ".join(names[k] for k in kinds)


def _shown(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _class(f: _File, data: dict, where: str, evals: int) -> ClassResult:
    g = f.get
    lrs = f.numbers(data, "lrs", where)
    best_lr = g(data, "best_lr", where, Number, nullable=True)
    sensitivity = []
    for i, point in enumerate(g(data, "sensitivity", where, list)):
        at = f"{where}.sensitivity[{i}]"
        sensitivity.append((float(g(point, "lr", at, Number)), g(point, "best_val", at, Number, nullable=True)))
    curve: tuple = ()
    runs = g(data, "runs", where, list)
    for i, run in enumerate(runs):
        at = f"{where}.runs[{i}]"
        val = f.numbers(run, "val", at, nullable_items=True)
        if len(val) != evals:
            raise f.fail(f"{at}.val", f"{len(val)} values for the task's {evals} eval_steps")
        if best_lr is not None and g(run, "lr", at, Number) == best_lr and g(run, "seed", at, int) == 0:
            curve = tuple(None if v is None else float(v) for v in val)
    if best_lr is not None and not curve:
        raise f.fail(f"{where}.runs", f"no run of seed 0 at the best rate {best_lr:g}")
    if best_lr is not None and best_lr not in lrs:
        raise f.fail(f"{where}.best_lr", f"{best_lr:g} is not a rate of the grid {list(lrs)}")
    mean = g(data, "best_val_mean", where, Number, nullable=True)
    return ClassResult(
        name=g(data, "name", where, str), rank=None, lrs=tuple(float(x) for x in lrs),
        best_lr=None if best_lr is None else float(best_lr),
        best_lr_at_grid_edge=g(data, "best_lr_at_grid_edge", where, bool),
        sensitivity=tuple(sensitivity),
        best_val_mean=None if mean is None else float(mean),
        best_val_std=g(data, "best_val_std", where, Number, nullable=True),
        seeds_reaching_target=g(data, "seeds_reaching_target", where, int),
        seeds_at_best=g(data, "seeds_at_best", where, int),
        steps_to_target_median=g(data, "steps_to_target_median", where, int, nullable=True),
        median_step_ms=g(data, "median_step_ms", where, Number, nullable=True),
        peak_state_bytes=g(data, "peak_state_bytes", where, int),
        curve=curve,
    )


def _ranked(f: _File, classes: list[ClassResult]) -> tuple[ClassResult, ...]:
    """The classes with their ranks; the file must list them in rank order (finite means ascending, then none)."""
    seen: set[str] = set()
    for c in classes:
        if c.name in seen:
            raise f.fail("classes", f"{c.name!r} is listed twice")
        seen.add(c.name)
    means = [(c.best_val_mean is None, c.best_val_mean or 0.0) for c in classes]
    for i in range(1, len(means)):
        if means[i] < means[i - 1]:
            raise f.fail(f"classes[{i}]", f"{classes[i].name} is not in rank order (the file is ranked by "
                                           "best_val_mean, classes without one last)")
    finite = [c.best_val_mean for c in classes if c.best_val_mean is not None]
    return tuple(replace(c, rank=None if c.best_val_mean is None else 1 + sum(m < c.best_val_mean for m in finite))
                 for c in classes)


def parse(path: Path, text: str) -> TaskResults:
    """One task's file, checked; a :class:`BenchError` otherwise."""
    f = _File(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); {HINT}") from None
    schema = f.get(doc, "schema", "", int)
    if schema != SCHEMA:
        raise f.fail("schema", f"schema {schema} is not the one this site reads ({SCHEMA})")
    task, prov = f.get(doc, "task", "", dict), f.get(doc, "provenance", "", dict)
    g = f.get
    evals = f.numbers(task, "eval_steps", "task", int)
    provenance = Provenance(
        commit=g(prov, "commit", "provenance", str, nullable=True), dirty=g(prov, "dirty", "provenance", bool, nullable=True),
        torch=g(prov, "torch", "provenance", str), python=g(prov, "python", "provenance", str),
        cpu=g(prov, "cpu", "provenance", str), cpu_count=g(prov, "cpu_count", "provenance", int, nullable=True),
        threads_per_run=g(prov, "threads_per_run", "provenance", int),
        parallel_runs=g(prov, "parallel_runs", "provenance", int), device=g(prov, "device", "provenance", str),
        date=g(prov, "date", "provenance", str), command=g(prov, "command", "provenance", str),
        suite_seconds=g(prov, "suite_seconds", "provenance", int, nullable=True) if "suite_seconds" in prov else None,
    )
    classes = [_class(f, c, f"classes[{i}]", len(evals)) for i, c in enumerate(g(doc, "classes", "", list))]
    skipped = g(doc, "skipped", "", dict)
    for name in skipped:
        g(skipped, name, "skipped", str)
    return TaskResults(
        source=path, name=g(task, "name", "task", str), description=g(task, "description", "task", str),
        parameters=g(task, "parameters", "task", int), steps=g(task, "steps", "task", int),
        warmup_steps=g(task, "warmup_steps", "task", int), schedule=g(task, "schedule", "task", str),
        eval_steps=evals, target=float(g(task, "target", "task", Number)),
        lr_factors=tuple(float(x) for x in f.numbers(task, "lr_factors", "task")),
        seeds=g(task, "seeds", "task", int), selection=g(task, "selection", "task", str),
        provenance=provenance, classes=_ranked(f, classes), skipped=tuple(sorted(skipped.items())),
    )


def read_file(path: Path, cache: DigestCache | None = None) -> TaskResults:
    """:func:`parse` of ``path``; from ``cache`` when a build has parsed the same bytes at the same path before."""
    try:
        data = path.read_bytes()
        digest = DigestCache.digest(str(path).encode() + b"\0" + data)
        cached = cache.get(digest) if cache is not None else None
        if cached is not None:
            return cached
        task = parse(path, data.decode("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path}: cannot be read ({exc}); {HINT}") from None
    if cache is not None:
        cache.put(digest, task)
    return task


def read_folder(folder: Path, cache_dir: Path | None = None) -> list[TaskResults]:
    """Every task file of ``folder`` (``*.json``, by file name); an empty list when it holds none.

    With a ``cache_dir``, files parsed by an earlier build are not parsed again (:class:`DigestCache`)."""
    if folder.exists() and not folder.is_dir():
        raise BenchError(f"{folder}: not a folder; bench_results names the folder `make bench-tasks` writes "
                         "(benchmarks/results)")
    if not folder.is_dir():
        raise BenchError(f"{folder}: the benchmark results folder is missing; run `make bench-tasks` to write it, "
                         "or remove bench_results from the zij-canon options in mkdocs.yml to build without "
                         "the Benchmarks page")
    cache = DigestCache(cache_dir, "bench", lambda value: type(value) is TaskResults) if cache_dir else None
    tasks = [read_file(path, cache) for path in sorted(folder.glob("*.json"))]
    if cache is not None:
        cache.save()
    names = [t.name for t in tasks]
    for t in tasks:
        if names.count(t.name) > 1:
            raise BenchError(f"{t.source}: task.name: {t.name!r} is also the task of another file of {folder}; {HINT}")
    return tasks
