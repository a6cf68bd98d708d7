"""API reference pages for the zij package, and the links between them and the Canon.

The package's registry is read in a separate Python process
(``python -m zij_canon.signatures``: the registry's catalog with each class's
constructor arguments), started early so it runs while the Canon is
validated; the documentation build never imports torch itself. zij's own
classes are documented by mkdocstrings, one page per family; torch.optim's
classes that zij registers are listed on the API index with links to their
Canon records.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .canon import Canon
from .render import method_url


@dataclass(frozen=True)
class ApiEntry:
    name: str
    public: str
    path: str
    canon_id: str
    family: str
    builtin: bool
    arguments: tuple[str, ...] = ()
    """The constructor's argument names, in order (without ``*args``/``**kwargs``)."""
    required: tuple[str, ...] = ()
    """The arguments without a default."""

    @property
    def anchor(self) -> str:
        """The heading id of the entry on its API page."""
        return self.public if self.builtin else self.path

    @property
    def page(self) -> str:
        """Site URL of the API page documenting the entry."""
        return "api/" if self.builtin else f"api/{self.family}/"


CATALOG_FORMAT = b"catalog with constructor arguments\n"  # change to drop catalogs cached by older code


def _source_key() -> str:
    """A key that changes whenever a source file of the zij package changes (found without importing it)."""
    spec = importlib.util.find_spec("zij")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the zij package is not installed: pip install -e .")
    digest = hashlib.sha256(CATALOG_FORMAT)
    for root in spec.submodule_search_locations:
        for path in sorted(Path(root).rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest.hexdigest()[:16]


class Catalog:
    """The registry catalog, read by a subprocess started at construction.

    With a ``cache_dir``, the catalog of unchanged package sources is reused
    and no subprocess runs (importing torch costs about two seconds a build).
    """

    def __init__(self, python: str = sys.executable, cache_dir: Path | None = None):
        self._python = python
        self._cache = cache_dir / f"catalog-{_source_key()}.json" if cache_dir else None
        self._cached = _read_catalog(self._cache)
        self._proc = None if self._cached is not None else self._start()
        if self._cached is not None:
            self._prune()

    def _prune(self) -> None:
        """Remove the catalogs of other package sources: only the current one is ever read."""
        for other in self._cache.parent.glob("catalog-*.json"):
            if other != self._cache:
                other.unlink(missing_ok=True)

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            [self._python, "-m", "zij_canon.signatures"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def entries(self) -> list[ApiEntry]:
        if self._cached is not None:
            return self._cached
        out, err = self._proc.communicate()
        if self._proc.returncode != 0:
            raise RuntimeError(f"could not read the zij registry (python -m zij_canon.signatures):\n{err.strip()}")
        entries = _parse_catalog(out)
        if self._cache is not None:  # kept for the next build; catalogs of older sources are removed
            self._cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(out, encoding="utf-8")
            tmp.replace(self._cache)
            self._prune()
        return entries


def _parse_catalog(text: str) -> list[ApiEntry]:
    """The registry's JSON as entries; raises ValueError or TypeError on anything else."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("the catalog is not a list")
    entries = [ApiEntry(**{k: tuple(v) if k in ("arguments", "required") else v for k, v in item.items() if k != "aliases"})
               for item in data]
    for e in entries:
        if not all(isinstance(getattr(e, f), str) for f in ("name", "public", "path", "canon_id", "family")) or not isinstance(e.builtin, bool):
            raise TypeError(f"malformed catalog entry {e!r}")
        if not all(isinstance(a, str) for a in e.arguments + e.required):
            raise TypeError(f"malformed catalog entry {e!r}")
    return entries


def _read_catalog(path: Path | None) -> list[ApiEntry] | None:
    """The cached catalog, or None when there is none or it cannot be read (corrupt, cut short, other shape)."""
    if path is None or not path.is_file():
        return None
    try:
        return _parse_catalog(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def check_links(canon: Canon, entries: list[ApiEntry]) -> list[str]:
    """Problems between the registry and the Canon: missing records, mismatched zij_class."""
    problems = []
    by_public = {e.public: e for e in entries}
    for e in entries:
        entry = canon.entries.get(e.canon_id)
        if entry is None:
            problems.append(f"registry entry {e.name} names Canon id {e.canon_id!r}, which has no record")
        elif entry.record.zij_class != e.public:
            problems.append(f"{entry.display}: zij_class should be {e.public} (registry entry {e.name}), not {entry.record.zij_class}")
    for entry in canon.entries.values():
        cls = entry.record.zij_class
        if cls is not None and cls not in by_public:
            problems.append(f"{entry.display}: zij_class {cls} is not a registered optimizer")
    return problems


def api_urls(entries: list[ApiEntry]) -> dict[str, str]:
    """zij_class -> site URL of its API entry (with the anchor)."""
    return {e.public: f"{e.page}#{e.anchor}" for e in entries}


@dataclass(frozen=True)
class StateTable:
    """Optimizer state bytes per parameter of every class, as ``make bench`` measured them
    (``python -m zij.bench.state`` writes the file; see its docstring for the protocol)."""

    model: str
    parameters: int
    classes: dict

    def figure(self, name: str) -> str | None:
        """The sentence (HTML) an API page shows for class ``name``."""
        row = self.classes.get(name)
        if row is None:
            return "State: not measured yet (<code>python -m zij.bench.state</code> adds it)."
        if "per_param" not in row:
            return f"State: not measured ({html.escape(row['skipped'])})."
        return (f"State: {row['per_param']:g} bytes per parameter, measured by <code>make bench</code> on a "
                f"{self.parameters:,}-parameter float32 model ({html.escape(self.model)}).")

    def short(self, name: str) -> str:
        """The figure alone, for a table cell (plain text)."""
        row = self.classes.get(name)
        return f"{row['per_param']:g} B/param" if row and "per_param" in row else "not measured"

    def source(self) -> str:
        """Where the figures come from, as a sentence (HTML)."""
        return (f"State sizes are bytes per parameter, measured by <code>make bench</code> on a {self.parameters:,}-parameter "
                f"float32 model ({html.escape(self.model)}).")

    @classmethod
    def read(cls, path: Path) -> StateTable:
        """The table at ``path``; a ValueError saying what is wrong and how to fix it otherwise."""
        hint = "run `make bench` (or `python -m zij.bench.state`) to write it"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            table = cls(str(data["model"]), int(data["parameters"]), dict(data["classes"]))
        except FileNotFoundError:
            raise ValueError(f"{path}: the state-bytes table is missing; {hint}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a state-bytes table ({exc}); {hint}") from None
        for name, row in table.classes.items():
            if not isinstance(row, dict) or not ({"per_param"} <= set(row) or {"skipped"} <= set(row)):
                raise ValueError(f"{path}: row {name!r} has neither per_param nor skipped; {hint}")
        return table


def family_page(family_title: str, members: list[ApiEntry], canon: Canon, state: StateTable | None = None,
                trajectories=None, benchmarks=None) -> str:
    """Markdown of one family's API page: a mkdocstrings block per class, its Canon link, its state size, and (when
    given) its trajectory plots and benchmark results (a :class:`zij_canon.leaderboard.Leaderboard`)."""
    lines = [f"# {family_title}", "", "[All optimizers](index.md)", ""]
    for e in sorted(members, key=lambda m: m.name.lower()):
        record = canon.entries[e.canon_id].record
        figure = state.figure(e.name) if state is not None else None
        lines += [
            f"::: {e.path}",
            "",
            f'<p class="zij-canon-link" data-class="{e.public}">Canon record: '
            f'<a href="../../{method_url(record)}">{html.escape(record.name)}</a> &middot; use as <code>{e.public}</code></p>',
            "",
        ]
        if figure is not None:
            lines += [f'<p class="zij-state" data-class="{e.public}">{figure}</p>', ""]
        if trajectories is not None:  # its plots (zij_canon.trajectories), as raw HTML on one line
            plots = trajectories.html(e.name, lambda target: "../../" + target, heading=False)
            lines += [str(plots).replace("\n", " "), ""]
        if benchmarks is not None:  # its benchmark block's placeholder (zij.js loads it: big raw HTML slows Markdown)
            slot = str(benchmarks.slot(e.name, lambda target: "../../" + target)).strip()
            if slot:
                lines += [slot, ""]
    return "\n".join(lines)
