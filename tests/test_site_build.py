"""Real ``mkdocs build --strict`` runs into temporary folders."""

from __future__ import annotations

import functools
import gzip
import os
import re
import shutil
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest
import yaml

from _helpers import CANON, MKDOCS, ROOT, build_site, mkdocs_config, small_canon
from zij_canon import load
from zij_canon.bench import pad_canon
from zij_canon.render import category_url, method_url, relative

EVIL = "<script>window.__zij_pwned = 1</script><img src=x onerror=\"window.__zij_pwned = 2\">"


class Links(HTMLParser):
    """Collects (tag, attribute, value) for every link-like attribute, and every id a link can point to."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag == "link" and ("rel", "canonical") in attrs:
            return  # names the page's published address; nothing is loaded from it
        for name, value in attrs:
            if value is None:
                continue
            if name in ("href", "src"):
                self.found.append((tag, name, value))
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)


def parse_page(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


@functools.lru_cache(maxsize=2)
def parsed_site(site: Path) -> dict[Path, Links]:
    """Every HTML page of a built site, parsed once for all the tests that walk it (parsing takes most of their time)."""
    site = site.resolve()
    return {page.resolve(): parse_page(page) for page in sorted(site.rglob("*.html"))}


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


SITE_PATH = urlsplit(mkdocs_config().get("site_url") or "/").path  # "/zij/" on Pages


def broken_links(site: Path, site_path: str = "/") -> list[str]:
    """Every internal link or asset reference of the site's HTML whose file, or #anchor in it, does not exist.

    Root-absolute links (``/zij/...``) start at ``site_path``, where the site is served.
    """
    site = site.resolve()
    pages = parsed_site(site)
    broken = []
    for page, parsed in pages.items():
        # a benchmark block is a fragment that method pages (two levels deep) load: its links start there
        base = site / "_" / "_" if page.parent == site / "assets/zij/bench-cards" else page.parent
        for tag, attr, value in parsed.found:
            url, fragment = urldefrag(value)
            if urlsplit(url).scheme in ("http", "https", "mailto", "data") or url.startswith("//"):
                continue
            url = unquote(url)
            # root-absolute links (mkdocs writes them on 404.html, served at any path) start at the site's path
            if url.startswith("/") and not url.startswith(site_path):
                broken.append(f"{page.relative_to(site)}: {tag}[{attr}]={value} (outside {site_path})")
                continue
            target = (site / url[len(site_path):]).resolve() if url.startswith("/") else (base / url).resolve()
            if not url:
                target = page
            elif target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: {tag}[{attr}]={value}"
            if not target.is_file():
                broken.append(f"{where} (no such file)")
            elif fragment and target.suffix == ".html" and unquote(fragment) not in pages[target].ids:
                broken.append(f"{where} (no id {unquote(fragment)!r} in {target.relative_to(site)})")
    return sorted(broken)


def test_internal_links_and_anchors_resolve(built_site):
    assert broken_links(built_site, SITE_PATH) == []


def test_link_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="here">x</h2><a href="#here">ok</a><a href="../b/#nowhere">anchor</a>'
                                               '<a href="../missing/">file</a><img src="../b/x%20y.png"><a href="#gone">self</a>')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "index.html").write_text('<p id="there"><a href="../a/#here">ok</a></p>')
    (tmp_path / "b" / "x y.png").write_bytes(b"")
    assert broken_links(tmp_path) == [
        "a/index.html: a[href]=#gone (no id 'gone' in a/index.html)",
        "a/index.html: a[href]=../b/#nowhere (no id 'nowhere' in b/index.html)",
        "a/index.html: a[href]=../missing/ (no such file)",
    ]


def test_nothing_loads_from_outside(built_site):
    loads = []
    for page, parsed in parsed_site(built_site.resolve()).items():
        for tag, attr, value in parsed.found:
            external = value.startswith(("http://", "https://", "//"))
            if external and (tag in ("script", "img", "iframe", "source", "video", "audio") or (tag == "link")):
                loads.append(f"{page.relative_to(built_site.resolve())}: <{tag} {attr}={value}>")
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
    assert {n["id"] for n in names if not n["url"].startswith("families/")} == set(canon.entries)
    assert {n["url"] for n in names if n["url"].startswith("families/")} == {f"families/{f}/" for f in canon.families}


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


# -- reproducible and crash-safe builds ---------------------------------------------
# Files allowed to differ between two builds of the same commit, and how: the sitemap
# carries the build date (<lastmod>), so two builds on either side of midnight UTC differ
# there. They are compared with those dates masked; every other file must be byte-identical.
DATED = {"sitemap.xml", "sitemap.xml.gz"}
LASTMOD = re.compile(rb"<lastmod>[^<]*</lastmod>")


def tree(site: Path) -> dict[str, bytes]:
    """The site's files by relative path, with the known dated parts masked."""
    out = {}
    for path in sorted(site.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name in DATED:
                data = LASTMOD.sub(b"<lastmod/>", gzip.decompress(data) if path.suffix == ".gz" else data)
            out[path.relative_to(site).as_posix()] = data
    return out


def test_two_builds_are_byte_identical(built_site, tmp_path):
    """A second strict build into another folder, from a cold cache, writes the same bytes."""
    again = tmp_path / "again"
    proc = build_site(tmp_path, CANON, again, cache_dir=tmp_path / "cold-cache")
    assert proc.returncode == 0, proc.stderr
    first, second = tree(built_site), tree(again)
    assert sorted(first) == sorted(second)
    differ = [name for name in first if first[name] != second[name]]
    assert differ == []
    undated = [n for n in first if n not in DATED and (built_site / n).read_bytes() != (again / n).read_bytes()]
    assert undated == []


def snapshot(site: Path) -> dict[str, bytes]:
    return {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted(site.rglob("*")) if p.is_file()}


def kill_build_when(config: Path, ready) -> None:
    """Start ``mkdocs build`` with ``config`` and SIGKILL it as soon as ``ready()`` holds."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.Popen([str(MKDOCS), "build", "--strict", "-f", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not ready():
        assert proc.poll() is None, "the build finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL


def test_killed_build_leaves_previous_site_and_next_build_succeeds(tmp_path):
    canon = small_canon(tmp_path / "canon", ("first-order/adam.yaml", "first-order/sgd.yaml", "first-order/adamw.yaml",
                                              "first-order/adagrad.yaml", "second-order/shampoo.yaml"))
    pad_canon(canon, 60)  # enough pages that the build can be caught half-way
    site, cache = tmp_path / "site", tmp_path / "cache"
    assert build_site(tmp_path, canon, site, cache_dir=cache).returncode == 0
    before = snapshot(site)
    adam = canon / "first-order" / "adam.yaml"
    adam.write_text(adam.read_text().replace("name: Adam\n", "name: Adam Renamed\n"))
    partial = Path(f"{site}.zij-partial")
    config = tmp_path / f"mkdocs-{site.name}.yml"  # written by build_site
    for ready in (
        partial.exists,  # the partial site was just created
        lambda: any(partial.glob("first-order/*/index.html")),  # pages are being written
    ):
        kill_build_when(config, ready)
        assert snapshot(site) == before, "a killed build changed the published site"
    # the cache files a killed build may have written are whole, or absent
    for path in cache.glob("*.pickle"):
        assert path.stat().st_size > 0
    proc = build_site(tmp_path, canon, site, cache_dir=cache)
    assert proc.returncode == 0, proc.stderr
    assert "Adam Renamed" in (site / "first-order" / "adam" / "index.html").read_text()
    assert not partial.exists() and not Path(f"{site}.zij-old").exists()
    assert list(tmp_path.glob("cache/*.tmp")) == []


def test_build_killed_during_the_swap_is_recovered(tmp_path):
    """Killed between moving the old site aside and moving the new one in: the next build puts the old one back."""
    canon = small_canon(tmp_path / "canon")
    site = tmp_path / "site"
    assert build_site(tmp_path, canon, site).returncode == 0
    before = snapshot(site)
    site.rename(f"{site}.zij-old")  # the state between the two renames
    broken = yaml.safe_load((CANON / "first-order" / "adam.yaml").read_text())
    broken.update(id="broken", venue="nowhere")
    (canon / "first-order" / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert build_site(tmp_path, canon, site).returncode != 0
    assert snapshot(site) == before and not Path(f"{site}.zij-old").exists()
