"""The Benchmarks page in Debian's Chromium: its columns sort, a chosen class's curve is drawn, the page works
as plain tables without scripts, and hostile names in the results run nothing."""

from __future__ import annotations

import json
import re

import pytest

from _helpers import build_site, small_canon
from test_benchmarks_page import hostile_results, page_html, site_results
from test_browser import assert_local, browser, serve, site_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def table_of(page, task: str):
    """The leaderboard of ``task`` (the table after its chart)."""
    return page.locator(f"figure[data-task='{task}'] + .zij-scroll table.zij-bench-table")


def order(page, task: str) -> list[str]:
    return table_of(page, task).locator("tbody tr").evaluate_all("rows => rows.map(r => r.getAttribute('data-class'))")


def test_columns_sort_and_a_class_curve_is_drawn(built_site, site_url, browser):  # noqa: F811
    docs = site_results(built_site)
    task, doc = next(iter(docs.items()))
    classes = doc["classes"]
    page = browser.new_page()
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.goto(site_url + "benchmarks/")
    page.locator(f"figure[data-task='{task}'] .zij-bench-pick:not([hidden])").wait_for(timeout=10_000)
    table = table_of(page, task)
    assert order(page, task) == [c["name"] for c in classes]

    def by(key, reverse=False):
        known = sorted((c for c in classes if c[key] is not None), key=lambda c: c[key], reverse=reverse)
        return [c["name"] for c in known] + [c["name"] for c in classes if c[key] is None]  # missing values last

    def header(text):
        return table.locator("thead th", has_text=text)

    header("Step (ms)").locator("button").click()
    assert order(page, task) == by("median_step_ms")
    assert header("Step (ms)").get_attribute("aria-sort") == "ascending"
    header("Step (ms)").locator("button").click()
    assert order(page, task) == by("median_step_ms", reverse=True)
    assert header("Step (ms)").get_attribute("aria-sort") == "descending"
    assert header("Rank").get_attribute("aria-sort") is None
    header("Best loss").locator("button").click()
    assert order(page, task) == by("best_val_mean")
    header("Class").locator("button").click()
    assert order(page, task) == sorted((c["name"] for c in classes), key=str.lower)
    header("Rank").locator("button").click()
    assert order(page, task) == [c["name"] for c in classes]
    # any class's curve, from the page's data file, drawn on the chart's axes
    data = json.loads((built_site / "assets" / "zij" / "benchmarks.json").read_text())
    name, rank, d = data[task][-1]
    figure = page.locator(f"figure[data-task='{task}']")
    figure.locator("select").select_option(label=f"{name} ({rank})")
    assert figure.locator("svg.zij-chart path.zij-series-pick").get_attribute("d") == d and d.startswith("M")
    assert figure.locator(".zij-bench-status").inner_text() == f"{name}, rank {rank}, drawn"
    figure.locator("select").select_option(value="")
    assert figure.locator("svg.zij-chart path.zij-series-pick").get_attribute("d") == ""
    assert_local(page.requests)
    page.close()


def test_without_scripts_the_tables_are_plain_and_ranked(built_site, site_url, browser):  # noqa: F811
    docs = site_results(built_site)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site_url + "benchmarks/")
    shown = page.content()
    for task, doc in docs.items():
        assert page.locator(f"figure[data-task='{task}'] .zij-bench-pick").is_hidden()
        start = shown.index(f'<figure class="zij-figure zij-bench-curves" data-task="{task}"')
        rows = re.findall(r'<tr data-class="([^"]*)">', shown[start:shown.index("</table>", start)])
        assert rows == [c["name"] for c in doc["classes"]]
    assert page.locator("table.zij-bench-table button").count() == 0
    assert page.locator("table.zij-bench-table th[aria-sort='ascending']", has_text="Rank").count() == len(docs)
    context.close()


def test_hostile_names_run_nothing(tmp_path, browser):  # noqa: F811
    canon = small_canon(tmp_path / "canon", ("first-order/adam.yaml", "first-order/sgd.yaml"))
    proc = build_site(tmp_path, canon, tmp_path / "site", bench=hostile_results(tmp_path / "results"))
    assert proc.returncode == 0, proc.stderr
    site = tmp_path / "site"
    assert 'id="benchmarks"' in page_html(site, "first-order/adam/")
    assert 'id="benchmarks"' not in page_html(site, "first-order/sgd/")  # SGD has no results
    with serve(site) as url:
        page = browser.new_page()
        for path in ("benchmarks/", "first-order/adam/"):
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            assert page.evaluate("window.__zij_pwned") is None
        page.goto(url + "benchmarks/")
        page.locator(".zij-bench-pick:not([hidden])").wait_for(timeout=10_000)
        assert page.locator("figure.zij-bench-curves select option").count() == 3  # none, Adam and the hostile class
        page.close()


def test_a_method_page_loads_its_block(built_site, site_url, browser):  # noqa: F811
    page = browser.new_page()
    page.goto(site_url + "first-order/lion/")
    card = page.locator(".zij-bench-slot table.zij-bench-card[data-class='Lion']")
    card.wait_for(timeout=10_000)
    shown = [t for t, doc in site_results(built_site).items()
             if "Lion" in [c["name"] for c in doc["classes"]] or "Lion" in doc["skipped"]]
    assert shown and card.locator("tbody tr").count() == len(shown)
    page.close()
