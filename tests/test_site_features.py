"""The site's second form, checked on a strict build of the whole Canon: downloads, family pages,
tables of contents, "Use it" snippets, edit links, citations, the nav, the sitemap and the 404 page.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from _helpers import CANON, ROOT, mkdocs_config
from zij_canon import load
from zij_canon.bibtex import cite_keys, reference
from zij_canon.downloads import DOWNLOADS, LIST_SEPARATOR
from zij_canon.griffe_examples import plural_examples
from zij_canon.models import Record
from zij_canon.render import category_url, family_url, method_url, relative

CONFIG = mkdocs_config()


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


def page_html(site, url: str) -> str:
    return (site / url / "index.html").read_text(encoding="utf-8")


def use_it_code(text: str) -> str:
    """The source text of a method page's "Use it" snippet, as its copy button copies it."""
    block = text[text.index('<div class="zij-use">'):]
    return html.unescape(re.sub(r"<[^>]+>", "", block[:block.index("</code>")]))


def bib_entries(text: str) -> dict[str, str]:
    """cite key -> whole entry, for a file of entries separated by blank lines."""
    entries = [e for e in text.strip().split("\n\n") if e]
    return {re.match(r"@\w+\{([^,]+),", e).group(1): e for e in entries}


# -- downloads ---------------------------------------------------------------------
def test_home_links_every_download(built_site):
    home = page_html(built_site, "")
    for path in DOWNLOADS:
        assert f'href="{path}"' in home, path
        assert (built_site / path).is_file(), path


def test_canon_json_holds_every_record(built_site, canon):
    data = json.loads((built_site / "canon.json").read_text(encoding="utf-8"))
    assert [item["id"] for item in data] == [r.id for r in canon.records]
    for item in data:
        assert Record.model_validate(item) == canon.entries[item["id"]].record


def test_canon_csv_rows_are_the_records(built_site, canon):
    rows = list(csv.DictReader(io.StringIO((built_site / "canon.csv").read_text(encoding="utf-8"))))
    assert [row["id"] for row in rows] == [r.id for r in canon.records]
    split = lambda text: text.split(LIST_SEPARATOR) if text else []  # noqa: E731
    for row in rows:
        r = canon.entries[row["id"]].record
        assert (row["name"], int(row["year"]), row["venue"], row["title"], row["url"]) == (
            r.name, r.year, r.venue, r.paper.title, r.paper.url)
        assert split(row["aliases"]) == r.aliases and split(row["categories"]) == r.categories
        assert split(row["families"]) == r.families and split(row["authors"]) == r.paper.authors
        assert split(row["code_urls"]) == [c.url for c in r.code]
        assert row["zij_class"] == (r.zij_class or "") and row["rule_source"] == r.update_rule.rule_source
        assert row["venue_kind"] == canon.venues[r.venue].kind
        assert (built_site / row["page"] / "index.html").is_file()


def test_canon_bib_has_every_paper_once_as_on_its_page(built_site, canon):
    entries = bib_entries((built_site / "canon.bib").read_text(encoding="utf-8"))
    assert len(entries) == len(canon.records), "cite keys are not unique"
    keys = cite_keys(canon.records)
    for r in canon.records:
        entry = entries[keys[r.id]]
        assert f"url = {{{r.paper.url}}}" in entry and f"year = {{{r.year}}}" in entry
        on_page = re.search(r'<div class="zij-bibtex[^"]*" data-bibtex>\s*<pre><code class="zij-copy-source">([^<]*)</code>',
                            page_html(built_site, method_url(r))).group(1)
        assert html.unescape(on_page) == entry, f"{r.id}: the page and canon.bib differ"


def test_schema_download_is_the_record_schema(built_site, canon):
    schema = json.loads((built_site / "schema" / "record.schema.json").read_text())
    assert schema == Record.model_json_schema()
    record_json = json.loads((built_site / "canon.json").read_text(encoding="utf-8"))
    for item in record_json:  # what the schema requires, every record has; it allows nothing else
        assert set(schema["required"]) <= set(item) <= set(schema["properties"])


# -- families ----------------------------------------------------------------------
def test_every_family_has_a_page_with_its_members(built_site, canon):
    index = page_html(built_site, "families/")
    for fam in canon.families.values():
        text = page_html(built_site, family_url(fam.id))
        assert f'<h1 id="{fam.id}">{fam.title}</h1>' in html.unescape(text)
        assert fam.description in html.unescape(text)
        members = canon.in_family(fam.id)
        assert re.search(r'<span class="zij-n">(\d+)</span> methods', text).group(1) == str(len(members))
        for r in members:
            assert f'href="{relative(family_url(fam.id), method_url(r))}"' in text
        assert f'href="{fam.id}/"' in index


def test_method_family_tags_link_to_family_pages(built_site, canon):
    for r in canon.records:
        text = page_html(built_site, method_url(r))
        tags = re.findall(r'class="zij-chip zij-family" href="([^"]+)"', text)
        assert tags == [relative(method_url(r), family_url(f)) for f in r.families]


def test_category_tables_have_a_family_column(built_site, canon):
    for cat in canon.categories:
        text = page_html(built_site, category_url(cat))
        if not canon.in_category(cat):
            continue
        assert "<th>Families</th>" in text
        for r in canon.in_category(cat):
            for f in r.families:
                assert f'href="{relative(category_url(cat), family_url(f))}"' in text


# -- method pages ----------------------------------------------------------------------
def toc_links(text: str) -> list[str]:
    """The anchors the secondary sidebar's table of contents links to, in order."""
    toc = text[text.index('data-md-component="toc"'):]
    return re.findall(r'<a href="#([^"]+)" class="md-nav__link">', toc[:toc.index('<div class="md-content"')])


def test_method_pages_have_a_table_of_contents(built_site, canon):
    for r in canon.records:
        text = page_html(built_site, method_url(r))
        toc = toc_links(text)
        expected = ["summary", "update-rule", "symbols", "code", "cite"]
        expected += ["hyperparameters"] * bool(r.hyperparameters) + ["use-it"] * bool(r.zij_class)
        assert set(expected) <= set(toc), f"{r.id}: {toc}"
        assert toc.index("summary") < toc.index("update-rule") < toc.index("symbols") < toc.index("cite")


def test_use_it_snippet_for_every_class(built_site, canon):
    for r in canon.records:
        text = page_html(built_site, method_url(r))
        if r.zij_class is None:
            assert 'id="use-it"' not in text
            continue
        code = use_it_code(text)
        assert code.startswith(("import zij\n", "import torch\nimport zij\n")) and f"optimizer = {r.zij_class}(" in code


def test_edit_links_open_the_record_file(built_site, canon):
    edit = CONFIG["repo_url"].rstrip("/") + "/" + CONFIG["edit_uri"].split("/site/")[0] + "/"
    for r in canon.records:
        href = re.search(r'<a href="([^"]+)" title="[^"]*" class="md-content__button[^"]*" rel="edit"', page_html(built_site, method_url(r))).group(1)
        assert href.startswith(edit)
        path = href[len(edit):]
        assert (ROOT / path).resolve() == canon.entries[r.id].path.resolve()
    family = re.search(r'href="([^"]+)"[^>]*rel="edit"', page_html(built_site, "families/")).group(1)
    assert family == edit + "canon/families.yaml"


def test_method_pages_cite_as_bibtex_and_plain_text(built_site, canon):
    for r in canon.records:
        text = page_html(built_site, method_url(r))
        ref = html.unescape(re.search(r'data-reference>\s*<p class="zij-copy-source">([^<]*)</p>', text).group(1))
        assert ref == reference(r, canon.venues[r.venue])
        assert r.paper.title.rstrip(".") in ref and str(r.year) in ref
        assert all(a in ref for a in r.paper.authors)


# -- look and host -------------------------------------------------------------------
def test_nav_lists_categories_in_their_order(built_site, canon):
    home = page_html(built_site, "")
    nav = home[home.index('class="md-nav md-nav--primary"'):]
    positions = [nav.index(f'href="{cat.id}/"') for cat in canon.ordered_categories()]
    assert positions == sorted(positions)
    assert "first-order/index.md" not in (ROOT / "mkdocs.yml").read_text(), "the categories are listed by hand again"


def test_both_palettes_and_a_toggle(built_site):
    home = page_html(built_site, "")
    schemes = re.findall(r'<input class="md-option"[^>]*data-md-color-scheme="(\w+)"', home)
    assert schemes == ["default", "slate"]
    assert 'title="Switch to the dark palette"' in home and 'title="Switch to the light palette"' in home


def test_sitemap_lists_pages_under_site_url(built_site, canon):
    sitemap = (built_site / "sitemap.xml").read_text()
    base = CONFIG["site_url"]
    assert urlsplit(base).scheme == "https"
    for r in canon.records[:50]:
        assert f"<loc>{base}{method_url(r)}</loc>" in sitemap


def test_404_page_helps(built_site):
    text = (built_site / "404.html").read_text()
    base = urlsplit(CONFIG["site_url"]).path
    assert 'id="not-found"' in text and "search box" in text
    assert f'href="{base}families/"' in text and f'href="{base}"' in text


# -- API examples ------------------------------------------------------------------------
def test_example_headers_become_examples():
    text = "Summary.\n\nExample:\n    >>> x = 1\n\nNot an Example: header.\n    Example:\n"
    assert plural_examples(text) == "Summary.\n\nExamples:\n    >>> x = 1\n\nNot an Example: header.\n    Example:\n"


def test_api_examples_are_code_not_quotes(built_site):
    pages = sorted((built_site / "api").glob("*/index.html"))
    assert pages
    for path in pages:
        text = path.read_text(encoding="utf-8")
        assert "<blockquote>" not in text, f"{path}: an example renders as quotes"
        if "Examples:" in text:
            assert '<span class="gp">&gt;&gt;&gt; </span>' in text


@pytest.mark.parametrize("fmt", ["json", "csv", "bib"])
def test_export_writes_the_download(built_site, capsys, fmt):
    from zij_canon.cli import main

    assert main(["export", "--format", fmt, "--canon", str(CANON)]) == 0
    assert capsys.readouterr().out == (built_site / f"canon.{fmt}").read_text(encoding="utf-8")
