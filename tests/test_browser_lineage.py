"""Lineage graphs and timelines in Debian's Chromium: a method page shows its graph and a click on a node
opens that method; the links can be reached with the keyboard; a family page shows its graph; a category
page its timeline."""

from __future__ import annotations

import pytest

from test_browser import assert_local, browser, page, site_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_method_graph_links_to_the_methods_it_shows(page, site_url):
    page.goto(site_url + "first-order/adamw/")
    graph = page.locator("figure.zij-figure-method svg.zij-graph")
    graph.wait_for()
    assert graph.get_attribute("aria-label").startswith("Lineage of AdamW")
    box = graph.bounding_box()
    assert box["width"] > 100 and box["height"] > 40, "the graph is not drawn"
    current = graph.locator("a[aria-current=page]")
    assert current.locator("text").text_content() == "AdamW"
    node = graph.locator('a[href="../adam/"]')
    assert node.locator("title").text_content() == "Adam (2015)"
    node.focus()
    assert page.evaluate("document.activeElement.getAttribute('href')") == "../adam/", "a node cannot take the focus"
    node.click()
    page.wait_for_url("**/first-order/adam/")
    assert page.locator("h1").first.inner_text() == "Adam"
    assert page.locator("figure.zij-figure-method svg.zij-graph a[aria-current=page] text").text_content() == "Adam"
    assert_local(page.requests)


def test_family_page_shows_its_lineage_graph(page, site_url):
    page.goto(site_url + "families/sign-based/")
    graph = page.locator("figure.zij-figure-family svg.zij-graph")
    graph.wait_for()
    assert graph.locator("a").count() >= 5 and graph.locator(".zij-arrow").count() >= 4
    assert graph.bounding_box()["width"] > 200
    assert page.locator("figure.zij-figure-family svg a[aria-current]").count() == 0
    graph.locator('a[href="../../first-order/signsgd/"]').click()
    page.wait_for_url("**/first-order/signsgd/")
    assert_local(page.requests)


def test_category_page_shows_its_timeline(page, site_url):
    page.goto(site_url + "schedulers/")
    timeline = page.locator("figure.zij-figure-timeline svg.zij-timeline")
    timeline.wait_for()
    assert timeline.get_attribute("role") == "img" and "methods from" in timeline.get_attribute("aria-label")
    heights = timeline.locator(".zij-year rect").evaluate_all("rects => rects.map(r => r.getBBox().height)")
    assert heights and all(h > 0 for h in heights)
    fill = timeline.locator(".zij-year rect").first.evaluate("r => getComputedStyle(r).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)"), "the columns take no colour from the palette"
