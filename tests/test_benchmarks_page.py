"""The Benchmarks page and the classes' benchmark blocks (zij_canon.benchmarks, zij_canon.leaderboard).

Results are synthetic files in the package's own format (``_bench_helpers``, written by ``zij.bench.results``);
one test reads the files a real ``python -m zij.bench --quick`` run writes. The site-wide build
(``built_site``) shows the results :func:`_helpers.bench_results` names.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from material.plugins.search.plugin import Parser

from _bench_helpers import write_results
from _helpers import CANON, ROOT, bench_results, build_site, small_canon
from zij_canon import benchmarks, leaderboard, load, search
from zij_canon.api import ApiEntry, family_page
from zij_canon.benchmarks import BenchError, read_folder
from zij_canon.leaderboard import ClassLinks, Leaderboard
from zij_canon.math import find_katex, render_canon_math
from zij_canon.render import Renderer, method_url

EVIL = '<img src=x onerror="window.__zij_pwned = 1">'
EVIL_TASK = "<script>window.__zij_pwned = 2</script>"
ROW = re.compile(r'<tr data-class="([^"]*)">(.*?)</tr>', re.S)
CELL = re.compile(r'<t[dh][^>]*?data-v="([^"]*)"[^>]*>(.*?)</t[dh]>', re.S)


@pytest.fixture()
def results(tmp_path) -> Path:
    """Two classes on one task, as make bench-tasks writes them."""
    return write_results(tmp_path / "results", ["Adam", "SGD"], tasks=("digits-mlp",))


def edit(folder: Path, change) -> Path:
    """Apply ``change`` to the parsed digits-mlp file and write it back; return the file."""
    path = folder / "digits-mlp.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def expected_ranks(classes: list[dict]) -> list[int | None]:
    means = [c["best_val_mean"] for c in classes if c["best_val_mean"] is not None]
    return [None if c["best_val_mean"] is None else 1 + sum(m < c["best_val_mean"] for m in means) for c in classes]


# -- reading ---------------------------------------------------------------------------------
def test_reads_what_the_package_writes(results):
    (task,) = read_folder(results)
    doc = json.loads((results / "digits-mlp.json").read_text())
    assert task.name == "digits-mlp" and task.eval_steps == tuple(doc["task"]["eval_steps"])
    assert [c.name for c in task.classes] == [c["name"] for c in doc["classes"]]
    for c, raw in zip(task.classes, doc["classes"]):
        assert c.best_val_mean == raw["best_val_mean"] and c.best_lr == raw["best_lr"]
        (run,) = [r for r in raw["runs"] if r["lr"] == raw["best_lr"] and r["seed"] == 0]
        assert list(c.curve) == run["val"]
        assert [lr for lr, _ in c.sensitivity] == raw["lrs"]
    assert [c.rank for c in task.classes] == expected_ranks(doc["classes"])


def test_the_page_says_how_long_the_suite_took_when_the_file_says(results):
    assert ", 41.5 minutes for the whole command" in Leaderboard(read_folder(results), {}).page()
    edit(results, lambda d: d["provenance"].pop("suite_seconds"))  # a file written before the suite was timed
    (task,) = read_folder(results)
    assert task.provenance.suite_seconds is None and task.provenance.parallel_runs == 2
    assert "minutes for the whole command" not in Leaderboard((task,), {}).page()


def test_a_missing_folder_says_how_to_make_it(tmp_path):
    with pytest.raises(BenchError, match=r"nope: the benchmark results folder is missing; run `make bench-tasks`"):
        read_folder(tmp_path / "nope")


def test_an_empty_folder_has_no_tasks(tmp_path):
    assert read_folder(tmp_path) == []
    page = Leaderboard([], {}, "benchmarks/results").page()
    assert "No results yet" in page and "<code>benchmarks/results</code>" in page and "<table" not in page


def test_malformed_json_names_the_file_and_the_place(results):
    path = results / "digits-mlp.json"
    path.write_text(path.read_text()[:200])
    with pytest.raises(BenchError) as info:
        read_folder(results)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid JSON (line ") and "make bench-tasks" in message


@pytest.mark.parametrize("change,field,problem", [
    (lambda d: d["classes"][1].pop("best_lr"), "classes[1].best_lr", "missing"),
    (lambda d: d["task"].pop("eval_steps"), "task.eval_steps", "missing"),
    (lambda d: d["provenance"].pop("torch"), "provenance.torch", "missing"),
    (lambda d: d["classes"][0].update(best_val_mean="low"), "classes[0].best_val_mean", 'expected a number or null, found "low"'),
    (lambda d: d["classes"][0].update(seeds_at_best=True), "classes[0].seeds_at_best", "expected an integer"),
    (lambda d: d["classes"][0]["runs"][0]["val"].pop(), "classes[0].runs[0].val", "values for the task's"),
    (lambda d: d["classes"][0]["runs"][0]["val"].__setitem__(0, "x"), "classes[0].runs[0].val[0]", "expected a number"),
    (lambda d: d["classes"].reverse(), "classes[1]", "not in rank order"),
    (lambda d: d["classes"].append(d["classes"][0]), "classes", "listed twice"),
    (lambda d: d.update(schema=2), "schema", "schema 2 is not the one this site reads (1)"),
    (lambda d: d["classes"][0].update(best_lr=123.0), "classes[0]", "123"),
])
def test_a_malformed_file_names_the_file_and_the_field(results, change, field, problem):
    path = edit(results, change)
    with pytest.raises(BenchError) as info:
        read_folder(results)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}"), message
    assert problem in message and message.endswith("the files are never edited by hand")


def test_parsed_files_come_from_the_build_cache_until_they_change(results, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = read_folder(results, cache)
    assert len(list(cache.glob("bench-*.pickle"))) == 1
    parsed = []
    monkeypatch.setattr(benchmarks, "parse", lambda path, text: parsed.append(path) or first[0])
    assert read_folder(results, cache) == first and parsed == []
    edit(results, lambda d: d["task"].update(description="changed"))
    read_folder(results, cache)
    assert parsed == [results / "digits-mlp.json"]


def test_a_bad_folder_fails_the_build_naming_it(tmp_path):
    canon = small_canon(tmp_path / "canon")
    proc = build_site(tmp_path, canon, tmp_path / "site", bench=tmp_path / "missing")
    assert proc.returncode != 0
    assert f"{tmp_path / 'missing'}: the benchmark results folder is missing" in proc.stderr
    results = write_results(tmp_path / "results", ["Adam"], tasks=("digits-mlp",))
    edit(results, lambda d: d["classes"][0].pop("lrs"))
    proc = build_site(tmp_path, canon, tmp_path / "site", bench=results)
    assert proc.returncode != 0
    assert f"{results / 'digits-mlp.json'}: classes[0].lrs: missing;" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the whole site ------------------------------------------------------------------------------
def page_html(site: Path, url: str) -> str:
    return (site / url / "index.html").read_text(encoding="utf-8")


def task_section(page: str, anchor: str) -> str:
    start = page.index(f'<h2 id="{anchor}"')
    end = page.find("<h2 ", start + 1)
    return page[start:end if end > 0 else len(page)]


def curve(c: dict) -> list:
    """Seed 0's validation curve at the class's best rate (none without a best rate)."""
    return next((r["val"] for r in c["runs"] if r["lr"] == c["best_lr"] and r["seed"] == 0), [])


def site_results(built_site: Path) -> dict[str, dict]:
    folder = bench_results(built_site.parent)
    return {doc["task"]["name"]: doc for doc in (json.loads(p.read_text()) for p in sorted(folder.glob("*.json")))}


def test_page_lists_every_class_in_rank_order_with_its_figures(built_site):
    page = page_html(built_site, "benchmarks/")
    docs = site_results(built_site)
    canon = load(CANON)
    records = {r.zij_class.removeprefix("zij."): r for r in canon.records if r.zij_class}
    anchors = leaderboard.anchors(list(docs))
    for name, doc in docs.items():
        section = task_section(page, anchors[name])
        rows = ROW.findall(section)
        assert [html.unescape(n) for n, _ in rows] == [c["name"] for c in doc["classes"]], name
        for (cls, row), c, rank in zip(rows, doc["classes"], expected_ranks(doc["classes"])):
            values = [html.unescape(v) for v, _ in CELL.findall(row)]
            texts = [t for _, t in CELL.findall(row)]
            assert values[0] == ("" if rank is None else str(rank))
            assert values[1] == c["name"]
            assert values[3] == ("" if c["best_val_mean"] is None else repr(c["best_val_mean"]))
            assert values[4] == str(c["seeds_reaching_target"]) and texts[4] == f"{c['seeds_reaching_target']} of {c['seeds_at_best']}"
            assert values[5] == ("" if c["steps_to_target_median"] is None else str(c["steps_to_target_median"]))
            assert values[6] == ("" if c["median_step_ms"] is None else repr(c["median_step_ms"]))
            assert values[7] == str(c["peak_state_bytes"])
            assert values[8] == ("" if c["best_lr"] is None else repr(c["best_lr"]))
            assert ("grid end" in texts[8]) == c["best_lr_at_grid_edge"]
            if c["best_val_mean"] is not None:
                assert texts[3].startswith(f"{c['best_val_mean']:.4g}")
                assert ("\u00b1" in texts[3]) == (c["seeds_at_best"] > 1)
            record = records.get(c["name"])
            if record is not None:  # the class links to its API entry and its method page
                assert f'href="../{method_url(record)}"' in row
                assert re.search(rf'href="\.\./api/([^"#]*/)?#[^"]*\.{c["name"]}"', row)
        for c in doc["skipped"]:
            assert f"<code>{html.escape(c)}</code>" in section
        drawn = [c["name"] for c in doc["classes"] if any(v is not None for v in curve(c))][:leaderboard.TOP]
        legend = re.findall(r'</svg> ([^<]*) \(rank \d+\)</li>', section)
        assert [html.unescape(n) for n in legend] == drawn
        assert section.count('class="zij-series zij-series-') == 2 * len(drawn) + 2  # curves, swatches, the pick
        assert re.search(r'<svg class="zij-chart" role="img" aria-label="Validation loss against step on', section)
    prov = next(iter(docs.values()))["provenance"]
    assert prov["commit"][:12] in page and html.escape(prov["command"]) in page and prov["torch"] in page


def test_page_is_in_the_nav_after_the_explorer(built_site):
    home = page_html(built_site, "")
    nav = re.findall(r'<a href="([^"]+)" class="md-nav__link">\s*<span class="md-ellipsis">\s*([^<]+?)\s*</span>', home)
    titles = [t for _, t in nav]
    assert titles.index("Benchmarks") == titles.index("Explorer") + 1
    assert (built_site / "assets" / "zij" / "benchmarks.json").is_file()


def card_rows(page: str, name: str) -> dict[str, str]:
    """The rows of class ``name``'s benchmark block on a page, by task."""
    block = page[page.index(f'<table class="zij-bench-card" data-class="{name}">'):]
    block = block[:block.index("</table>")]
    return {task: row for task, row in re.findall(r'<th scope="row"><a href="[^"]*">([^<]*)</a></th>(.*?)</tr>', block)}


def assert_card_shows(page: str, name: str, docs: dict) -> None:
    rows = card_rows(page, name)
    shown = {task for task, doc in docs.items() if name in [c["name"] for c in doc["classes"]] or name in doc["skipped"]}
    assert set(rows) == shown and shown
    for task, doc in docs.items():
        ranked = [c["name"] for c in doc["classes"]]
        if name not in ranked:
            continue
        c, rank = doc["classes"][ranked.index(name)], expected_ranks(doc["classes"])[ranked.index(name)]
        row = rows[task]
        assert f"<td>{rank} of {len(ranked)}</td>" in row
        assert f"<td>{c['best_val_mean']:.4g}" in row and f"<td>{c['best_lr']:.3g}" in row
        assert f'class="zij-spark" role="img" aria-label="Best validation loss of {name} on {task}' in row
        assert len(re.findall(r"<path d=", row)) == 1


def test_method_and_api_pages_show_the_block_of_a_class_with_results(built_site):
    docs = site_results(built_site)
    canon = load(CANON)
    for record_id, name in (("adamw", "AdamW"), ("lion", "Lion")):  # a torch.optim class and one of zij's own
        page = page_html(built_site, method_url(canon.entries[record_id].record))
        assert '<h2 id="benchmarks">Benchmarks</h2>' in page
        # the method page holds a placeholder (its size budget); zij.js loads the block from its fragment
        (card,) = re.findall(r'<div class="zij-bench-slot" data-card="([^"]+)">', page)
        assert card == f"../../assets/zij/bench-cards/{name}.html" and 'href="../../benchmarks/"' in page
        assert "zij-bench-card" not in page
        fragment = (built_site / "assets/zij/bench-cards" / f"{name}.html").read_text()
        assert_card_shows(fragment, name, docs)
        assert 'href="../../benchmarks/' in fragment
    # an API entry of zij's own classes shows it too, after the class's Canon link
    (api,) = [p for p in built_site.glob("api/*/index.html") if 'data-class="zij.Lion"' in p.read_text()]
    text = api.read_text()
    slot = '<div class="zij-bench-slot" data-card="../../assets/zij/bench-cards/Lion.html">'
    assert text.index('data-class="zij.Lion"') < text.index(slot)
    assert 'href="../../benchmarks/"' in text
    without = next(r for r in canon.records if not r.zij_class)
    assert 'id="benchmarks"' not in page_html(built_site, method_url(without))


def test_lean_search_parser_reads_a_method_page_with_its_block(tmp_path):
    canon = load(small_canon(tmp_path / "canon", ("first-order/adam.yaml",)))
    math_html, _ = render_canon_math(canon, find_katex(ROOT), ROOT / "build" / ".cache")
    tasks = read_folder(write_results(tmp_path / "results", ["Adam"], tasks=("digits-mlp", "rosenbrock")))
    board = Leaderboard(tasks, {"Adam": ClassLinks(None, "first-order/adam/", "Adam")})
    html_ = Renderer(canon, math_html, benchmarks=board).method_page(canon.records[0])
    assert 'id="benchmarks"' in html_
    parsed = search.parse(html_)
    assert isinstance(parsed, search.LeanParser)
    material = Parser()
    material.feed(html_)
    material.close()
    rows = lambda data: [(s.id, s.title, "".join(s.text)) for s in data]  # noqa: E731
    assert rows(parsed.data) == rows(material.data)


def test_api_page_shows_the_block_only_for_classes_with_results(tmp_path):
    canon = load(CANON)
    tasks = read_folder(write_results(tmp_path / "results", ["Adam"], tasks=("digits-mlp",)))
    entries = [ApiEntry("Adam", "zij.Adam", "torch.optim.Adam", "adam", "adam-family", True),
               ApiEntry("AdamW", "zij.AdamW", "torch.optim.AdamW", "adamw", "adam-family", True)]
    board = Leaderboard(tasks, {})
    markdown = family_page("Adam", entries, canon, benchmarks=board)
    # a one-line placeholder (zij.js loads the block: big raw HTML blocks slow Markdown down)
    (slot,) = [line for line in markdown.splitlines() if "zij-bench-slot" in line]
    assert 'data-card="../../assets/zij/bench-cards/Adam.html"' in slot and 'href="../../benchmarks/"' in slot
    fragment = board.card_files()["assets/zij/bench-cards/Adam.html"]
    assert '<table class="zij-bench-card" data-class="Adam">' in fragment
    assert 'href="../../benchmarks/#digits-mlp"' in fragment
    assert set(board.card_files()) == {"assets/zij/bench-cards/Adam.html"}


# -- escaping, the option, determinism ----------------------------------------------------------------
def hostile_results(folder: Path) -> Path:
    write_results(folder, ["Adam", EVIL], skipped={"SparseAdam": EVIL}, tasks=("digits-mlp",))
    edit(folder, lambda d: (d["task"].update(name=EVIL_TASK, description=EVIL), d["provenance"].update(cpu=EVIL)))
    return folder


def test_hostile_names_are_escaped(tmp_path):
    board = Leaderboard(read_folder(hostile_results(tmp_path / "results")), {})
    for text in (board.page(), str(board.card(EVIL, lambda t: t)), str(board.card("Adam", lambda t: t))):
        assert "<script>" not in text and "<img src=x" not in text
        assert "&lt;script&gt;" in text or "&lt;img src=x" in text
    assert "&lt;img src=x onerror=" in board.page()
    assert json.loads(board.data_json())[EVIL_TASK][1][0] in ("Adam", EVIL)


def test_without_the_option_there_is_no_page(tmp_path):
    canon = small_canon(tmp_path / "canon")
    proc = build_site(tmp_path, canon, tmp_path / "site", bench=False)
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    assert not (site / "benchmarks").exists() and not (site / "assets" / "zij" / "benchmarks.json").exists()
    assert "Benchmarks" not in page_html(site, "")
    assert 'id="benchmarks"' not in page_html(site, "first-order/adam/")
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = build_site(tmp_path, canon, tmp_path / "site", bench=empty)
    assert proc.returncode == 0, proc.stderr
    assert "No results yet" in page_html(site, "benchmarks/")
    assert 'id="benchmarks"' not in page_html(site, "first-order/adam/")


def test_rendering_is_deterministic(tmp_path):
    one = write_results(tmp_path / "one", ["Adam", "SGD", "Lion"])
    two = write_results(tmp_path / "two", ["Adam", "SGD", "Lion"])
    assert all((one / p.name).read_bytes() == p.read_bytes() for p in two.glob("*.json"))
    boards = []
    for folder in (one, two):
        board = Leaderboard(read_folder(folder), {"Adam": ClassLinks("api/a/#x", "first-order/adam/", "Adam")})
        boards.append((board.page(), board.data_json(), str(board.card("Adam", lambda t: t))))
    assert boards[0] == boards[1]


def test_reads_a_real_quick_run(tmp_path):
    """The files of a real (tiny) run of the suite are read and shown."""
    out = tmp_path / "quick"
    proc = subprocess.run([sys.executable, "-m", "zij.bench", "--quick", "--classes", "SGD,Lion", "--tasks",
                           "rosenbrock", "--jobs", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    (task,) = read_folder(out)
    assert sorted(c.name for c in task.classes) == ["Lion", "SGD"]
    page = Leaderboard([task], {}).page()
    assert page.count('<tr data-class="') == 2 and "rosenbrock" in page
