"""Permanent equation anchors on method pages, checked on a strict build of the whole Canon: every displayed
equation carries an id made of its record's id and its position, a link to that id, and the LaTeX its copy
button copies; and the anchors are the same from build to build."""

from __future__ import annotations

import html
import re

import pytest

from _helpers import CANON
from zij_canon import load
from zij_canon.equations import ANCHOR, equation_anchor, page_equations
from zij_canon.render import method_url

EQUATION = re.compile(r'<div class="zij-eq" id="([^"]*)" data-latex="([^"]*)">\s*<a class="headerlink" href="([^"]*)"')
IDS = re.compile(r'\bid="([^"]+)"')


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


def test_anchor_scheme():
    assert equation_anchor("adamw", 1) == "eq-adamw"
    assert equation_anchor("adamw", 2) == "eq-adamw-2"
    assert ANCHOR.match(equation_anchor("4-bit-shampoo", 12))
    with pytest.raises(ValueError):
        equation_anchor("adamw", 0)


def test_every_displayed_equation_has_its_permanent_anchor(built_site, canon):
    for record in canon.records:
        text = (built_site / method_url(record) / "index.html").read_text(encoding="utf-8")
        found = EQUATION.findall(text)
        assert text.count('class="zij-eq"') == len(found) >= 1, record.id
        expected = [(e.anchor, e.latex) for e in page_equations(record)]
        assert [(anchor, html.unescape(latex)) for anchor, latex, _ in found] == expected, record.id
        assert found[0][0] == f"eq-{record.id}"  # the update rule's anchor is the record's id, nothing else
        assert found[0][1] and html.unescape(found[0][1]) == record.update_rule.latex
        for position, (anchor, _, href) in enumerate(found, start=1):
            assert anchor == equation_anchor(record.id, position) and ANCHOR.match(anchor), anchor
            assert href == f"#{anchor}"
        ids = IDS.findall(text)
        for anchor, _, _ in found:
            assert ids.count(anchor) == 1, f"{record.id}: id {anchor} is not unique on its page"


def test_anchors_do_not_depend_on_the_build(tmp_path, built_site, canon):
    """A second build from a cold cache gives the same anchors (the ids are made of record ids only)."""
    from _helpers import build_site, small_canon

    small = small_canon(tmp_path / "canon", ("first-order/adam.yaml", "first-order/adamw.yaml"))
    proc = build_site(tmp_path, small, tmp_path / "site", cache_dir=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    for rid in ("adam", "adamw"):
        record = canon.entries[rid].record
        page = method_url(record) + "index.html"
        fresh = EQUATION.findall((tmp_path / "site" / page).read_text(encoding="utf-8"))
        whole = EQUATION.findall((built_site / page).read_text(encoding="utf-8"))
        assert fresh == whole and fresh[0][0] == f"eq-{rid}"
