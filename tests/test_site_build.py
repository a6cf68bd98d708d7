"""Real ``mkdocs build --strict`` runs into temporary folders."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
import yaml

from _helpers import CANON, ROOT, build_site, small_canon
from zij_canon import load
from zij_canon.render import category_url, method_url, relative

EVIL = "<script>window.__zij_pwned = 1</script><img src=x onerror=\"window.__zij_pwned = 2\">"


class Links(HTMLParser):
    """Collects (tag, attribute, value) for every link-like attribute."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.found.append((tag, name, value))


def links_of(path: Path) -> list[tuple[str, str, str]]:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.found


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


def test_every_record_has_a_page(built_site, canon):
    for record in canon.records:
        page = built_site / method_url(record) / "index.html"
        assert page.is_file(), page
        html = page.read_text(encoding="utf-8")
        assert f'data-record="{record.id}"' in html
        assert 'class="katex-display"' in html, f"{record.id}: the rule is not rendered"
        assert "Copy LaTeX" in html and "Copy BibTeX" in html


def test_category_and_home_counts(built_site, canon):
    for cat in canon.categories:
        html = (built_site / cat / "index.html").read_text(encoding="utf-8")
        count = int(re.search(r'<span class="zij-n">(\d+)</span> methods', html).group(1))
        assert count == len(canon.in_category(cat))
        for record in canon.in_category(cat):
            assert f'href="{relative(category_url(cat), method_url(record))}"' in html
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert f'<span class="zij-total">{len(canon.entries)}</span> methods' in home
    for cat in canon.categories:
        assert f'data-category="{cat}">{len(canon.in_category(cat))}<' in home


def test_related_links_both_ways(built_site, canon):
    for record in canon.records:
        for rel in record.related:
            other = canon.entries[rel.id].record
            here = (built_site / method_url(record) / "index.html").read_text(encoding="utf-8")
            there = (built_site / method_url(other) / "index.html").read_text(encoding="utf-8")
            assert f"/{other.id}/" in here and f"/{record.id}/" in there


def test_internal_links_resolve(built_site):
    broken = []
    for page in built_site.rglob("*.html"):
        for tag, attr, value in links_of(page):
            url, _ = urldefrag(value)
            if not url or urlsplit(url).scheme in ("http", "https", "mailto", "data") or url.startswith("//"):
                continue
            # root-absolute links (mkdocs writes them on 404.html, served at any path) start at the site root
            target = (built_site / url.lstrip("/")).resolve() if url.startswith("/") else (page.parent / url).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_site)}: {tag}[{attr}]={value}")
    assert broken == []


def test_nothing_loads_from_outside(built_site):
    loads = []
    for page in built_site.rglob("*.html"):
        for tag, attr, value in links_of(page):
            external = value.startswith(("http://", "https://", "//"))
            if external and (tag in ("script", "img", "iframe", "source", "video", "audio") or (tag == "link")):
                loads.append(f"{page.relative_to(built_site)}: <{tag} {attr}={value}>")
    for css in built_site.rglob("*.css"):
        for url in re.findall(r"url\(([^)]+)\)", css.read_text(encoding="utf-8", errors="replace")):
            if url.strip("'\"").startswith(("http:", "https:", "//")):
                loads.append(f"{css.relative_to(built_site)}: url({url})")
    assert loads == []
    assert (built_site / "assets" / "katex" / "katex.min.css").is_file()
    assert list((built_site / "assets" / "katex" / "fonts").glob("*.woff2"))


def test_schema_published(built_site):
    schema = (built_site / "schema" / "record.schema.json").read_text()
    assert '"additionalProperties": false' in schema
    page = (built_site / "schema" / "index.html").read_text()
    assert "rule_source" in page and "kebab-case" in page


def test_names_index(built_site, canon):
    import json

    names = json.loads((built_site / "assets" / "zij" / "names.json").read_text())
    assert {n["id"] for n in names} == set(canon.entries)


def evil_record() -> dict:
    data = yaml.safe_load((CANON / "first-order" / "adam.yaml").read_text())
    data.update(id="evil", name="Evil Method", summary=f"Summary with {EVIL} inside.", notes=EVIL)
    data["paper"]["title"] = EVIL
    data["update_rule"]["notes"] = EVIL
    data["update_rule"]["symbols"][0]["meaning"] = EVIL
    data["hyperparameters"][0]["note"] = EVIL
    return data


def test_record_html_is_escaped(tmp_path):
    canon = small_canon(tmp_path / "canon")
    (canon / "first-order" / "evil.yaml").write_text(yaml.safe_dump(evil_record()))
    proc = build_site(tmp_path, canon, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "site" / "first-order" / "evil" / "index.html").read_text()
    assert "<script>window.__zij_pwned" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;window.__zij_pwned = 1&lt;/script&gt;" in html


def test_broken_record_leaves_previous_build(tmp_path):
    canon = small_canon(tmp_path / "canon")
    site = tmp_path / "site"
    assert build_site(tmp_path, canon, site).returncode == 0
    before = (site / "first-order" / "adam" / "index.html").read_text()
    broken = yaml.safe_load((CANON / "first-order" / "adam.yaml").read_text())
    broken.update(id="broken", venue="nowhere")
    (canon / "first-order" / "broken.yaml").write_text(yaml.safe_dump(broken))
    proc = build_site(tmp_path, canon, site)
    assert proc.returncode != 0
    assert "broken.yaml" in proc.stderr and "unknown venue" in proc.stderr
    assert (site / "first-order" / "adam" / "index.html").read_text() == before
    assert not (site / "first-order" / "broken").exists()
    assert not Path(str(site) + ".zij-partial").exists()


def test_strict_warning_leaves_previous_build(tmp_path):
    canon = small_canon(tmp_path / "canon")
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "site", docs)
    (docs / "package.md").unlink()  # links to the API reference, which small builds leave out
    site = tmp_path / "site"
    assert build_site(tmp_path, canon, site, docs_dir=docs).returncode == 0
    before = (site / "index.html").read_text()
    (docs / "contributing.md").write_text("# Contributing\n\nSee [the missing page](missing.md).\n")
    proc = build_site(tmp_path, canon, site, docs_dir=docs)
    assert proc.returncode != 0 and "missing.md" in proc.stderr
    assert (site / "index.html").read_text() == before
    assert "missing page" not in (site / "contributing" / "index.html").read_text()
    assert not Path(str(site) + ".zij-partial").exists()


def test_katex_error_fails_build_and_names_file(tmp_path):
    canon = small_canon(tmp_path / "canon")
    data = yaml.safe_load((CANON / "first-order" / "adam.yaml").read_text())
    data.update(id="bad-math")
    data["update_rule"]["latex"] = r"\frac{a}{b} \notamacro"
    (canon / "first-order" / "bad-math.yaml").write_text(yaml.safe_dump(data))
    proc = build_site(tmp_path, canon, tmp_path / "site")
    assert proc.returncode != 0
    assert "bad-math.yaml" in proc.stderr and "update_rule.latex" in proc.stderr


def test_templates_can_be_overridden(tmp_path):
    canon = small_canon(tmp_path / "canon")
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "site", docs)
    (docs / "package.md").unlink()  # links to the API reference, which small builds leave out
    (docs / "overrides" / "zij_canon" / "category.html").write_text(
        '<h1>{{ category.title }}</h1><p class="custom-marker">{{ records | length }} custom</p>'
    )
    proc = build_site(tmp_path, canon, tmp_path / "site", docs_dir=docs)
    assert proc.returncode == 0, proc.stderr
    assert '<p class="custom-marker">1 custom</p>' in (tmp_path / "site" / "first-order" / "index.html").read_text()
    assert not (tmp_path / "site" / "overrides").exists(), "overrides are not published as pages"
