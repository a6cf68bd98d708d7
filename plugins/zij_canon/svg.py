"""SVG drawing of laid-out lineage graphs, of year timelines and of the benchmark charts.

Coordinates come from ELK (:mod:`zij_canon.layout`) for graphs and from a
plain computation for timelines (a column per year). Nothing here picks a
colour: every shape has a class, styled in ``assets/lineage.css`` with the
theme's variables, so the light and dark palettes both apply. All text is
escaped; output depends only on the arguments (integer coordinates, fixed order).

Accessibility: a graph is ``role="group"`` with an ``aria-label`` (``role="img"``
would hide its links); each node is a link named by its ``<title>`` and
reachable with the keyboard. A timeline is ``role="img"`` with an
``aria-label`` summary and the counts of every year in its ``<desc>``.

Benchmark charts (loss curves, learning-rate sparklines) are ``role="img"`` with an
``aria-label`` that states what they show; their coordinates have one decimal, and
their curves' colours and dashes come from shared classes (``zij-series-<n>``).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

from markupsafe import escape

NODE_HEIGHT = 24
LABEL_CHARS = 28
PAD_X = 8
ARROW = (6, 3)  # arrowhead length and half width (px)
LEGEND = ("Arrows lead from a method to the methods derived from it; a dashed arrow links a method and its "
          "generalization. Point at an arrow for the relation the records state.")
# Advance widths (px) of a 12 px sans-serif font, on the wide side (DejaVu Sans), to size nodes before the browser draws them.
NARROW, WIDE = set("fijlrtI!|.,:;'()[] -"), set("mwMW@%")


def label(name: str) -> str:
    """A node's label: the name, cut to :data:`LABEL_CHARS` characters with an ellipsis."""
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1].rstrip() + "\u2026"


@functools.cache
def node_width(text: str) -> int:
    """Width of a node labelled ``text``: the estimated text width and a margin each side."""
    width = sum(4 if c in NARROW else 11 if c in WIDE else 8.6 if c.isupper() or c.isdigit() else 7.1 for c in text)
    return int(width + 0.999) + 2 * PAD_X


class Node(NamedTuple):
    id: str
    label: str
    title: str
    href: str
    current: bool = False


class Edge(NamedTuple):
    id: str
    title: str
    dashed: bool = False


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _edge(points: list[list[int]]) -> tuple[str, str]:
    """Path of an edge ending at the base of its arrowhead, and the arrowhead (its tip on the target).

    ELK routes orthogonally, so the last segment is axis-parallel and every coordinate stays an integer.
    """
    (px, py), (tx, ty) = points[-2], points[-1]
    ux, uy = (tx > px) - (tx < px), (ty > py) - (ty < py)
    long, half = ARROW
    bx, by = tx - ux * long, ty - uy * long
    path = "M" + "L".join(f"{x} {y}" for x, y in points[:-1]) + f"L{bx} {by}"
    head = f"M{tx} {ty}L{bx - uy * half} {by + ux * half}L{bx + uy * half} {by - ux * half}Z"
    return path, head


def graph(layout: dict, nodes: list[Node], edges: list[Edge], title: str) -> str:
    """An SVG of a laid-out graph: edges with arrowheads under nodes that are links."""
    w, h = layout["width"], layout["height"]
    out = [f'<svg class="zij-graph" role="group" aria-label="{escape(title)}" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}">']
    for edge in edges:
        path, head = _edge(layout["edges"][edge.id])
        cls = "zij-edge zij-contains" if edge.dashed else "zij-edge"
        out.append(f'<g class="{cls}"><title>{escape(edge.title)}</title><path d="{path}"/>'
                   f'<path class="zij-arrow" d="{head}"/></g>')
    for node in nodes:
        x, y = layout["nodes"][node.id]
        width = node_width(node.label)
        current = ' class="zij-current" aria-current="page"' if node.current else ""
        out.append(f'<a href="{escape(node.href)}"{current}><title>{escape(node.title)}</title>'
                   f'<rect x="{x}" y="{y}" width="{width}" height="{NODE_HEIGHT}" rx="4"/>'
                   f'<text x="{_num(x + width / 2)}" y="{y + NODE_HEIGHT // 2}">{escape(node.label)}</text></a>')
    out.append("</svg>")
    return "".join(out)


def figure(svg: str, caption: str = "", note: str = "", kind: str = "graph") -> str:
    """An SVG in a scrollable figure, with an optional caption and note."""
    parts = [f'<figure class="zij-figure zij-figure-{escape(kind)}"><div class="zij-scroll">{svg}</div>']
    if caption or note:
        text = " ".join(escape(t) for t in (caption, note) if t)
        parts.append(f"<figcaption>{text}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


# -- timelines --------------------------------------------------------------------
BAR_AREA = 100  # px of the tallest column
STEP = 22  # px per column: room for a three-digit count
TOP, BOTTOM, SIDE = 16, 22, 8  # room for the counts above, the year labels below, and the sides
MIN_GAP = 3  # this many empty years in a row or more are drawn as one break in the axis


def columns(counts: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """(first year, last year, count) per column: a year, or a run of MIN_GAP or more empty years (a break)."""
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < len(counts):
        j = i
        while j < len(counts) and counts[j][1] == 0:
            j += 1
        if j - i >= MIN_GAP:
            out.append((counts[i][0], counts[j - 1][0], 0))
            i = j
        else:
            out.append((counts[i][0], counts[i][0], counts[i][1]))
            i += 1
    return out


def _labelled(cols: list[tuple[int, int, int]]) -> list[bool]:
    """Which columns get a year label: the first, the first after each break, and years ending in 0 or 5;
    never two in neighbouring columns."""
    out, last = [], -3
    for i, (first, last_year, _) in enumerate(cols):
        wanted = first == last_year and (i == 0 or cols[i - 1][0] != cols[i - 1][1] or first % 5 == 0)
        out.append(wanted and i - last >= 2)
        if out[-1]:
            last = i
    return out


def timeline(counts: list[tuple[int, int]], title: str) -> str:
    """A column chart of ``counts`` ((year, count) for consecutive years), as a figure."""
    if not counts:
        return ""
    cols = columns(counts)
    width, height = 2 * SIDE + STEP * len(cols), TOP + BAR_AREA + BOTTOM
    base = TOP + BAR_AREA
    most = max(c for _, c in counts)
    total = sum(c for _, c in counts)
    peak = min(y for y, c in counts if c == most)
    summary = f"{title}: {total} methods from {counts[0][0]} to {counts[-1][0]}; the most in {peak} ({most})."
    desc = ", ".join(f"{y}: {c}" for y, c in counts if c)
    out = [f'<svg class="zij-timeline" role="img" aria-label="{escape(summary)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title><desc>{escape(desc)}</desc>',
           f'<path class="zij-axis" d="M{SIDE} {base}H{width - SIDE}"/>']
    for i, ((first, last, count), label) in enumerate(zip(cols, _labelled(cols))):
        x = SIDE + i * STEP
        middle = _num(x + STEP / 2)
        if first != last:
            out.append(f'<g class="zij-gap"><title>{first}\u2013{last}: no methods</title>'
                       f'<rect x="{x}" y="{base - 6}" width="{STEP}" height="12"/></g>')
        elif count:
            bar = max(2, round(count * BAR_AREA / most))
            out.append(f'<g class="zij-year"><title>{first}: {count} method{"s" if count > 1 else ""}</title>'
                       f'<rect x="{x + 1}" y="{base - bar}" width="{STEP - 2}" height="{bar}"/>'
                       f'<text x="{middle}" y="{base - bar - 4}">{count}</text></g>')
        if label:
            out.append(f'<path class="zij-tick" d="M{middle} {base}v4"/>'
                       f'<text class="zij-year-label" x="{middle}" y="{base + 16}">{first}</text>')
    out.append("</svg>")
    note = f"{total} methods; a column per year, labelled with its count"
    note += "; a gap in the axis stands for years without methods." if len(cols) < len(counts) else "."
    return figure("".join(out), note=note, kind="timeline")


# -- benchmark charts (zij_canon.leaderboard) ----------------------------------------
CHART_SIZE = (560, 240)  # px
CHART_MARGIN = (56, 14, 10, 40)  # left, right, top, bottom: room for the tick labels and the axis titles
SPARK_SIZE, SPARK_PAD = (64, 20), 3  # a sensitivity sparkline, and the room kept for its best point's mark


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round values (1, 2 or 5 times a power of ten apart) from ``lo`` to ``hi``, about ``count`` of them."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [float(f"{k * step:.6g}") for k in range(first, int(math.floor(hi / step + 1e-9)) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten from ``lo`` to ``hi`` (and 2 and 5 times them when there are fewer than three)."""
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    for marks in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7)):
        ticks = [float(f"{m * 10 ** d:.6g}") for d in decades for m in marks if lo <= m * 10 ** d <= hi]
        if len(ticks) >= 3:
            return ticks
    return ticks


class Axes(NamedTuple):
    """Data ranges mapped onto a plot area (px); the y axis is logarithmic when ``log`` holds."""

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    log: bool
    box: tuple[float, float, float, float]  # left, top, right, bottom

    def x(self, v: float) -> float:
        (a, b), (left, _, right, _) = self.x_range, self.box
        return left + (v - a) / ((b - a) or 1) * (right - left)

    def y(self, v: float) -> float:
        """The pixel row of ``v``, kept inside the plot area (a value off the scale is drawn at its edge)."""
        (a, b), (_, top, _, bottom) = self.y_range, self.box
        if self.log:
            a, b, v = math.log10(a), math.log10(b), math.log10(v) if v > 0 else -math.inf
        t = (v - a) / ((b - a) or 1)
        return bottom - min(1.0, max(0.0, t)) * (bottom - top)

    def path(self, xs, ys) -> str:
        """A polyline through the points whose y is known; a missing value breaks it."""
        out, pen = [], "M"
        for x, y in zip(xs, ys):
            if y is None:
                pen = "M"
                continue
            out.append(f"{pen}{_num(self.x(x))} {_num(self.y(y))}")
            pen = "L"
        return "".join(out)


def chart_axes(x_max: float, values: list[float]) -> Axes:
    """Axes for curves over steps 0..``x_max`` whose y values are ``values``: logarithmic when they span more than
    a factor of 30 (and are all positive), padded by a twentieth of the range otherwise."""
    w, h = CHART_SIZE
    left, right, top, bottom = CHART_MARGIN
    box = (left, top, w - right, h - bottom)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if lo > 0 and hi / lo > 30:
        return Axes((0.0, x_max), (lo, hi), True, box)
    pad = (hi - lo) / 20 or abs(hi) / 20 or 1.0
    return Axes((0.0, x_max), (lo - pad, hi + pad), False, box)


def loss_chart(axes: Axes, series: list[str], summary: str, x_label: str, y_label: str) -> str:
    """Curves (path data from ``axes.path``) over labelled axes, with an empty path for a chosen class's curve.

    The i-th curve has the class ``zij-series-<i+1>`` (its colour and dash come from the style sheet)."""
    w, h = CHART_SIZE
    left, top, right, bottom = axes.box
    out = [f'<svg class="zij-chart" role="img" aria-label="{escape(summary)}" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}">']
    y_ticks = _log_ticks(*axes.y_range) if axes.log else _nice_ticks(*axes.y_range)
    for v in y_ticks:
        y = _num(axes.y(v))
        out.append(f'<path class="zij-grid" d="M{left} {y}H{right}"/><text class="zij-tick-y" x="{left - 4}" '
                   f'y="{y}">{v:g}</text>')
    for v in _nice_ticks(*axes.x_range, count=6):
        x = _num(axes.x(v))
        out.append(f'<path class="zij-axis" d="M{x} {bottom}v4"/><text x="{x}" y="{bottom + 16}">{v:g}</text>')
    out.append(f'<path class="zij-axis" d="M{left} {top}V{bottom}H{right}"/>')
    out.append(f'<text x="{_num((left + right) / 2)}" y="{h - 4}">{escape(x_label)}</text>')
    out.append(f'<text transform="rotate(-90)" x="{_num(-(top + bottom) / 2)}" y="12">{escape(y_label)}</text>')
    for i, d in enumerate(series):
        out.append(f'<path class="zij-series zij-series-{i + 1}" d="{d}"/>')
    out.append('<path class="zij-series zij-series-pick" d=""/></svg>')
    return "".join(out)


def sparkline(points: list[tuple[float, float | None]], best: float | None, label: str) -> str:
    """A small line of ``points`` ((rate, loss); a missing loss breaks it) on a logarithmic rate axis, the point at
    rate ``best`` marked; ``label`` says what it shows, with the values, for screen readers."""
    w, h = SPARK_SIZE
    known = [v for _, v in points if v is not None]
    rates = [math.log10(lr) for lr, _ in points]
    if not known:
        ys = (0.0, 1.0)
    else:
        ys = (min(known), max(known)) if min(known) < max(known) else (min(known) - 1, max(known) + 1)
    p = SPARK_PAD
    axes = Axes((min(rates), max(rates)) if len(rates) > 1 else (rates[0] - 1, rates[0] + 1), ys, False,
                (p, p, w - p, h - p))
    d = axes.path(rates, [v for _, v in points])
    mark = next((f'<circle cx="{_num(axes.x(r))}" cy="{_num(axes.y(v))}" r="2"/>'
                 for r, (lr, v) in zip(rates, points) if lr == best and v is not None), "")
    return (f'<svg class="zij-spark" role="img" aria-label="{escape(label)}" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}"><path d="{d}"/>{mark}</svg>')
