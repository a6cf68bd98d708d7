"""The registry, the Canon and the built site agree: links both ways, no orphans."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urldefrag

import pytest

import zij
from _helpers import CANON
from zij_canon import load
from zij_canon.render import method_url

ENTRIES = zij.entries()


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


def resolve(page: Path, href: str) -> tuple[Path, str]:
    url, fragment = urldefrag(href)
    target = (page.parent / url).resolve()
    return (target / "index.html" if target.is_dir() else target), fragment


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_entry_has_a_canon_record(canon, entry):
    assert entry.canon_id in canon.entries, f"{entry.name}: no Canon record {entry.canon_id!r}"
    assert canon.entries[entry.canon_id].record.zij_class == f"zij.{entry.name}"


def test_every_zij_class_is_registered(canon):
    registered = {f"zij.{e.name}" for e in ENTRIES}
    stray = [r.id for r in canon.records if r.zij_class and r.zij_class not in registered]
    assert stray == []


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_links_both_ways(built_site, canon, entry):
    record = canon.entries[entry.canon_id].record
    method_page = built_site / method_url(record) / "index.html"
    html = method_page.read_text(encoding="utf-8")
    impl = re.search(r'<p class="zij-impl">In zij: <a href="([^"]+)">', html)
    assert impl, f"{method_page}: no link to the API entry"
    api_page, anchor = resolve(method_page, impl.group(1))
    api_html = api_page.read_text(encoding="utf-8")
    assert f'id="{anchor}"' in api_html, f"{api_page} has no entry #{anchor}"
    # and back: the API entry links to the method page
    if entry.builtin:
        block = re.search(rf'<tr id="{re.escape(anchor)}">(.*?)</tr>', api_html, re.S).group(1)
    else:
        block = re.search(rf'<p class="zij-canon-link" data-class="zij.{entry.name}">(.*?)</p>', api_html, re.S).group(1)
    backs = [resolve(api_page, h)[0] for h in re.findall(r'href="([^"]+)"', block)]
    assert method_page.resolve() in backs, f"{api_page}: no link back to {method_page}"


def test_api_docstrings_render_math(built_site):
    pages = list((built_site / "api").glob("*/index.html"))
    assert pages, "no API family pages were built"
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert 'class="arithmatex"' in html, f"{page}: the update rule is missing from the docstrings"
