"""What makes builds fast must not change what they produce.

* the record cache (``build/.cache/records-*.pickle``): a corrupt file is
  rebuilt, a stale entry is never used, unused entries are pruned;
* the KaTeX render cache (``katex-<version>.json``) and the registry catalog cache
  (``catalog-<sources>.json``): the same, and files of other versions are removed;
* the search tokenizer for generated pages: the same sections as Material's;
* the per-folder site nav of generated pages: the same HTML as rendering it per page.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import yaml
from material.plugins.search.plugin import Parser

from _helpers import CANON, ROOT, build_site, small_canon
from zij_canon import canon as canon_module
from zij_canon import load, search
from zij_canon.bench import pad_canon
from zij_canon.cache import RecordCache
from zij_canon.loader import CanonError
from zij_canon.math import find_katex, render_canon_math
from zij_canon.render import Renderer

RECORDS = ("first-order/adam.yaml", "first-order/sgd.yaml", "first-order/adamw.yaml")


def cache_file(cache: Path) -> Path:
    (path,) = cache.glob("records-*.pickle")
    return path


def count_parses(monkeypatch) -> list[Path]:
    """Record every YAML file the Canon loader parses from here on."""
    parsed: list[Path] = []
    real = canon_module.load_yaml

    def spy(path, display, *args):
        parsed.append(path)
        return real(path, display, *args)

    monkeypatch.setattr(canon_module, "load_yaml", spy)
    return parsed


def test_unchanged_records_come_from_the_cache(tmp_path, monkeypatch):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    first = load(canon_dir, cache)
    parsed = count_parses(monkeypatch)
    second = load(canon_dir, cache)
    assert [p.name for p in parsed] == ["categories.yaml", "families.yaml", "venues.yaml"]
    assert second.records == first.records


def test_changed_record_is_parsed_again_and_its_old_entry_pruned(tmp_path, monkeypatch):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    load(canon_dir, cache)
    before = set(pickle.loads(cache_file(cache).read_bytes()))
    path = canon_dir / "first-order" / "adam.yaml"
    path.write_text(path.read_text().replace("name: Adam\n", "name: Adam (edited)\n"))
    parsed = count_parses(monkeypatch)
    canon = load(canon_dir, cache)
    assert path in parsed
    assert canon.entries["adam"].record.name == "Adam (edited)"
    after = set(pickle.loads(cache_file(cache).read_bytes()))
    assert len(after) == len(RECORDS) and len(after - before) == 1, "the stale entry is kept"


@pytest.mark.parametrize("garbage", [b"", b"not a pickle", pickle.dumps(["a", "list"]), pickle.dumps({"x": 1})])
def test_corrupt_cache_is_rebuilt(tmp_path, garbage):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    expected = load(canon_dir, cache).records
    cache_file(cache).write_bytes(garbage)
    assert load(canon_dir, cache).records == expected
    assert len(pickle.loads(cache_file(cache).read_bytes())) == len(RECORDS)


def test_cache_of_other_code_is_ignored_and_removed(tmp_path, monkeypatch):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    load(canon_dir, cache)
    old = cache_file(cache)
    monkeypatch.setattr("zij_canon.cache.code_key", lambda: "0" * 16)
    parsed = count_parses(monkeypatch)
    load(canon_dir, cache)
    assert len(parsed) == 3 + len(RECORDS)
    assert not old.exists() and cache_file(cache).name == f"records-{'0' * 16}.pickle"


def test_cached_records_still_report_lines(tmp_path):
    """A record valid alone but wrong for the Canon gets the same located problem, cached or not."""
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    path = canon_dir / "first-order" / "sgd.yaml"
    data = yaml.safe_load(path.read_text())
    data["related"] = [{"id": "no-such-record", "relation": "builds-on"}]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    line = path.read_text().splitlines().index("- id: no-such-record") + 1
    problems = []
    for _ in range(2):  # the second load takes sgd from the cache
        with pytest.raises(CanonError) as exc:
            load(canon_dir, cache)
        problems.append(exc.value.problems)
    assert problems[0] == problems[1]
    assert [(p.line, p.field) for p in problems[1]] == [(line, "related[0].id")]


def test_record_cache_without_a_folder_is_off(tmp_path):
    cache = RecordCache(None)
    cache.put("d", object())
    cache.save()
    assert cache.path is None and cache.get("e") is None


# -- search --------------------------------------------------------------------
def rows_of(sections) -> list[tuple]:
    return [(s.el.tag, s.el.attrs, s.id, s.title, s.text, s.depth) for s in sections]


def material_sections(html: str) -> list[tuple]:
    parser = Parser()
    parser.feed(html)
    parser.close()
    return rows_of(parser.data)


def test_lean_parser_keeps_materials_rules():
    parser = Parser()
    assert search.KEEP == parser.keep


EDGE_CASES = [
    "<p>before any heading &amp; <b>bold</b></p><h2 id=\"x\">Two</h2><p>text</p>",
    "<h1 id=\"t\">Title <a class=\"headerlink\" href=\"#t\">&para;</a></h1><p>a\nb</p>  <p>  </p>",
    "<div><h2 id=\"n\">Nested</h2><p>in</p></div><p>after the div</p><h3 id='q' ID=\"dup\">Q</h3>",
    "<pre><code>line 1\n  line 2\n\n</code></pre><ul><li><code>x</code></li><li></li></ul>",
    "<p>a<br/>b<br />c<img src=\"x\" alt=\"a > b\"><!--zij-math:3-->d &lt;e&gt; &amp 1 &lt; 2</p>",
    "<table><tr><td>1</td><td><sub>2</sub></td></tr></table><h4 id=\"&quot;q&quot;\">H&amp;M</h4>",
]


@pytest.mark.parametrize("html", EDGE_CASES)
def test_lean_parser_matches_material_on_edge_cases(html):
    assert rows_of(search.parse(html).data) == material_sections(html)


@pytest.mark.parametrize("html", [
    '<p>x</p><script>var a = "<p>";</script>', '<div data-search-exclude><p>no</p></div>',
    "<p>1 < 2</p>", "<p>x<!-- unclosed</p>", '<p title="unclosed>x</p>', "<!DOCTYPE html><p>x</p>",
    "<textarea><p>not a paragraph</p></textarea>",
])
def test_pages_the_lean_parser_cannot_read_go_to_material(html):
    parsed = search.parse(html)
    assert isinstance(parsed, Parser)
    assert rows_of(parsed.data) == material_sections(html)


def test_lean_parser_matches_material_on_every_generated_page(tmp_path):
    try:
        canon = load(CANON)
    except CanonError:  # records being edited: use a copy of a few
        canon = load(small_canon(tmp_path / "canon", RECORDS))
    math_html, _ = render_canon_math(canon, find_katex(ROOT), ROOT / "build" / ".cache")
    r = Renderer(canon, math_html)
    pages = [r.home_page(), r.families_page(), r.schema_page()]
    pages += [r.category_page(c) for c in canon.categories] + [r.method_page(rec) for rec in canon.records]
    for html in pages:
        parsed = search.parse(html)
        assert isinstance(parsed, search.LeanParser)
        assert rows_of(parsed.data) == material_sections(html)


def test_search_sections_come_from_the_cache_while_the_html_is_unchanged(tmp_path, monkeypatch):
    first, second = EDGE_CASES[0], EDGE_CASES[1]
    cache = search.SectionCache(tmp_path)
    search.sections(first, cache)
    cache.save()

    def no_parse(html):
        raise AssertionError("parsed although cached")

    cache = search.SectionCache(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(search, "parse", no_parse)
        assert rows_of(search.sections(first, cache)) == material_sections(first)
    assert rows_of(search.sections(second, cache)) == material_sections(second)
    cache.save()
    (path,) = tmp_path.glob("search-*.pickle")
    assert set(pickle.loads(path.read_bytes())) == {cache.digest(first.encode()), cache.digest(second.encode())}
    cache = search.SectionCache(tmp_path)
    search.sections(second, cache)
    cache.save()
    assert set(pickle.loads(path.read_bytes())) == {cache.digest(second.encode())}, "an unused entry is kept"


@pytest.mark.parametrize("garbage", [b"\x80\x05garbage", pickle.dumps({"digest": "not rows"})])
def test_corrupt_search_cache_is_rebuilt(tmp_path, garbage):
    cache = search.SectionCache(tmp_path)
    search.sections(EDGE_CASES[2], cache)
    cache.save()
    (path,) = tmp_path.glob("search-*.pickle")
    path.write_bytes(garbage)
    cache = search.SectionCache(tmp_path)
    data = search.sections(EDGE_CASES[2], cache)
    assert rows_of(data) == material_sections(EDGE_CASES[2])
    cache.save()
    assert list(pickle.loads(path.read_bytes())) == [cache.digest(EDGE_CASES[2].encode())]


# -- site nav --------------------------------------------------------------------
def site_files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*")) if p.suffix in (".html", ".json")}


def test_shared_nav_renders_what_each_page_would(tmp_path):
    """Built with the plugin's main.html, and with a custom main.html that renders each nav: same files."""
    canon_dir = small_canon(tmp_path / "canon", (*RECORDS, "first-order/adagrad.yaml", "second-order/shampoo.yaml"))
    pad_canon(canon_dir, 8)
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "site", docs)
    (docs / "package.md").unlink()
    shared = build_site(tmp_path, canon_dir, tmp_path / "shared", docs_dir=docs, api=False)
    assert shared.returncode == 0, shared.stderr
    (docs / "overrides" / "main.html").write_text('{% extends "base.html" %}\n')
    plain = build_site(tmp_path, canon_dir, tmp_path / "plain", docs_dir=docs, api=False)
    assert plain.returncode == 0, plain.stderr
    assert site_files(tmp_path / "shared") == site_files(tmp_path / "plain")


# -- KaTeX render cache ------------------------------------------------------------
def katex_cache(cache: Path) -> Path:
    (path,) = cache.glob("katex-*.json")
    return path


def math_keys(canon) -> set[str]:
    from zij_canon.math import record_math

    return {f"{int(item.display)}{item.latex}" for item in record_math(canon)}


def test_katex_cache_is_used_and_pruned(tmp_path, monkeypatch):
    """Renders are reused while their math is unchanged; math no record holds any more leaves the cache."""
    from zij_canon import math as math_module

    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    katex = find_katex(ROOT)
    full = load(canon_dir)
    html, problems = render_canon_math(full, katex, cache)
    assert problems == [] and set(json.loads(katex_cache(cache).read_text())) == math_keys(full)
    rendered = []
    real = math_module.katex_render
    monkeypatch.setattr(math_module, "katex_render", lambda items, d=None: rendered.append(items) or real(items, d))
    assert render_canon_math(full, katex, cache)[0] == html and rendered == [], "rendered again although cached"
    (canon_dir / "first-order" / "sgd.yaml").unlink()
    fewer = load(canon_dir)
    render_canon_math(fewer, katex, cache)
    assert rendered == []
    assert set(json.loads(katex_cache(cache).read_text())) == math_keys(fewer) < math_keys(full), "unused renders are kept"


@pytest.mark.parametrize("garbage", [
    b"", b"{not json", b"[1, 2]", b'{"0x": "not a dict"}', b'{"0x": {"html": 1}}', b'{"0x": {"error": "e"}}', "half",
])
def test_corrupt_katex_cache_is_rebuilt(tmp_path, garbage):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    katex, canon = find_katex(ROOT), load(canon_dir)
    expected = render_canon_math(canon, katex, cache)[0]
    path = katex_cache(cache)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] if garbage == "half" else garbage)
    assert render_canon_math(canon, katex, cache)[0] == expected
    data = json.loads(path.read_text())
    assert set(data) == math_keys(canon) and all(set(v) == {"html"} for v in data.values())


def test_katex_cache_of_another_version_is_removed(tmp_path):
    canon_dir, cache = small_canon(tmp_path / "canon", RECORDS), tmp_path / "cache"
    cache.mkdir()
    (cache / "katex-0.0.1.json").write_text('{"1x": {"html": "<span>stale</span>"}}')
    render_canon_math(load(canon_dir), find_katex(ROOT), cache)
    assert [p.name for p in cache.glob("katex-*.json")] == [katex_cache(cache).name] != ["katex-0.0.1.json"]


# -- registry catalog cache -----------------------------------------------------------
CATALOG = [{"name": "Adam", "public": "zij.Adam", "path": "zij.first_order.Adam", "canon_id": "adam",
            "family": "adaptive", "builtin": False, "aliases": []}]


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """A stand-in for ``python -m zij._registry`` that counts its runs; the package key is pinned."""
    from zij_canon import api

    runs = tmp_path / "runs"
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\necho run >> {runs}\ncat <<'JSON'\n{json.dumps(CATALOG)}\nJSON\n")
    script.chmod(0o755)
    monkeypatch.setattr(api, "_source_key", lambda: "a" * 16)
    count = lambda: len(runs.read_text().splitlines()) if runs.exists() else 0  # noqa: E731
    return str(script), count


@pytest.mark.parametrize("garbage", [b"", b"[{", b"{}", b'[{"name": "x"}]', b"[1]", b'[{"name": 1, "public": 2, "path": 3, '
                                     b'"canon_id": 4, "family": 5, "builtin": "no"}]'])
def test_corrupt_catalog_cache_is_rebuilt(tmp_path, fake_registry, garbage):
    from zij_canon.api import ApiEntry, Catalog

    python, runs = fake_registry
    cache = tmp_path / "cache"
    expected = [ApiEntry(**{k: v for k, v in CATALOG[0].items() if k != "aliases"})]
    assert Catalog(python, cache).entries() == expected and runs() == 1
    assert Catalog(python, cache).entries() == expected and runs() == 1, "the cached catalog is not used"
    (cache / f"catalog-{'a' * 16}.json").write_bytes(garbage)
    assert Catalog(python, cache).entries() == expected and runs() == 2
    assert json.loads((cache / f"catalog-{'a' * 16}.json").read_text()) == CATALOG


def test_catalogs_of_other_sources_are_removed(tmp_path, fake_registry, monkeypatch):
    from zij_canon import api

    python, runs = fake_registry
    cache = tmp_path / "cache"
    api.Catalog(python, cache).entries()
    monkeypatch.setattr(api, "_source_key", lambda: "b" * 16)  # the package changed
    api.Catalog(python, cache).entries()
    assert [p.name for p in cache.glob("catalog-*.json")] == [f"catalog-{'b' * 16}.json"] and runs() == 2
    (cache / f"catalog-{'c' * 16}.json").write_text("[]")  # left by an older build
    api.Catalog(python, cache).entries()
    assert [p.name for p in cache.glob("catalog-*.json")] == [f"catalog-{'b' * 16}.json"] and runs() == 2


def test_lean_search_indexes_the_whole_site_as_material_does(built_site, tmp_path):
    """Every page (generated, API and Markdown) goes through zij_canon.search: the index equals Material's own."""
    proc = build_site(tmp_path, CANON, tmp_path / "site", options={"lean_search": False})
    assert proc.returncode == 0, proc.stderr
    ours = json.loads((built_site / "search" / "search_index.json").read_text(encoding="utf-8"))
    material = json.loads((tmp_path / "site" / "search" / "search_index.json").read_text(encoding="utf-8"))
    assert {d["location"] for d in ours["docs"] if d["location"].startswith("api/")}, "API pages are not indexed"
    assert ours == material


def test_griffe_shortcut_gives_the_parameters_griffe_computes():
    import griffe

    from zij_canon.griffe_speed import _INHERITED, own_init_parameters

    code = "class Base:\n    def __init__(self, a, b=2): ...\n\nclass Own(Base):\n    def __init__(self, c=3): ...\n"
    with griffe.temporary_visited_module(code) as module:
        for name in ("Base", "Own"):
            cls = module[name]
            ours, griffes = own_init_parameters(cls), _INHERITED.fget(cls)
            assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in griffes]
        assert [p.name for p in own_init_parameters(module["Own"])] == ["self", "c"]


# -- the API page cache ------------------------------------------------------------------------
MARK = '<p id="zij-test-mark">from the cache</p>'


def api_outputs(site: Path) -> dict[str, bytes]:
    """What the API pages make: their HTML, the mkdocstrings inventory and their search entries."""
    files = {p.relative_to(site).as_posix(): p.read_bytes() for p in sorted((site / "api").rglob("*.html"))}
    files["objects.inv"] = (site / "objects.inv").read_bytes()
    docs = json.loads((site / "search" / "search_index.json").read_text())["docs"]
    files["search entries"] = [d for d in docs if d["location"].startswith("api/")]
    return files


def test_api_pages_come_from_their_cache_while_their_inputs_hold(tmp_path):
    cache = tmp_path / "cache"
    if (ROOT / "build" / ".cache").is_dir():  # the other caches warm, so that only the API pages are cold
        shutil.copytree(ROOT / "build" / ".cache", cache, ignore=shutil.ignore_patterns("api-pages", "*.tmp"))
    build = lambda name: build_site(tmp_path, CANON, tmp_path / name, cache_dir=cache,  # noqa: E731
                                    options={"trajectories": False})
    proc = build("rendered")
    assert proc.returncode == 0, proc.stderr
    entries = sorted((cache / "api-pages").glob("*.json"))
    families = sorted(p.parent.name for p in (tmp_path / "rendered" / "api").glob("*/index.html"))
    assert [p.name for p in entries] == [f"api__{f}.md.json" for f in families]
    proc = build("cached")
    assert proc.returncode == 0, proc.stderr
    assert api_outputs(tmp_path / "cached") == api_outputs(tmp_path / "rendered")

    used, stale, corrupt = entries[:3]
    for path, key in ((used, None), (stale, "an older key")):  # the same mark in two entries, one under a stale key
        entry = json.loads(path.read_text())
        entry["content"] = MARK + entry["content"]
        entry["key"] = key or entry["key"]
        path.write_text(json.dumps(entry))
    corrupt.write_text('{"key": ')
    (cache / "api-pages" / "api__gone.md.json").write_text("{}")  # a page the site no longer has
    proc = build("tampered")
    assert proc.returncode == 0, proc.stderr
    page = lambda site, entry: (tmp_path / site / "api" / entry.name[5:-8] / "index.html").read_text()  # noqa: E731
    assert MARK in page("tampered", used), "the cached entry was not used"
    assert MARK not in page("tampered", stale) and page("tampered", stale) == page("rendered", stale)
    assert page("tampered", corrupt) == page("rendered", corrupt)
    assert not (cache / "api-pages" / "api__gone.md.json").exists()
    for path in (stale, corrupt):  # both rendered again and written back in full
        entry = json.loads(path.read_text())
        assert entry["key"] != "an older key" and MARK not in entry["content"] and 'class="doc doc-heading"' in entry["content"]


def test_recorded_registrations_know_whether_they_were_for_the_page():
    from zij_canon.api_cache import _recording

    class Autorefs:
        def __init__(self):
            self.seen = []

        def register_anchor(self, page, identifier, anchor=None, *, title=None, primary=True):
            self.seen.append((page, identifier))

    page, other, calls, autorefs = object(), object(), [], Autorefs()
    with _recording(autorefs, "register_anchor", calls, page):
        autorefs.register_anchor(page, "zij.Adam", title="Adam")
        autorefs.register_anchor(other, "elsewhere")
    autorefs.register_anchor(page, "after")  # the original method is back
    assert calls == [[True, ["zij.Adam"], {"title": "Adam"}], [False, ["elsewhere"], {}]]
    assert autorefs.seen == [(page, "zij.Adam"), (other, "elsewhere"), (page, "after")] and "register_anchor" not in vars(autorefs)


def test_an_unusable_entry_changes_nothing_and_registers_nothing():
    from types import SimpleNamespace

    from zij_canon.api_cache import ApiPageCache

    registered = []
    cache = ApiPageCache.__new__(ApiPageCache)
    cache.autorefs = SimpleNamespace(register_anchor=lambda *a, **k: registered.append(a))
    cache.inventory = None
    page = SimpleNamespace(content="before")
    entry = {"key": "k", "content": "after", "toc": [], "title": "T", "anchors": [], "links": None,
             "autorefs": [[True, ["zij.Adam"], {"title": "Adam"}]]}  # no "inventory": written by other code
    assert not cache._replay(page, entry, files=None)
    assert page.content == "before" and registered == []
    entry["inventory"] = [[True, ["zij.Adam", "py", "class", "api/x/#zij.Adam"], {}]]  # objects, but no inventory
    assert not cache._replay(page, entry, files=None) and registered == []
    entry["inventory"] = []
    assert cache._replay(page, entry, files=None)
    assert page.content == "after" and registered == [(page, "zij.Adam")]
