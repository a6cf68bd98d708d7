"""The whole Canon: vocabularies plus records, with the checks that span files.

``load(directory)`` reads ``categories.yaml``, ``families.yaml``,
``venues.yaml`` and every ``<category>/<id>.yaml``, validates each against the
models, then checks what one record cannot check alone: ids match file names
and are unique, categories, families, venues and related ids exist, and years
agree with their venue. All problems are collected before anything is raised.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel

from .cache import RecordCache
from .loader import MAX_VOCABULARY_BYTES, CanonError, Problem, field_name, line_of, load_yaml, validate
from .models import Category, Family, Record, Venue, arxiv_year

VOCABULARIES = {"categories": Category, "families": Family, "venues": Venue}


UNREAD = object()


@dataclass
class Entry:
    """A validated record with where it came from.

    ``node`` is the file's YAML node tree, for line numbers; a record taken from
    the cache has none until a line is asked for (only to report a problem).
    """

    record: Record
    path: Path
    display: str
    node: object = field(default=UNREAD, repr=False)

    def line(self, *loc) -> int:
        if self.node is UNREAD:
            self.node = load_yaml(self.path, self.display)[1]
        return line_of(self.node, loc)


@dataclass
class Canon:
    """The validated Canon."""

    root: Path
    categories: dict[str, Category]
    families: dict[str, Family]
    venues: dict[str, Venue]
    entries: dict[str, Entry]

    @cached_property
    def records(self) -> list[Record]:
        """Records sorted by name (case-insensitive), then id."""
        return sorted((e.record for e in self.entries.values()), key=lambda r: (r.name.lower(), r.id))

    def in_category(self, category: str) -> list[Record]:
        """Records listing ``category`` (primary or not), sorted by name."""
        return [r for r in self.records if category in r.categories]

    def in_family(self, family: str) -> list[Record]:
        return [r for r in self.records if family in r.families]

    def ordered_categories(self) -> list[Category]:
        return sorted(self.categories.values(), key=lambda c: (c.order, c.id))

    @cached_property
    def _incoming(self) -> dict[str, list[tuple[str, str, Record]]]:
        """Reverse ``related`` links, computed once: target id -> [("in", relation, source record)]."""
        index: dict[str, list] = defaultdict(list)
        for entry in self.entries.values():
            for rel in entry.record.related:
                index[rel.id].append(("in", rel.relation, entry.record))
        return index

    def links(self, record_id: str) -> list[tuple[str, str, Record]]:
        """Both directions of ``related``: (direction, relation, other record).

        ``direction`` is ``out`` for links written in this record and ``in`` for
        links other records make to it.
        """
        out = [("out", r.relation, self.entries[r.id].record) for r in self.entries[record_id].record.related]
        incoming = self._incoming.get(record_id, [])
        return out + sorted(incoming, key=lambda t: t[2].name.lower())


def _load_vocabulary(root: Path, name: str, model: type[BaseModel], problems: list[Problem]) -> dict:
    path = root / f"{name}.yaml"
    display = str(path)
    if not path.exists():
        problems.append(Problem(display, 1, "<file>", f"missing vocabulary file (hint: create {name}.yaml)"))
        return {}
    data, node, found = load_yaml(path, display, MAX_VOCABULARY_BYTES)
    problems += found
    if found:
        return {}
    if not isinstance(data, list):
        problems.append(Problem(display, 1, "<file>", "expected a YAML list of entries (hint: one '- id: ...' item per entry)"))
        return {}
    out = {}
    for i, item in enumerate(data):
        value, found = validate(model, item, display, node.value[i] if node else None)
        problems += [Problem(p.path, p.line, f"[{i}].{p.field}", p.message) for p in found]
        if value is not None:
            if value.id in out:
                problems.append(Problem(display, line_of(node, (i,)), f"[{i}].id", f"duplicate id {value.id!r} (hint: ids are unique within the file)"))
            out[value.id] = value
    return out


def _check_entry(entry: Entry, canon: Canon) -> list[Problem]:
    rec, problems = entry.record, []

    def add(message: str, *loc):
        problems.append(Problem(entry.display, entry.line(*loc), field_name(loc), message))

    if rec.id != entry.path.stem:
        add(f"id {rec.id!r} differs from the file name {entry.path.stem!r} (hint: rename the file or the id)", "id")
    if rec.categories[0] != entry.path.parent.name:
        add(
            f"the primary (first) category is {rec.categories[0]!r} but the file lives in "
            f"{entry.path.parent.name!r} (hint: move the file or reorder categories)",
            "categories",
        )
    if len(set(rec.categories)) != len(rec.categories):
        add("a category is listed twice (hint: list each category once)", "categories")
    for i, cat in enumerate(rec.categories):
        if cat not in canon.categories:
            add(f"unknown category {cat!r} (hint: use one of {', '.join(sorted(canon.categories))})", "categories", i)
    for i, fam in enumerate(rec.families):
        if fam not in canon.families:
            add(f"unknown family {fam!r} (hint: add it to families.yaml or use a known one)", "families", i)
    venue = canon.venues.get(rec.venue)
    if venue is None:
        add(f"unknown venue {rec.venue!r} (hint: add it to venues.yaml or use a known id)", "venue")
    elif venue.since and rec.year < venue.since:
        add(f"year {rec.year} is before {venue.name} existed ({venue.since}) (hint: check the year and the venue)", "year")
    posted = arxiv_year(rec.paper.arxiv) if rec.paper.arxiv else None
    if posted and venue is not None and venue.kind == "preprint" and rec.year != posted:
        add(
            f"{rec.year} differs from the arXiv posting year ({posted}, from id {rec.paper.arxiv}) "
            "(hint: for a preprint, year is the year of first posting)",
            "year",
        )
    for i, rel in enumerate(rec.related):
        if rel.id == rec.id:
            add("a record cannot relate to itself (hint: remove this link)", "related", i, "id")
        elif rel.id not in canon.entries:
            add(f"related id {rel.id!r} is not a Canon record (hint: check the spelling or create the record)", "related", i, "id")
    return problems


# Relations whose links may not go round in a circle, each with how a link
# a -> b of it reads as a step "a below b" (generalizes is special-case-of reversed).
ACYCLIC = {
    "builds-on": {"builds-on": False},
    "combines": {"combines": False},
    "special-case-of/generalizes": {"special-case-of": False, "generalizes": True},
}


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's components of more than one node, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def _cycle_problems(canon: Canon) -> list[Problem]:
    """Links of an ordering relation that lead back to where they started (a builds on b builds on a)."""
    problems = []
    for group, relations in ACYCLIC.items():
        graph: dict[str, list[str]] = defaultdict(list)
        written: dict[tuple[str, str], tuple[str, int]] = {}  # step -> (record that wrote it, index in related)
        for rid, entry in canon.entries.items():
            for i, rel in enumerate(entry.record.related):
                if rel.relation in relations and rel.id in canon.entries and rel.id != rid:
                    step = (rel.id, rid) if relations[rel.relation] else (rid, rel.id)
                    graph[step[0]].append(step[1])
                    written.setdefault(step, (rid, i))
        for component in _strongly_connected(graph):
            members = set(component)
            cycle = " -> ".join([*component, component[0]]) if len(component) == 2 else ", ".join(component)
            for (a, b), (rid, i) in sorted(written.items()):
                if a in members and b in members:
                    entry = canon.entries[rid]
                    problems.append(Problem(
                        entry.display, entry.line("related", i, "id"), f"related[{i}].id",
                        f"{group} links form a cycle ({cycle}) "
                        f"(hint: {group} orders methods, so the links cannot lead back; remove or change one of them)",
                    ))
    return problems


def _load_record(path: Path, display: str, cache: RecordCache, problems: list[Problem]) -> Entry | None:
    """One record file as an Entry (from the cache when its bytes are unchanged), or None with problems."""
    try:
        raw = path.read_bytes()
    except OSError:  # a folder, a dangling link, no permission: load_yaml says which
        problems += load_yaml(path, display)[2]
        return None
    digest = cache.digest(raw)
    record = cache.get(digest)
    if record is not None:
        return Entry(record, path, display)
    data, node, found = load_yaml(path, display)
    if not found:
        record, found = validate(Record, data, display, node)
    problems += found
    if record is None:
        return None
    cache.put(digest, record)
    return Entry(record, path, display, node)


def load(root: str | Path, cache_dir: str | Path | None = None) -> Canon:
    """Load and validate the Canon at ``root``; raise CanonError with every problem.

    With a ``cache_dir``, records whose files are unchanged since an earlier
    load are taken from there instead of being parsed and validated again.
    """
    root = Path(root)
    cache = RecordCache(Path(cache_dir) if cache_dir else None)
    problems: list[Problem] = []
    vocab = {name: _load_vocabulary(root, name, model, problems) for name, model in VOCABULARIES.items()}
    canon = Canon(root, vocab["categories"], vocab["families"], vocab["venues"], {})
    seen: dict[str, list[Entry]] = defaultdict(list)
    for path in sorted(root.glob("*/*")):
        display = str(path)
        if path.suffix != ".yaml":
            if path.is_file():
                problems.append(Problem(display, 1, "<file>", "records are .yaml files (hint: rename or remove this file)"))
            continue
        if not path.resolve().is_relative_to(root.resolve()):
            problems.append(Problem(display, 1, "<file>", "links to a file outside the Canon (hint: keep the record itself in its category folder)"))
            continue
        if canon.categories and path.parent.name not in canon.categories:
            problems.append(Problem(display, 1, "<file>", f"folder {path.parent.name!r} is not a category id (hint: move the file into a category folder)"))
            continue
        entry = _load_record(path, display, cache, problems)
        if entry is not None:
            seen[entry.record.id].append(entry)
    for rid, entries in seen.items():
        if len(entries) > 1:
            others = ", ".join(e.display for e in entries)
            for e in entries:
                problems.append(Problem(e.display, e.line("id"), "id", f"duplicate id {rid!r} (in {others}) (hint: ids are unique across the Canon; rename one)"))
        canon.entries[rid] = entries[0]
    for entry in canon.entries.values():
        problems += _check_entry(entry, canon)
    problems += _cycle_problems(canon)
    cache.save()
    if problems:
        raise CanonError(problems)
    return canon
