"""Lineage of the Canon's methods, read from the records' ``related`` links.

Which links are ancestry
------------------------
A record's ``related`` entry ``a --relation--> b`` (written in ``a``'s file)
becomes one lineage edge *parent -> child*:

* ``builds-on``, ``variant-of`` and ``combines`` say that ``a`` was made from
  ``b`` (extends it, changes it, or merges it with others): ``b`` is a parent of ``a``.
* ``generalizes`` and ``special-case-of`` say that one method contains the
  other, not which came from which (the models treat them as converses:
  ``a generalizes b`` is ``b special-case-of a``). In the lineage the earlier
  method (by ``year``) is the parent; in a tie, the record the link is written
  in is the child, as for the other relations.

Two records linked more than once make one edge carrying every link. An
*ancestor* is a parent, or a parent's ancestor; a *descendant* the converse.
``variant-of`` links are not kept acyclic by the Canon's checks, so the walks
below keep a visited set and never loop.

What is drawn
-------------
* A method page: the method, its ancestors up to :data:`DEPTH` steps, and up to
  :data:`MAX_DESCENDANTS` descendants up to :data:`DEPTH` steps (children
  first, each step ranked by how many children they have, then year, then
  name), with every lineage edge among them. A method with no lineage edge has
  no graph. Descendants left out are counted in the caption.
* A family page: the family's members that have a lineage edge to another
  member, with those edges; the caption counts the members not drawn.
* A category page: a timeline, the number of its methods per year.

Graphs are laid out by ELK (:mod:`zij_canon.layout`, cached) when the plugin
starts a build, and drawn as SVG (:mod:`zij_canon.svg`) into the finished page
(:meth:`Lineage.fill`), after the search index has read it: node labels are
not page text to search.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from markupsafe import Markup

from . import svg
from .canon import Canon
from .layout import layout_graphs
from .models import Record
from .render import method_url, relative

CONTAINMENT = frozenset({"generalizes", "special-case-of"})
DEPTH = 2
MAX_DESCENDANTS = 10
PLACEHOLDER = re.compile(r"<!--zij-graph:(method|family|timeline):([a-z0-9-]+)-->")


def parent_and_child(record: Record, relation: str, other: Record) -> tuple[str, str]:
    """The lineage edge (parent id, child id) of the link ``record --relation--> other``."""
    if relation in CONTAINMENT and other.year > record.year:
        return record.id, other.id
    return other.id, record.id


def phrase(writer: Record, relation: str, target: Record) -> str:
    """A link as words: "AdamW builds on Adam"."""
    return f"{writer.name} {relation.replace('-', ' ')} {target.name}"


class Graph:
    """The lineage edges of the whole Canon, with the walks the pages need."""

    def __init__(self, canon: Canon):
        self.records = {rid: entry.record for rid, entry in canon.entries.items()}
        self.parents: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        self.edges: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)  # -> [(relation, words)]
        for rid in sorted(self.records):
            record = self.records[rid]
            for rel in record.related:
                other = self.records[rel.id]
                parent, child = parent_and_child(record, rel.relation, other)
                self.parents[child].add(parent)
                self.children[parent].add(child)
                self.edges[parent, child].append((rel.relation, phrase(record, rel.relation, other)))

    def rank(self, rid: str) -> tuple:
        """Order of descendants on a method page: most children first, then the earlier, then by name."""
        record = self.records[rid]
        return -len(self.children[rid]), record.year, record.name.lower(), rid

    def walk(self, start: str, step: dict[str, set[str]], depth: int = DEPTH) -> list[list[str]]:
        """The methods 1..``depth`` steps from ``start`` along ``step``, by distance, each step ranked."""
        seen, frontier, out = {start}, [start], []
        for _ in range(depth):
            found = sorted({n for f in frontier for n in step[f]} - seen, key=self.rank)
            if not found:
                break
            out.append(found)
            seen.update(found)
            frontier = found
        return out

    def ancestors(self, rid: str, depth: int = DEPTH) -> list[str]:
        return [n for level in self.walk(rid, self.parents, depth) for n in level]

    def descendants(self, rid: str, depth: int = DEPTH) -> list[str]:
        return [n for level in self.walk(rid, self.children, depth) for n in level]

    def induced(self, nodes: set[str]) -> list[tuple[str, str]]:
        """The lineage edges between ``nodes``, sorted."""
        return sorted((p, c) for p in nodes for c in self.children[p] if c in nodes)

    def method_view(self, rid: str) -> tuple[list[str], list[tuple[str, str]], int] | None:
        """(nodes, edges, descendants left out) of a method page's graph, or None without lineage."""
        if not self.parents[rid] and not self.children[rid]:
            return None
        descendants = self.descendants(rid)
        shown = [rid, *self.ancestors(rid), *descendants[:MAX_DESCENDANTS]]
        left_out = max(0, len(descendants) - MAX_DESCENDANTS)
        return _by_year(self.records, shown), self.induced(set(shown)), left_out

    def family_view(self, members: list[Record]) -> tuple[list[str], list[tuple[str, str]], int] | None:
        """(nodes, edges, members not drawn) of a family's graph, or None when no two members are linked."""
        ids = {r.id for r in members}
        edges = self.induced(ids)
        linked = {n for edge in edges for n in edge}
        if not edges:
            return None
        return _by_year(self.records, linked), edges, len(ids - linked)


def _by_year(records: dict[str, Record], ids) -> list[str]:
    """Node order given to ELK (its model order): by year, then name; makes layouts stable."""
    return sorted(set(ids), key=lambda i: (records[i].year, records[i].name.lower(), i))


def elk_graph(records: dict[str, Record], nodes: list[str], edges: list[tuple[str, str]]) -> dict:
    """The ELK input of a graph: node sizes from their labels' estimated widths."""
    return {
        "children": [
            {"id": n, "width": svg.node_width(svg.label(records[n].name)), "height": svg.NODE_HEIGHT} for n in nodes
        ],
        "edges": [{"id": f"{p}>{c}", "sources": [p], "targets": [c]} for p, c in edges],
    }


class Lineage:
    """Every lineage graph and timeline of the site, laid out once per build.

    Templates get a placeholder (:meth:`method`, :meth:`family`, :meth:`timeline`);
    :meth:`fill` draws the SVG into the finished page, with links relative to it.
    """

    def __init__(self, canon: Canon, elk_dir: Path, cache_dir: Path | None = None):
        self.canon = canon
        self.graph = Graph(canon)
        self.views: dict[str, tuple] = {}
        for rid in sorted(canon.entries):
            view = self.graph.method_view(rid)
            if view is not None:
                self.views[f"method:{rid}"] = view
        for fid in sorted(canon.families):
            view = self.graph.family_view(canon.in_family(fid))
            if view is not None:
                self.views[f"family:{fid}"] = view
        graphs = {name: elk_graph(self.graph.records, nodes, edges) for name, (nodes, edges, _) in self.views.items()}
        self.layouts = layout_graphs(graphs, elk_dir, cache_dir)

    # -- placeholders, printed by the templates ---------------------------------
    def method(self, record: Record) -> Markup:
        """The placeholder of a method page's graph, or an empty string when it has none."""
        return Markup(f"<!--zij-graph:method:{record.id}-->") if f"method:{record.id}" in self.views else Markup("")

    def family(self, family_id: str) -> Markup:
        return Markup(f"<!--zij-graph:family:{family_id}-->") if f"family:{family_id}" in self.views else Markup("")

    def timeline(self, category_id: str) -> Markup:
        return Markup(f"<!--zij-graph:timeline:{category_id}-->") if self.canon.in_category(category_id) else Markup("")

    # -- drawing -------------------------------------------------------------------
    def fill(self, html: str, page_url: str) -> str:
        """Replace the graph placeholders of a finished page with their SVG."""
        if "<!--zij-graph:" not in html:
            return html
        return PLACEHOLDER.sub(lambda m: self.draw(m.group(1), m.group(2), page_url), html)

    def draw(self, kind: str, key: str, page_url: str) -> str:
        """The HTML of one graph or timeline, its links relative to ``page_url``."""
        if kind == "timeline":
            category = self.canon.categories[key]
            years = [r.year for r in self.canon.in_category(key)]
            return svg.timeline(year_counts(years), f"{category.title} methods by year")
        records = self.graph.records
        nodes, edges, left_out = self.views[f"{kind}:{key}"]
        drawn_nodes = [
            svg.Node(n, svg.label(records[n].name), f"{records[n].name} ({records[n].year})",
                     relative(page_url, method_url(records[n])), kind == "method" and n == key)
            for n in nodes
        ]
        drawn_edges = [
            svg.Edge(f"{p}>{c}", "; ".join(words for _, words in self.graph.edges[p, c]),
                     all(relation in CONTAINMENT for relation, _ in self.graph.edges[p, c]))
            for p, c in edges
        ]
        if kind == "method":
            name = records[key].name
            title = f"Lineage of {name}: {len(nodes) - 1} related methods"
            note = (f"{left_out} more methods derived from {name} within {DEPTH} steps are not drawn."
                    if left_out else "")
        else:
            title = f"Lineage within the {self.canon.families[key].title} family: {len(nodes)} methods"
            note = f"{left_out} members with no lineage link to another member are not drawn." if left_out else ""
        figure = svg.graph(self.layouts[f"{kind}:{key}"], drawn_nodes, drawn_edges, title)
        return svg.figure(figure, caption=svg.LEGEND, note=note, kind=kind)


def year_counts(years: list[int]) -> list[tuple[int, int]]:
    """(year, number of methods) for every year from the first to the last, empty years included."""
    if not years:
        return []
    counts = defaultdict(int)
    for year in years:
        counts[year] += 1
    return [(y, counts[y]) for y in range(min(years), max(years) + 1)]

