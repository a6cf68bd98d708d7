"""Equation anchors in Debian's Chromium: a link to an equation scrolls to it, its pilcrow link shows on hover
and on focus, and its copy button copies that equation's LaTeX."""

from __future__ import annotations

import pytest

from _helpers import CANON
from test_browser import assert_local, browser, page, site_url  # noqa: F401 - fixtures
from zij_canon import load
from zij_canon.equations import page_equations

pytestmark = pytest.mark.browser


def test_anchor_url_scrolls_to_the_equation_and_its_button_copies_it(page, site_url):  # noqa: F811
    record = load(CANON).entries["adamw"].record
    equation = page_equations(record)[0]
    page.set_viewport_size({"width": 1400, "height": 500})
    page.goto(site_url + "first-order/adamw/")
    top_unscrolled = page.locator(f"#{equation.anchor}").bounding_box()["y"]
    page.goto(site_url + f"first-order/adamw/#{equation.anchor}")
    target = page.locator(f"#{equation.anchor}")
    page.wait_for_function("() => window.scrollY > 0")
    assert page.evaluate("location.hash") == f"#{equation.anchor}"
    box = target.bounding_box()
    assert 0 <= box["y"] < 200 < top_unscrolled, (box, top_unscrolled)  # at the top, under the header
    assert target.locator(".katex-display").count() == 1
    # the pilcrow is a link to the equation itself: hidden until hovered or focused
    link = target.locator("a.headerlink")
    assert link.get_attribute("href") == f"#{equation.anchor}"
    page.mouse.move(0, 0)
    page.goto(site_url + "first-order/adamw/")
    assert float(link.evaluate("a => getComputedStyle(a).opacity")) == 0
    target.hover()
    page.wait_for_function("a => getComputedStyle(a).opacity === '1'", arg=link.element_handle())
    assert link.evaluate("a => getComputedStyle(a, '::before').content") == '"\u00b6"'
    assert link.bounding_box()["width"] > 0
    link.click()
    assert page.evaluate("location.hash") == f"#{equation.anchor}"
    target.locator("button.zij-copy").click()
    target.locator("button.zij-copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == equation.latex == record.update_rule.latex
    assert_local(page.requests)


def test_equation_link_shows_on_keyboard_focus(page, site_url):  # noqa: F811
    page.goto(site_url + "first-order/adamw/")
    link = page.locator(".zij-eq a.headerlink")
    link.focus()
    page.wait_for_function("a => getComputedStyle(a).opacity === '1'", arg=link.element_handle())
    assert link.get_attribute("aria-label") == "Permanent link to this equation"
