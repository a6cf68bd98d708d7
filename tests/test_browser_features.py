"""The site's second form in Debian's Chromium: API examples as copyable code, family pages found by
search, the "Use it" snippet and the plain-text reference copied, the table of contents, the palettes."""

from __future__ import annotations

import pytest

from _helpers import CANON
from test_browser import assert_local, browser, page, search, site_url  # noqa: F401 - fixtures
from zij_canon import load
from zij_canon.bibtex import reference

pytestmark = pytest.mark.browser


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_api_example_is_highlighted_code_and_copies_without_prompts(page, site_url):
    page.goto(site_url + "api/adam-family/")
    example = page.locator("div.highlight:has(.gp)").first
    example.wait_for()
    assert page.locator(".doc-contents blockquote").count() == 0
    assert example.locator(".gp").first.inner_text().startswith(">>>")
    assert example.locator("span.n").count() > 3, "the example is not highlighted"
    example.hover()
    example.locator("button.md-code__button[data-md-type=copy]").click()
    copied = clipboard(page)
    assert copied.startswith("model = torch.nn.Linear(") and ">>>" not in copied
    assert "opt.step()" in copied
    assert_local(page.requests)


def test_family_page_is_found_by_search(page, site_url):
    hits = search(page, site_url, "Sign-based")
    assert hits.first.get_attribute("href").endswith("families/sign-based/")
    assert hits.first.locator("strong").inner_text() == "Sign-based"
    hits.first.click()
    page.wait_for_url("**/families/sign-based/")
    assert page.locator("h1").first.inner_text() == "Sign-based"
    assert page.locator("table.zij-records tbody tr").count() >= 1
    assert_local(page.requests)


def test_method_page_toc_use_it_and_reference(page, site_url):
    page.goto(site_url + "first-order/adamw/")
    toc = page.locator(".md-sidebar--secondary .md-nav__link")
    assert {"Summary", "Update rule", "Symbols", "Use it", "Cite"} <= {t.strip() for t in toc.all_inner_texts()}
    use = page.locator(".zij-use div.highlight")
    use.hover()
    use.locator("button.md-code__button[data-md-type=copy]").click()
    copied = clipboard(page)
    assert copied.startswith("import zij\n") and "optimizer = zij.AdamW(model.parameters()" in copied
    page.locator(".zij-reference button.zij-copy").click()
    page.locator(".zij-reference button.zij-copied").wait_for()
    canon = load(CANON)
    record = canon.entries["adamw"].record
    assert clipboard(page) == reference(record, canon.venues[record.venue])
    page.locator(".zij-meta a.zij-family").first.click()
    page.wait_for_url("**/families/*/")
    assert_local(page.requests)


def test_palette_toggle_switches_to_dark_and_back(page, site_url):
    page.goto(site_url)
    body = page.locator("body")
    first = body.get_attribute("data-md-color-scheme")
    page.locator("label.md-header__button[for^=__palette]:visible").click()
    assert body.get_attribute("data-md-color-scheme") != first
    page.locator("label.md-header__button[for^=__palette]:visible").click()
    assert body.get_attribute("data-md-color-scheme") == first
