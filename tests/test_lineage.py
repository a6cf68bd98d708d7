"""Lineage graphs (method and family pages) and year timelines (category pages).

* the parents and children read from ``related`` follow the rule in zij_canon.lineage, checked
  against the records' YAML; ancestors and descendants of known records;
* a drawn graph has one link per node, to that node's method page, and an arrowhead per edge;
* layouts come from the cache: a second layout of unchanged graphs starts no ELK process;
* two layouts made by separate ELK runs draw byte-identical SVG;
* a timeline's columns count the records of each year; the built site's pages carry the graphs;
* the largest method page of the built site stays within 16 KB gzip-compressed (the figure is printed);
* a graph ELK rejects fails the layout, naming the graph, and nothing is cached.
"""

from __future__ import annotations

import gzip
import posixpath
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from _helpers import CANON, ROOT
from zij_canon import layout, load, svg
from zij_canon.canon import Canon, Entry
from zij_canon.lineage import CONTAINMENT, Graph, Lineage, year_counts
from zij_canon.render import method_url, relative
from zij_canon.svg import columns

METHOD_PAGE_BUDGET = 16 * 1024  # bytes, gzip-compressed
# A few real records whose links cover every rule: derivation links, and containment links whose target is
# earlier (signsgd -> rprop), of the same year (tiger -> lion) and later (adamw-adv -> c-adamw).
MINI = ("adam", "adamw", "nadam", "nesterov-momentum", "sgd-momentum", "lion", "tiger", "signsgd", "rprop",
        "c-adamw", "cautious", "adamw-adv")
LINK = re.compile(r'<a href="([^"]*)"[^>]*><title>([^<]*)</title><rect ')


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


@pytest.fixture(scope="module")
def mini(canon):
    """The MINI records as a Canon of their own (links to records outside it dropped)."""
    entries = {}
    for rid in MINI:
        entry = canon.entries[rid]
        record = entry.record.model_copy(update={"related": [r for r in entry.record.related if r.id in MINI]})
        entries[rid] = Entry(record, entry.path, entry.display)
    return Canon(canon.root, canon.categories, canon.families, canon.venues, entries)


def yaml_record(rid: str) -> dict:
    (path,) = CANON.glob(f"*/{rid}.yaml")
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rid", MINI)
def test_every_link_of_the_yaml_is_an_edge_in_the_documented_direction(canon, rid):
    graph = Graph(canon)
    data = yaml_record(rid)
    assert data["related"] or rid in graph.children, "pick records with links"
    for link in data["related"]:
        other = yaml_record(link["id"])
        child_first = link["relation"] in CONTAINMENT and other["year"] > data["year"]
        parent, child = (rid, link["id"]) if child_first else (link["id"], rid)
        assert parent in graph.parents[child] and child in graph.children[parent], (rid, link)
        words = [w for rel, w in graph.edges[parent, child] if rel == link["relation"]]
        assert words and link["relation"].replace("-", " ") in words[0]


def test_ancestors_and_descendants_of_known_records(mini):
    graph = Graph(mini)
    assert graph.parents["tiger"] == {"lion", "signsgd"}  # same year: the record writing the link is the child
    assert graph.parents["signsgd"] == {"rprop", "sgd-momentum"}  # rprop (1993) is the earlier
    assert set(graph.ancestors("tiger")) == {"lion", "signsgd", "rprop", "sgd-momentum"}
    assert set(graph.ancestors("tiger", depth=1)) == {"lion", "signsgd"}
    assert graph.parents["c-adamw"] == {"adamw", "cautious", "adamw-adv"}  # adamw-adv (2019) generalizes c-adamw (2024)
    # ranked: more children first (adamw 3, nadam 0), then the earlier (adamw-adv 2019, cautious 2024)
    assert graph.walk("adam", graph.children) == [["adamw", "nadam"], ["adamw-adv", "cautious", "c-adamw"]]
    assert graph.ancestors("adam") == [] and graph.descendants("rprop") == ["signsgd", "tiger"]
    nodes, edges, left_out = graph.method_view("signsgd")
    assert set(nodes) == {"signsgd", "rprop", "sgd-momentum", "tiger"} and left_out == 0
    assert edges == sorted([("rprop", "signsgd"), ("sgd-momentum", "signsgd"), ("signsgd", "tiger")])


def test_a_method_without_links_has_no_graph(canon):
    graph = Graph(canon)
    lonely = sorted(rid for rid in canon.entries if not graph.parents[rid] and not graph.children[rid])
    assert lonely, "every record has a link: pick another check"
    assert graph.method_view(lonely[0]) is None


def test_descendants_are_capped_and_counted(canon):
    graph = Graph(canon)
    nodes, _, left_out = graph.method_view("adam")
    all_descendants = graph.descendants("adam")
    assert len(all_descendants) > 10 and left_out == len(all_descendants) - 10
    assert set(nodes) == {"adam", *all_descendants[:10]}
    assert set(graph.children["adam"]) >= set(all_descendants[:10]), "children come before grandchildren"


@pytest.fixture(scope="module")
def lineage(mini, tmp_path_factory):
    return Lineage(mini, layout.find_elk(ROOT), tmp_path_factory.mktemp("layouts"))


def test_svg_has_one_link_per_node_to_its_method_page(mini, lineage):
    for rid in ("adamw", "signsgd", "tiger"):
        url = method_url(mini.entries[rid].record)
        html = lineage.draw("method", rid, url)
        nodes, edges, _ = lineage.views[f"method:{rid}"]
        links = LINK.findall(html)
        expected = {relative(url, method_url(mini.entries[n].record)) for n in nodes}
        assert len(links) == len(nodes) == html.count("<rect ") and {href for href, _ in links} == expected
        assert html.count('class="zij-arrow"') == len(edges)
        assert html.count('aria-current="page"') == 1 and 'aria-label="Lineage of ' in html
        for href, title in links:  # the title names the method the link opens
            target = posixpath.normpath(posixpath.join(url, href)).split("/")[-1]
            assert title.startswith(mini.entries[target].record.name + " (")


def test_family_graph_draws_linked_members(mini, lineage):
    html = lineage.draw("family", "adam-family", "families/adam-family/")
    nodes, edges, _ = lineage.views["family:adam-family"]
    assert len(LINK.findall(html)) == len(nodes) >= 3 and html.count('class="zij-arrow"') == len(edges)
    assert 'aria-current' not in html
    assert lineage.family("no-links") == "" and lineage.method(mini.entries["adam"].record) != ""


def count_runs(monkeypatch) -> list[int]:
    """The number of graphs each ELK run lays out, from here on."""
    runs: list[int] = []
    real = layout.elk_run

    def spy(items, elk_dir):
        runs.append(len(items))
        return real(items, elk_dir)

    monkeypatch.setattr(layout, "elk_run", spy)
    return runs


def test_unchanged_graphs_start_no_layout_process(mini, tmp_path, monkeypatch):
    runs = count_runs(monkeypatch)
    elk = layout.find_elk(ROOT)
    first = Lineage(mini, elk, tmp_path)
    assert len(runs) == 1 and 0 < runs[0] <= len(first.views), "one ELK process lays out every graph (equal ones once)"
    second = Lineage(mini, elk, tmp_path)
    assert len(runs) == 1, "laid out again although cached"
    assert second.layouts == first.layouts
    graphs = {"one": {"children": [{"id": "a", "width": 40, "height": 24}], "edges": []}}
    layout.layout_graphs(graphs, elk, tmp_path)
    assert runs[1:] == [1], "only the new graph is laid out"
    (cache,) = tmp_path.glob("layouts-*.json")
    assert cache.read_text().count('"width"') == 1, "layouts no build used are kept"
    (tmp_path / "layouts-0000000000000000.json").write_text("{}")  # left by another elkjs or layout script
    layout.layout_graphs(graphs, elk, tmp_path)
    assert [p.name for p in tmp_path.glob("layouts-*.json")] == [cache.name] and runs[1:] == [1]


@pytest.mark.parametrize("garbage", ["", "{not json", "[]", '{"k": {"width": 1}}'])
def test_corrupt_layout_cache_is_rebuilt(mini, tmp_path, garbage):
    elk = layout.find_elk(ROOT)
    expected = Lineage(mini, elk, tmp_path).layouts
    (cache,) = tmp_path.glob("layouts-*.json")
    cache.write_text(garbage)
    assert Lineage(mini, elk, tmp_path).layouts == expected


def test_drawing_is_deterministic(mini, tmp_path):
    elk = layout.find_elk(ROOT)
    pages = []
    for cache in (tmp_path / "a", tmp_path / "b"):  # two separate ELK runs
        lineage = Lineage(mini, elk, cache)
        pages.append([lineage.draw(*name.split(":"), "x/y/") for name in sorted(lineage.views)])
    assert pages[0] == pages[1] and len(pages[0]) >= 10


def timeline_bars(html: str) -> dict[int, int]:
    bars = re.findall(r"<title>(\d{4}): (\d+) methods?</title><rect [^>]*/><text [^>]*>(\d+)</text>", html)
    assert all(count == label for _, count, label in bars), "a column's label is not its count"
    return {int(year): int(count) for year, count, _ in bars}


def test_timeline_counts_the_records_of_each_year():
    years = [2019, 2015, 2019, 2024, 2019, 2015]
    counts = year_counts(years)
    assert counts[0] == (2015, 2) and counts[-1] == (2024, 1) and len(counts) == 10
    html = svg.timeline(counts, "Test methods by year")
    assert timeline_bars(html) == Counter(years)
    assert [">2015</text>" in html, ">2019</text>" in html, ">2024</text>" in html] == [True] * 3
    assert "<title>2016\u20132018: no methods</title>" in html and 'role="img"' in html  # empty years: a break
    assert [c for c in columns(counts)] == [(2015, 2015, 2), (2016, 2018, 0), (2019, 2019, 3), (2020, 2023, 0),
                                            (2024, 2024, 1)]
    assert columns([(2000, 1), (2001, 0), (2002, 0), (2003, 1)]) == [(2000, 2000, 1), (2001, 2001, 0),
                                                                   (2002, 2002, 0), (2003, 2003, 1)]
    assert svg.timeline(counts, "Test methods by year") == html
    assert svg.timeline([], "None") == ""


# -- the built site -------------------------------------------------------------------------
def page_html(site: Path, url: str) -> str:
    return (site / url / "index.html").read_text(encoding="utf-8")


def test_category_pages_show_their_timeline(built_site, canon):
    records = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(CANON.glob("*/*.yaml"))]
    for category in canon.categories:
        years = Counter(r["year"] for r in records if category in r["categories"])
        html = page_html(built_site, f"{category}/")
        assert html.count('<svg class="zij-timeline"') == (1 if years else 0)
        assert timeline_bars(html) == years


def test_method_and_family_pages_carry_their_graphs(built_site, canon):
    graph = Graph(canon)
    for rid in ("adamw", "muon", "signsgd"):
        record = canon.entries[rid].record
        url = method_url(record)
        html = page_html(built_site, url)
        nodes, _, _ = graph.method_view(rid)
        links = LINK.findall(html[html.index('<svg class="zij-graph"'):])
        assert {href for href, _ in links} == {relative(url, method_url(canon.entries[n].record)) for n in nodes}
        for href, _ in links:
            assert (built_site / posixpath.normpath(posixpath.join(url, href)) / "index.html").is_file()
        assert '<h2 id="lineage">' in html
    lonely = next(rid for rid in sorted(canon.entries) if graph.method_view(rid) is None)
    assert "zij-graph" not in page_html(built_site, method_url(canon.entries[lonely].record))
    assert 'class="zij-graph"' in page_html(built_site, "families/momentum/")


def test_largest_method_page_is_within_budget(built_site, canon, record_property):
    sizes = sorted((len(gzip.compress(page_html(built_site, method_url(r)).encode(), 9)), r.id) for r in canon.records)
    size, rid = sizes[-1]
    record_property("largest_method_page_gzip_bytes", size)
    print(f"\nlargest method page: {rid}, {size} bytes gzip-compressed (budget {METHOD_PAGE_BUDGET})")
    assert size <= METHOD_PAGE_BUDGET, f"{rid}: {size} bytes gzip-compressed"


def test_a_graph_elk_rejects_fails_the_build_naming_it(tmp_path):
    bad = {"broken": {"children": [{"id": "a", "width": 40, "height": 24}],
                      "edges": [{"id": "e", "sources": ["a"], "targets": ["missing"]}]}}
    with pytest.raises(layout.LayoutError, match="broken: "):
        layout.layout_graphs(bad, layout.find_elk(ROOT), tmp_path)
    assert not list(tmp_path.glob("layouts-*.json")), "a failed layout is cached"
