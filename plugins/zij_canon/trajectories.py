"""Trajectory plots: every registered class on the Rosenbrock and Rastrigin functions.

The settings are one committed file, ``trajectories.yaml`` beside this module: the problems
(start, minimum, view), the number of steps, which iterates are drawn, and each registered
class's constructor arguments (or the reason it is not drawn). It is validated here
(:class:`TrajectorySpec`) and must name every class of the registry.

The plots are computed by ``python -m zij_canon.trajectory_runs`` (torch and matplotlib),
started in a subprocess for the plots the cache lacks, so the build itself imports neither.
Each plot is kept in ``<cache_dir>/trajectories/`` under a key hashing everything it is made
from: the class's settings and the problem's, the class's source file (and its base's, for a
wrapper), the versions of torch, zij and matplotlib, and the sources of the two modules that
compute and draw it. An unchanged build redraws nothing; plots no build uses are removed.

On the site, each problem's contour is one shared file (``assets/trajectories/<problem>.svg``)
and each path (``assets/trajectories/<Class>-<problem>.svg``) is laid over it; method pages
and API pages show them as ``<img>`` with alt text under a "Trajectories" heading.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field, model_validator

HERE = Path(__file__).parent
SPEC_FILE = HERE / "trajectories.yaml"
CODE = (HERE / "trajectory_runs.py", HERE / "trajectory_plot.py")
FORMAT = "trajectories 1"  # change to redraw every plot
SITE_DIR = "assets/trajectories"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Strict):
    title: str
    """Its name on the pages."""
    start: tuple[float, float]
    """The fixed starting point."""
    minimum: tuple[float, float]
    """The global minimum, marked on the plot."""
    view: tuple[tuple[float, float], tuple[float, float]]
    """The plotted window: [[x0, x1], [y0, y1]]."""


class TrajectorySpec(_Strict):
    steps: int = Field(gt=0)
    """Optimizer steps from the start (the same for every class)."""
    every: int = Field(gt=0)
    """Every ``every``-th iterate is drawn (and the last)."""
    problems: dict[str, Problem]
    optimizers: dict[str, dict[str, Any]]
    """Class name -> constructor arguments; a problem's name holds that problem's overrides,
    ``group`` keys added to the parameter group, ``omit`` the reason a class is not drawn."""

    @model_validator(mode="after")
    def _check(self):
        for name, settings in self.optimizers.items():
            if "omit" in settings and (set(settings) != {"omit"} or not str(settings["omit"]).strip()):
                raise ValueError(f"{name}: an omitted class has only its reason (omit: ...)")
            for problem in self.problems:
                if problem in settings and not isinstance(settings[problem], dict):
                    raise ValueError(f"{name}: {problem} holds that problem's overrides (a mapping)")
        return self

    def settings(self, name: str, problem: str) -> dict | None:
        """The settings of ``name`` on ``problem`` (None: omitted)."""
        entry = self.optimizers[name]
        if "omit" in entry:
            return None
        common = {k: v for k, v in entry.items() if k not in self.problems}
        return {**common, **entry.get(problem, {})}

    def omitted(self) -> dict[str, str]:
        return {n: str(s["omit"]) for n, s in self.optimizers.items() if "omit" in s}


def load_spec(path: Path = SPEC_FILE) -> TrajectorySpec:
    return TrajectorySpec.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def _source(module: str) -> bytes:
    """A zij module's source (found without importing zij); torch's classes are keyed by torch's version."""
    if not module.startswith("zij."):
        return b""
    import importlib.util

    spec = importlib.util.find_spec("zij")
    for root in spec.submodule_search_locations if spec else ():
        for path in (Path(root, *module.split(".")[1:]).with_suffix(".py"), Path(root, *module.split(".")[1:], "__init__.py")):
            if path.is_file():
                return path.read_bytes()
    return b""


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


@dataclass(frozen=True)
class Plot:
    name: str
    problem: str
    key: str
    job: dict

    @property
    def uri(self) -> str:
        return f"{SITE_DIR}/{self.name}-{self.problem}.svg"


class Trajectories:
    """The plots of one build: keys, the subprocess drawing the missing ones, and their HTML."""

    def __init__(self, entries, cache_dir: Path | None, spec_path: Path = SPEC_FILE, python: str = sys.executable):
        try:
            self.spec = load_spec(spec_path)
        except (OSError, yaml.YAMLError, ValueError) as exc:
            raise ValueError(f"{spec_path}: {exc}") from None
        self.entries = {e.name: e for e in entries}
        # A class not in the file yet is shown as not plotted (tests/test_trajectories.py requires every class)
        self.unsettled = sorted(set(self.entries) - set(self.spec.optimizers))
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="zij-trajectories-")
            cache_dir = Path(self._tmp.name)
        self.folder = Path(cache_dir) / "trajectories"
        self.folder.mkdir(parents=True, exist_ok=True)
        base = hashlib.sha256(FORMAT.encode())
        for name in ("torch", "zij", "matplotlib", "numpy"):
            base.update(f"{name}={_version(name)}\n".encode())
        for path in CODE:
            base.update(path.read_bytes())
        base.update(_source("zij.bench.tasks"))  # the test functions
        self.base_key = base.hexdigest()
        self.contours = {p: self._contour(p) for p in self.spec.problems}
        self.plots = {(name, p): self._plot(name, p)
                      for name in sorted(self.entries) if name in self.spec.optimizers for p in self.spec.problems
                      if self.spec.settings(name, p) is not None}
        jobs = [j for j in [*self.contours.values(), *(pl.job for pl in self.plots.values())]
                if not Path(self._summary(j) if j["kind"] == "path" else j["out"]).is_file()]
        self.computed = len(jobs)
        self._proc = None
        if jobs:  # drawn while the build goes on; wait() collects them
            self._jobs_file = self.folder / f"jobs-{os.getpid()}.json"
            self._jobs_file.write_text(json.dumps(jobs), encoding="utf-8")
            self._proc = subprocess.Popen([python, "-m", "zij_canon.trajectory_runs", str(self._jobs_file)],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.summaries: dict[tuple[str, str], dict] = {}
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    @staticmethod
    def _summary(job: dict) -> str:
        return job["out"][: -len(".svg")] + ".json"

    def _digest(self, data: dict, sources: bytes = b"") -> str:
        digest = hashlib.sha256(self.base_key.encode())
        digest.update(json.dumps(data, sort_keys=True).encode())
        digest.update(sources)
        return digest.hexdigest()[:24]

    def _contour(self, problem: str) -> dict:
        p = self.spec.problems[problem]
        data = {"kind": "contour", "problem": problem, "view": p.view, "start": p.start, "minimum": p.minimum}
        data = json.loads(json.dumps(data))
        return {**data, "out": str(self.folder / f"contour-{problem}-{self._digest(data)}.svg")}

    def _plot(self, name: str, problem: str) -> Plot:
        p, entry = self.spec.problems[problem], self.entries[name]
        settings = self.spec.settings(name, problem)
        sources = _source(entry.path.rsplit(".", 1)[0])
        base = settings.get("base")
        if isinstance(base, list) and base and base[0] in self.entries:
            sources += b"\0" + _source(self.entries[base[0]].path.rsplit(".", 1)[0])
        data = {"kind": "path", "name": name, "problem": problem, "settings": settings, "start": p.start,
                "steps": self.spec.steps, "every": self.spec.every, "view": p.view,
                "title": f"Path of {name} on the {p.title} function from {_pair(p.start)}, "
                         f"{self.spec.steps} steps"}
        data = json.loads(json.dumps(data))
        key = self._digest(data, sources)
        return Plot(name, problem, key, {**data, "out": str(self.folder / f"{name}-{problem}-{key}.svg")})

    # -- after the subprocess ----------------------------------------------
    def wait(self) -> None:
        """Wait for the missing plots; read every path's summary."""
        if self._proc is not None:
            _, err = self._proc.communicate()
            self._jobs_file.unlink(missing_ok=True)
            if self._proc.returncode != 0:
                raise RuntimeError(f"could not compute the trajectory plots (python -m zij_canon.trajectory_runs):\n"
                                   f"{err.strip()[-4000:]}")
            self._proc = None
        for k, plot in self.plots.items():
            self.summaries[k] = json.loads(Path(self._summary(plot.job)).read_text(encoding="utf-8"))

    def failures(self) -> list[str]:
        """The runs that raised, as ``Class on problem: error`` (after :meth:`wait`)."""
        return [f"{name} on {problem}: {s['error']}" for (name, problem), s in sorted(self.summaries.items()) if "error" in s]

    def files(self) -> list[tuple[str, str]]:
        """(site path, cached file) of every contour and path."""
        out = [(f"{SITE_DIR}/{p}.svg", job["out"]) for p, job in self.contours.items()]
        return out + [(plot.uri, plot.job["out"]) for k, plot in self.plots.items() if "error" not in self.summaries.get(k, {})]

    def prune(self) -> None:
        """Remove the cached plots this build did not use."""
        used = {Path(f).name for _, f in self.files()} | {Path(self._summary(p.job)).name for p in self.plots.values()}
        used |= {Path(p.job["out"]).name for p in self.plots.values()}
        for path in self.folder.iterdir():
            if path.name not in used:
                path.unlink(missing_ok=True)

    def figures(self, name: str) -> dict | None:
        """What the pages show for class ``name``: its figures or the reason it has none (None: not registered)."""
        if name not in self.entries:
            return None
        reason = self.spec.omitted().get(name)
        if name in self.unsettled:
            reason = "this class has no settings in trajectories.yaml yet."
        figures = []
        for problem, p in self.spec.problems.items():
            if (name, problem) not in self.plots:
                continue
            s = self.summaries[(name, problem)]
            if "error" in s:
                reason = f"its run raised {s['error']}"
                continue
            ending = (f"it diverged after {s['steps']} steps" if s["diverged"]
                      else f"it ends at {_pair(s['end'])}, where the function is {s['value']:g}")
            figures.append({
                "problem": p.title, "contour": f"{SITE_DIR}/{problem}.svg", "path": self.plots[(name, problem)].uri,
                "alt": f"Path of {name} on the {p.title} function from {_pair(p.start)} over {self.spec.steps} steps; "
                       f"{ending}. The minimum is at {_pair(p.minimum)}.",
            })
        return {"name": name, "figures": figures, "omitted": reason, "steps": self.spec.steps}

    def html(self, name: str, link, heading: bool = True) -> Markup:
        """The "Trajectories" section of class ``name``; ``link`` makes a site path relative to the page."""
        data = self.figures(name)
        if data is None:
            return Markup("")
        return Markup(self.env.get_template("trajectories.html").render(**data, link=link, heading=heading))


def _pair(xy) -> str:
    return "(" + ", ".join(f"{v:g}" for v in xy) + ")"
