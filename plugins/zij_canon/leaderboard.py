"""The Benchmarks page, its curve data, and the short "Benchmarks" block of method and API pages.

Everything is drawn from the results :mod:`zij_canon.benchmarks` reads, once per build:
each task's loss chart (the validation curves of its five best classes, :func:`zij_canon.svg.loss_chart`)
and the path of every class's curve on the same axes (``assets/zij/benchmarks.json``, which
``assets/benchmarks.js`` draws on request) when the object is made; a class's learning-rate sparklines
the first time a page asks for them. The page's tables are plain HTML, ranked; the script makes their
columns sortable. Text from the files is escaped by the templates (autoescaping) and by :mod:`zij_canon.svg`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markupsafe import Markup

from .benchmarks import ClassResult, Provenance, TaskResults, read_folder
from .render import method_url, relative
from .svg import chart_axes, loss_chart, sparkline

PAGE = "benchmarks.md"
URL = "benchmarks/"
DATA = "assets/zij/benchmarks.json"
SCRIPT = "assets/zij/benchmarks.js"
TOP = 5  # curves drawn per task
CARDS = "assets/zij/bench-cards"  # each class's block as an HTML fragment, loaded by method pages (zij.js)
# the page's meta: its wide tables take the table of contents' room (the page lists its tasks itself), and search
# leaves out its tables of figures (the classes' own pages are what a search for a name should find)
PAGE_META = {"search": {"exclude": True}, "hide": ["toc"]}
PAGE_IDS = {"benchmarks", "how-the-numbers-were-made", "what-they-do-not-show"}  # the page's own headings
DASH = "\u2014"


@dataclass(frozen=True)
class ClassLinks:
    """Where a class is documented: its API entry and its method page (site URLs), and the method's name."""

    api: str | None = None
    method: str | None = None
    record: str | None = None


@dataclass(frozen=True)
class Row:
    """One class's row of a leaderboard: each column's text and the value it sorts by ("" sorts last)."""

    name: str
    links: ClassLinks
    rank: str
    rank_value: str
    cells: tuple[tuple[str, str], ...]
    """(text, sort value) of the loss, reached, steps, step time and state columns."""
    rate: str
    rate_value: str
    edge: bool


@dataclass(frozen=True)
class CardRow:
    task: str
    anchor: str
    rank: str
    loss: str
    rate: str
    edge: bool
    spark: Markup
    skipped: str | None = None


def loss_text(c: ClassResult) -> str:
    """The mean best validation loss, with its spread over seeds when there are several."""
    if c.best_val_mean is None:
        return "no finite loss"
    spread = f" \u00b1 {c.best_val_std:.2g}" if c.seeds_at_best > 1 and c.best_val_std is not None else ""
    return f"{c.best_val_mean:.4g}{spread}"


def size_text(n: int) -> str:
    for unit, scale in (("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def rate_text(lr: float | None) -> str:
    return DASH if lr is None else f"{lr:.3g}"


def anchors(names: list[str]) -> dict[str, str]:
    """A heading id for each task name: its letters and digits joined by hyphens, unique on the page."""
    used, out = set(PAGE_IDS), {}
    for name in names:
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "task"
        slug, k = base, 1
        while slug in used:
            k += 1
            slug = f"{base}-{k}"
        used.add(slug)
        out[name] = slug
    return out


def _grouped(tasks: list[TaskResults], key) -> list[tuple[object, list[str]]]:
    """The distinct values of ``key(task)``, each with the names of its tasks, in the tasks' order."""
    groups: dict = {}
    for t in tasks:
        groups.setdefault(key(t), []).append(t.name)
    return list(groups.items())


def _last(curve) -> float | None:
    return next((v for v in reversed(curve) if v is not None), None)


class Leaderboard:
    """The results of one build, rendered: the page, its curve data and each class's block."""

    def __init__(self, tasks: list[TaskResults], links: dict[str, ClassLinks], folder: str = ""):
        self.tasks = tasks
        self.links = links
        self.folder = folder
        self.anchors = anchors([t.name for t in tasks])
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
                                      autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                      lstrip_blocks=True)
        self.charts: dict[str, Markup] = {}
        self.legends: dict[str, list[tuple[int, str, int | None]]] = {}  # task -> (series, class, rank)
        self.paths: dict[str, list[list]] = {}  # task -> [[class, rank, path on its chart]] in rank order
        for t in tasks:
            self._draw(t)
        self.sparks: dict[tuple[str, str], Markup] = {}
        self.by_class: dict[str, list[tuple[TaskResults, ClassResult | None, str | None]]] = {}
        for t in tasks:
            for c in t.classes:
                self.by_class.setdefault(c.name, []).append((t, c, None))
            for name, reason in t.skipped:
                self.by_class.setdefault(name, []).append((t, None, reason))

    # -- the page ---------------------------------------------------------------------
    def _draw(self, t: TaskResults) -> None:
        drawn = [c for c in t.classes if any(v is not None for v in c.curve)][:TOP]
        axes = chart_axes(t.steps, [v for c in drawn for v in c.curve if v is not None])
        self.paths[t.name] = [[c.name, c.rank, axes.path(t.eval_steps, c.curve)]
                              for c in t.classes if any(v is not None for v in c.curve)]
        ends = "; ".join(f"{c.name} ends at {_last(c.curve):.4g}" for c in drawn)
        summary = (f"Validation loss against step on {t.name}, {'log' if axes.log else 'linear'} scale, of the "
                   f"{len(drawn)} best classes, each at its best rate (seed 0): {ends}.")
        series = [axes.path(t.eval_steps, c.curve) for c in drawn]
        self.charts[t.name] = Markup(loss_chart(axes, series, summary, "step",
                                                "validation loss" + (" (log scale)" if axes.log else "")))
        self.legends[t.name] = [(i + 1, c.name, c.rank) for i, c in enumerate(drawn)]

    def rows(self, t: TaskResults) -> list[Row]:
        out = []
        for c in t.classes:
            steps = c.steps_to_target_median
            out.append(Row(
                name=c.name,
                links=self._relative(self.links.get(c.name, ClassLinks()), URL),
                rank=DASH if c.rank is None else str(c.rank), rank_value="" if c.rank is None else str(c.rank),
                cells=(
                    (loss_text(c), "" if c.best_val_mean is None else repr(c.best_val_mean)),
                    (f"{c.seeds_reaching_target} of {c.seeds_at_best}", str(c.seeds_reaching_target)),
                    (DASH if steps is None else str(steps), "" if steps is None else str(steps)),
                    (DASH if c.median_step_ms is None else f"{c.median_step_ms:.3g}",
                     "" if c.median_step_ms is None else repr(c.median_step_ms)),
                    (size_text(c.peak_state_bytes), str(c.peak_state_bytes)),
                ),
                rate=rate_text(c.best_lr), rate_value="" if c.best_lr is None else repr(c.best_lr),
                edge=c.best_lr_at_grid_edge,
            ))
        return out

    @staticmethod
    def _relative(links: ClassLinks, page: str) -> ClassLinks:
        return ClassLinks(relative(page, links.api) if links.api else None,
                          relative(page, links.method) if links.method else None, links.record)

    def page(self) -> str:
        """HTML body of the Benchmarks page."""
        provenance = _grouped(self.tasks, lambda t: t.provenance)
        return self.env.get_template("benchmarks.html").render(
            tasks=[{
                "t": t, "anchor": self.anchors[t.name], "chart": self.charts[t.name], "legend": self.legends[t.name],
                "rows": self.rows(t), "factors": ", ".join(f"{x:.3g}" for x in t.lr_factors),
                "parameters": f"{t.parameters:,}", "evals": len(t.eval_steps), "skipped": t.skipped,
            } for t in self.tasks],
            provenance=[(p, names, _short(p)) for p, names in provenance],
            selection=_grouped(self.tasks, lambda t: t.selection),
            folder=self.folder, top=TOP,
            data=relative(URL, DATA), script=relative(URL, SCRIPT),
        )

    def data_json(self) -> str:
        """Each task's curves as path data on its chart, in rank order (for the page's "show a class" control)."""
        return json.dumps(self.paths, ensure_ascii=False, separators=(",", ":"), sort_keys=True)

    # -- a class's block ------------------------------------------------------------------
    def _spark(self, t: TaskResults, c: ClassResult) -> Markup:
        key = (t.name, c.name)
        if key not in self.sparks:
            values = "; ".join(f"{lr:.3g}: {DASH if v is None else f'{v:.4g}'}" for lr, v in c.sensitivity)
            label = f"Best validation loss of {c.name} on {t.name} at each learning rate ({values})"
            self.sparks[key] = Markup(sparkline(list(c.sensitivity), c.best_lr, label))
        return self.sparks[key]

    def card_rows(self, name: str) -> list[CardRow]:
        out = []
        for t, c, reason in self.by_class.get(name, []):
            anchor = f"{URL}#{self.anchors[t.name]}"
            if c is None:
                out.append(CardRow(t.name, anchor, "", "", "", False, Markup(""), skipped=reason))
                continue
            rank = DASH if c.rank is None else f"{c.rank} of {len(t.classes)}"
            out.append(CardRow(t.name, anchor, rank, loss_text(c), rate_text(c.best_lr), c.best_lr_at_grid_edge,
                               self._spark(t, c)))
        return out

    def card_path(self, name: str) -> str | None:
        """Site path of class ``name``'s block as a fragment (None without results)."""
        return f"{CARDS}/{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.html" if name in self.by_class else None

    def card_files(self) -> dict[str, str]:
        """Every class's block as a fragment for its method page. Method pages keep only a placeholder that
        zij.js fills from it, so the block does not count against their size budget. Links are written for a
        page two levels deep, where every method page is."""
        return {self.card_path(name): str(self.card(name, lambda target: "../../" + target, heading=False))
                for name in sorted(self.by_class)}

    def slot(self, name: str, link) -> Markup:
        """A placeholder that zij.js fills with class ``name``'s block from its fragment (see :meth:`card_files`),
        linking to the Benchmarks page until then; empty without results."""
        path = self.card_path(name)
        if path is None:
            return Markup("")
        return Markup(self.env.get_template("_bench_slot.html").render(card=link(path), page=link(URL)))

    def card(self, name: str, link, heading: bool = True) -> Markup:
        """Class ``name``'s "Benchmarks" block (empty without results); ``link`` makes a site URL relative."""
        rows = self.card_rows(name)
        if not rows:
            return Markup("")
        return Markup(self.env.get_template("_bench_card.html").render(
            name=name, rows=rows, heading=heading, link=link, page=URL))


def from_folder(folder: Path, cache_dir: Path | None, records, api_urls: dict[str, str], project: Path) -> Leaderboard:
    """The results in ``folder``, linked to the records' method pages and the API entries (``zij_class`` -> URL);
    a :class:`~zij_canon.benchmarks.BenchError` when they cannot be shown."""
    tasks = read_folder(folder, cache_dir)
    links = {r.zij_class.removeprefix("zij."): ClassLinks(api_urls.get(r.zij_class), method_url(r), r.name)
             for r in records if r.zij_class}
    folder, project = folder.resolve(), project.resolve()  # the page names the folder as the project does
    shown = folder.relative_to(project).as_posix() if folder.is_relative_to(project) else folder.name
    return Leaderboard(tasks, links, shown)


def _short(p: Provenance) -> str:
    return (p.commit or "unknown")[:12]
