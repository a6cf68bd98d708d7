"""Permanent anchors for the displayed equations of a method page.

An equation's anchor is made of the record's id and the equation's place among
the page's displayed equations, nothing else: ``eq-<record id>`` for the first
(the update rule), then ``eq-<record id>-2``, ``eq-<record id>-3``, ... So a
link to an equation stays valid from build to build for as long as the record
keeps its id and its equations keep their order. Record ids are lowercase
slugs, so every anchor is a valid HTML id, and the ``eq-`` prefix keeps it
apart from the page's heading ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import Record

ANCHOR = re.compile(r"^eq-[a-z0-9]+(?:-[a-z0-9]+)*$")


def equation_anchor(record_id: str, position: int) -> str:
    """The anchor of the ``position``-th (from 1) displayed equation of ``record_id``'s page."""
    if position < 1:
        raise ValueError(f"equation positions count from 1, not {position}")
    return f"eq-{record_id}" if position == 1 else f"eq-{record_id}-{position}"


@dataclass(frozen=True)
class Equation:
    """One displayed equation of a method page: its anchor and its LaTeX source (what its copy button copies)."""

    anchor: str
    latex: str


def page_equations(record: Record) -> list[Equation]:
    """The displayed equations of ``record``'s page, in page order, with their anchors.

    A method page displays one equation today, the update rule (prose holds only
    inline math); an equation shown after it would take the next position.
    """
    sources = [record.update_rule.latex]
    return [Equation(equation_anchor(record.id, i), text) for i, text in enumerate(sources, start=1)]
