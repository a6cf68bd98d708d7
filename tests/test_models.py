"""Unit tests of the record models and their single-record checks."""

from __future__ import annotations

import copy

import pytest
import yaml
from pydantic import ValidationError

from _helpers import FIXTURES
from zij_canon import latex
from zij_canon.bibtex import bibtex, cite_key
from zij_canon.models import Record, Venue, arxiv_year
from zij_canon.spdx import check_license

BASE = yaml.safe_load((FIXTURES / "valid-base.yaml").read_text())


def make(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return Record.model_validate(data)


def test_base_fixture_is_valid():
    record = make()
    assert record.id == "fixture-method"
    assert record.update_rule.rule_source == "sketch"


@pytest.mark.parametrize("arxiv,year", [("1412.6980", 2014), ("2405.15682", 2024), ("math/0511040", 2005), ("cs.LG/9912001", 1999)])
def test_arxiv_year(arxiv, year):
    assert arxiv_year(arxiv) == year


@pytest.mark.parametrize("bad", ["1412.698", "arXiv:1412.6980", "1412.6980v2", "1413.6980", "14126980"])
def test_arxiv_rejects(bad):
    assert arxiv_year(bad) is None


@pytest.mark.parametrize("expr", ["MIT", "Apache-2.0", "BSD-3-Clause", "MIT OR Apache-2.0", "NOASSERTION"])
def test_spdx_accepts(expr):
    assert check_license(expr) is None


@pytest.mark.parametrize("expr,needle", [("MIT-ish", "not an SPDX"), ("GPL-3.0", "GPL-3.0-only"), ("mit", "'MIT'")])
def test_spdx_rejects(expr, needle):
    assert needle in check_license(expr)


def test_extra_key_forbidden():
    with pytest.raises(ValidationError, match="Extra inputs"):
        make(colour="blue")


def test_rule_source_values():
    for source in ("paper", "implementation", "sketch"):
        rule = {**BASE["update_rule"], "rule_source": source}
        assert make(update_rule=rule).update_rule.rule_source == source


@pytest.mark.parametrize(
    "text,needle",
    [
        (r"\frac{a}{b", "unbalanced"),
        (r"a}", "closes nothing"),
        (r"\begin{aligned} x \end{array}", "does not match"),
        (r"\begin{aligned} x", "never ended"),
        (r"\left( x", r"\right"),
        (r"\argmin_x f", r"\operatorname*{arg\,min}"),
        (r"\norm{x}", r"\lVert"),
        ("\u03b8", "non-ASCII"),
        (r"\[ x \]", "delimiters"),
    ],
)
def test_latex_problems(text, needle):
    assert any(needle in p for p in latex.check(text)), latex.check(text)


def test_latex_accepts_escaped_braces_and_ams():
    assert latex.check(r"\left\{ x \right\} + \operatorname*{arg\,min}_x \lVert x \rVert_2 + \mathbb{E}[g]") == []


def test_split_inline():
    assert latex.split_inline("a $x$ b") == [(False, "a "), (True, "x"), (False, " b")]
    assert latex.check_inline("odd $ sign")


def test_name_rejects_html():
    with pytest.raises(ValidationError, match="may not contain"):
        make(name="<b>Bold</b>")


def test_field_docstrings_feed_schema():
    schema = Record.model_json_schema()
    assert "kebab-case" in schema["properties"]["id"]["description"]
    assert "additionalProperties" in schema and schema["additionalProperties"] is False


def test_bibtex_entry():
    record = make(paper={**BASE["paper"], "authors": ["Ilya Loshchilov", "Frank Hutter"], "title": "Fixing Weight Decay & More"})
    venue = Venue(id="iclr", name="ICLR", full_name="International Conference on Learning Representations", kind="conference")
    entry = bibtex(record, venue)
    assert entry.startswith("@inproceedings{loshchilov2019fixture,")
    assert r"{Fixing Weight Decay \& More}" in entry
    assert "author = {Ilya Loshchilov and Frank Hutter}" in entry
    assert "eprint = {1711.05101}" in entry
    assert cite_key(make()) == "2019fixture"


def test_bibtex_writes_greek_as_math():
    record = make(paper={**BASE["paper"], "title": "ADOPT: converges with any \u03b2\u2082 and \u2113\u221e norms"})
    venue = Venue(id="arxiv", name="arXiv", full_name="arXiv preprint", kind="preprint")
    entry = bibtex(record, venue)
    assert r"$\beta$" in entry and r"$\ell$$\infty$" in entry
    assert entry.startswith("@misc{")
