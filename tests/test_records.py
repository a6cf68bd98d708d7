"""One test per Canon record (test id = its path), plus whole-Canon checks."""

from __future__ import annotations

import shutil

import pytest

from _helpers import CANON, ROOT
from zij_canon import load
from zij_canon.math import render_canon_math, tex_check

RECORDS = sorted(CANON.glob("*/*.yaml"))


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


@pytest.fixture(scope="module")
def math(canon):
    return render_canon_math(canon)


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_record(canon, math, path):
    entry = canon.entries[path.stem]
    assert entry.path == path, f"id {path.stem} is defined by {entry.path}"
    record = entry.record
    symbols_text = " ".join(s.symbol for s in record.update_rule.symbols)
    assert symbols_text, "every rule defines its symbols"
    _, problems = math
    assert [p for p in problems if p.path == str(path)] == []


def test_canon_has_the_first_content(canon):
    first = {
        "sgd-momentum", "nesterov-momentum", "adagrad", "rmsprop", "adadelta", "adam", "adamax", "amsgrad",
        "adamw", "nadam", "radam", "lars", "lamb", "lookahead", "lion", "adafactor", "sophia", "shampoo",
        "soap", "muon", "psgd-kron", "prodigy", "d-adaptation", "schedule-free-adamw", "sam", "asam",
        "galore", "adam-mini", "adopt", "mars", "ademamix", "cautious", "came", "adan", "sgdr",
    }
    assert first <= set(canon.entries), sorted(first - set(canon.entries))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no TeX installed (CI installs texlive-latex-base)")
def test_every_rule_compiles_with_pdflatex(canon):
    assert tex_check(canon) == []


def test_rendered_math_keeps_mathml_without_a_second_latex_copy(math):
    """Each equation's LaTeX is on the page once (the copy button's ``data-latex``), not again in the MathML."""
    html, _ = math
    assert html and all("<math" in h and "<annotation" not in h for h in html.values())
