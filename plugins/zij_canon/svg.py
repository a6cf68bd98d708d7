"""SVG drawing of laid-out lineage graphs and of year timelines.

Coordinates come from ELK (:mod:`zij_canon.layout`) for graphs and from a
plain computation for timelines (a column per year). Nothing here picks a
colour: every shape has a class, styled in ``assets/lineage.css`` with the
theme's variables, so the light and dark palettes both apply. All text is
escaped; output depends only on the arguments (integer coordinates, fixed order).

Accessibility: a graph is ``role="group"`` with an ``aria-label`` (``role="img"``
would hide its links); each node is a link named by its ``<title>`` and
reachable with the keyboard. A timeline is ``role="img"`` with an
``aria-label`` summary and the counts of every year in its ``<desc>``.
"""

from __future__ import annotations

import functools
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
