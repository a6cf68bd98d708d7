"""Coverage of the Canon: minimum counts per category, no silent duplicates."""

from __future__ import annotations

from collections import defaultdict

import pytest

from _helpers import CANON
from zij_canon import load

MINIMUM = {"first-order": 220, "learning-rate-free": 24, "sharpness-aware": 28, "schedulers": 28,
           "memory-efficient": 90, "second-order": 66, "zeroth-order": 37, "distributed": 75,
           "privacy-preserving": 40, "fractional-order": 93, "quantum": 31}
QUANTUM_KINDS = {"quantum-hardware", "quantum-simulated", "quantum-inspired"}
FRACTIONAL_OPERATORS = ("caputo", "riemann", "letnikov", "conformable", "hausdorff", "tempered",
                        "hilfer", "riesz", "atangana", "caputo-fabrizio", "fractional derivative", "fractional integral")


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


@pytest.mark.parametrize("category,minimum", MINIMUM.items())
def test_minimum_count(canon, category, minimum):
    assert len(canon.in_category(category)) >= minimum


def test_shared_paper_urls_are_linked(canon):
    """Records citing the same paper must be connected through `related` (e.g. variants
    proposed together, or library classes that all build on the library's base class)."""
    neighbours = defaultdict(set)
    for record in canon.records:
        for rel in record.related:
            neighbours[record.id].add(rel.id)
            neighbours[rel.id].add(record.id)

    def component(start):
        seen, todo = {start}, [start]
        while todo:
            for other in neighbours[todo.pop()] - seen:
                seen.add(other)
                todo.append(other)
        return seen

    by_url = defaultdict(list)
    for record in canon.records:
        by_url[record.paper.url.rstrip("/")].append(record.id)
    unlinked = [
        f"{ids} share {url} but are not connected by related links"
        for url, ids in by_url.items()
        if len(ids) > 1 and not set(ids) <= component(ids[0])
    ]
    assert unlinked == []


def test_names_are_unique_or_explained(canon):
    """Records with the same display name must each carry a note telling them apart."""
    by_name = defaultdict(list)
    for record in canon.records:
        by_name[record.name.lower()].append(record)
    clashes = [f"{r.id}" for recs in by_name.values() if len(recs) > 1 for r in recs if not r.notes]
    assert clashes == []


def test_quantum_records_say_how_they_run(canon):
    """Every quantum record carries exactly one of: runs on quantum hardware, simulates it, only inspired by it."""
    wrong = [f"{r.id}: {sorted(QUANTUM_KINDS & set(r.families))}" for r in canon.in_category("quantum")
             if len(QUANTUM_KINDS & set(r.families)) != 1]
    assert wrong == []


def _rule_text(record) -> str:
    rule = record.update_rule
    parts = [record.summary, rule.latex, rule.notes or "", record.notes or ""] + [s.symbol + " " + s.meaning for s in rule.symbols]
    return " ".join(parts).lower()


def test_fractional_rules_name_their_operator_and_order(canon):
    """A fractional-order rule names the fractional operator it uses and its order."""
    missing = [r.id for r in canon.in_category("fractional-order")
               if not any(op in _rule_text(r) for op in FRACTIONAL_OPERATORS) or "order" not in _rule_text(r)]
    assert missing == []
