"""The explorer's build-time side: its facet data is the records (each once, with the right facet values),
stays small, and the page lists every record without scripts; category pages carry the same filter."""

from __future__ import annotations

import gzip
import html
import json
import re
import time

import pytest
import yaml

from _helpers import CANON, small_canon
from zij_canon import load
from zij_canon.explorer import (CATEGORY_COLUMNS, CATEGORY_FACETS, EXPLORER_COLUMNS, EXPLORER_DATA, EXPLORER_FACETS,
                                explorer_json, explorer_page)
from zij_canon.render import Renderer, category_url, method_url, relative

DATA_BUDGET = 150 * 1024  # bytes, gzip-compressed: the explorer's data (its JSON and its page)


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


@pytest.fixture(scope="module")
def data(built_site):
    return json.loads((built_site / EXPLORER_DATA).read_text(encoding="utf-8"))


def decode(data: dict) -> dict[str, dict]:
    """Record id -> its facts, read back from the compact data (indices resolved)."""
    vocab, fields = data["vocab"], data["fields"]
    out = {}
    for row in data["records"]:
        r = dict(zip(fields, row))
        venue_id, _, kind = vocab["venue"][r["venue"]]
        assert r["id"] not in out, f"{r['id']} appears twice"
        out[r["id"]] = {
            "name": r["name"], "aliases": r["aliases"], "year": r["year"],
            "categories": [vocab["category"][i][0] for i in r["categories"]],
            "families": [vocab["family"][i][0] for i in r["families"]],
            "venue": venue_id, "kind": vocab["kind"][kind],
            "official_code": r["code"] == 2, "any_code": r["code"] > 0,
            "licenses": sorted(vocab["license"][i] for i in r["licenses"]),
            "implemented": bool(r["zij_class"]),
            "rule_source": vocab["source"][r["rule_source"]],
        }
    return out


def test_explorer_data_is_every_record_once_with_its_facets(data, canon):
    got = decode(data)
    assert list(got) == [r.id for r in canon.records]  # the explorer table's order: by name
    for r in canon.records:
        assert got[r.id] == {
            "name": r.name, "aliases": r.aliases, "year": r.year,
            "categories": r.categories, "families": r.families,
            "venue": r.venue, "kind": canon.venues[r.venue].kind,
            "official_code": any(c.kind == "official" for c in r.code), "any_code": bool(r.code),
            "licenses": sorted({c.license for c in r.code}),
            "implemented": r.zij_class is not None,
            "rule_source": r.update_rule.rule_source,
        }, r.id
    vocab = data["vocab"]
    assert [c[0] for c in vocab["category"]] == [c.id for c in canon.ordered_categories()]
    assert sorted(f[0] for f in vocab["family"]) == sorted(canon.families)
    for name in ("category", "family", "venue"):  # no fact is written twice
        ids = [v[0] for v in vocab[name]]
        assert len(ids) == len(set(ids)), name


def test_explorer_data_is_small_and_cheap(built_site, canon, record_property, capsys):
    raw = (built_site / EXPLORER_DATA).read_bytes()
    page = (built_site / "explorer" / "index.html").read_bytes()
    data_gz, page_gz = len(gzip.compress(raw, 9)), len(gzip.compress(page, 9))
    start = time.perf_counter()
    text = explorer_json(canon)
    seconds = time.perf_counter() - start
    assert text.encode() == raw  # deterministic: the build wrote exactly this
    record_property("explorer_data_gzip_bytes", data_gz)
    record_property("explorer_page_gzip_bytes", page_gz)
    with capsys.disabled():
        print(f"\nexplorer data: {len(raw)} bytes, {data_gz} gzip-compressed; explorer page {page_gz} gzip-compressed;"
              f" {len(canon.records)} records; data generated in {seconds * 1000:.1f} ms")
    assert data_gz + page_gz <= DATA_BUDGET


def test_explorer_page_lists_every_record_without_scripts(built_site, canon):
    text = (built_site / "explorer" / "index.html").read_text(encoding="utf-8")
    table = text[text.index('<table class="zij-records zij-explorer-table">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr data-id="([^"]+)"><td><a href="([^"]+)">([^<]*)</a></td><td>(\d+)</td>', table)
    assert [r[0] for r in rows] == [r.id for r in canon.records]
    for (rid, href, name, year), r in zip(rows, canon.records):
        assert href == relative("explorer/", method_url(r))
        assert html.unescape(name) == r.name and int(year) == r.year
    assert f'data-zij-explorer="../{EXPLORER_DATA}"' in text
    assert f'data-facets="{",".join(EXPLORER_FACETS)}"' in text
    assert table.count("<th>") == len(EXPLORER_COLUMNS)


def test_explorer_is_in_the_nav_and_linked_from_home(built_site):
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert '<a href="explorer/">explorer</a>' in home
    nav = home[home.index('class="md-nav md-nav--primary"'):]
    assert re.search(r'<a href="explorer/" class="md-nav__link">\s*<span class="md-ellipsis">\s*Explorer', nav)


def test_explorer_page_is_not_indexed_for_search_twice(built_site):
    index = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert not [d for d in index["docs"] if d["location"].startswith("explorer/")]


def test_category_pages_carry_the_filter(built_site, canon):
    for cat in canon.categories:
        records = canon.in_category(cat)
        if not records:
            continue
        text = (built_site / category_url(cat) / "index.html").read_text(encoding="utf-8")
        attrs = re.search(r'<div class="zij-explorer" data-zij-explorer="([^"]+)" data-facets="([^"]+)" data-columns="([^"]+)">', text)
        assert attrs, cat
        assert attrs.group(1) == relative(category_url(cat), EXPLORER_DATA)
        assert attrs.group(2).split(",") == list(CATEGORY_FACETS) and "category" not in CATEGORY_FACETS
        table = text[attrs.end():text.index("</table>", attrs.end())]
        assert table.count("<th>") == len(attrs.group(3).split(",")) == len(CATEGORY_COLUMNS)
        assert sorted(re.findall(r'<tr data-id="([^"]+)">', table)) == sorted(r.id for r in records)


def test_explorer_page_escapes_what_it_shows(tmp_path):
    canon_dir = small_canon(tmp_path / "canon", ("first-order/adam.yaml", "first-order/adamw.yaml"))
    families = yaml.safe_load((canon_dir / "families.yaml").read_text())
    adam = yaml.safe_load((canon_dir / "first-order" / "adam.yaml").read_text())
    for fam in families:
        if fam["id"] == adam["families"][0]:
            fam["title"] = "<b onmouseover=alert(1)>Adam & co</b>"
    (canon_dir / "families.yaml").write_text(yaml.safe_dump(families))
    small = load(canon_dir)
    body = explorer_page(Renderer(small, {}))
    assert "<b onmouseover" not in body
    assert "&lt;b onmouseover=alert(1)&gt;Adam &amp; co&lt;/b&gt;" in body
    data = json.loads(explorer_json(small))
    assert ["<b onmouseover=alert(1)>Adam & co</b>"] == [f[1] for f in data["vocab"]["family"] if f[0] == adam["families"][0]]
