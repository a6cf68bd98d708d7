"""The built site in Debian's Chromium, driven by Playwright, served on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import yaml

from _helpers import CANON, build_site, small_canon
from test_site_build import evil_record

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed (.ci/run installs it)"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(directory):
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site_url(built_site):
    with serve(built_site) as url:
        yield url


@pytest.fixture()
def page(browser):
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"], viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    context.close()


def assert_local(requests):
    outside = [u for u in requests if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).hostname != "127.0.0.1"]
    assert outside == []


def search(page, site_url, query):
    page.goto(site_url)
    page.locator("label.md-search__icon, .md-search__input").first.click()
    box = page.locator("input[data-md-component=search-query]")
    box.fill("")
    box.type(query)
    hits = page.locator("#zij-name-hits a.zij-name-hit")
    hits.first.wait_for(timeout=10_000)
    return hits


@pytest.mark.parametrize("query,first", [("adamw", "AdamW"), ("adam", "Adam"), ("adam-mini", "Adam-mini"), ("Adaptive Moment Estimation", "Adam")])
def test_search_finds_method_by_name(page, site_url, query, first):
    hits = search(page, site_url, query)
    assert hits.first.locator("strong").inner_text() == first
    assert_local(page.requests)


def test_search_result_opens_the_page(page, site_url):
    hits = search(page, site_url, "adamw")
    hits.first.click()
    page.wait_for_url("**/first-order/adamw/")
    assert page.locator("h1").first.inner_text() == "AdamW"


def test_adamw_math_renders_and_copies(page, site_url):
    page.goto(site_url + "first-order/adamw/")
    assert page.locator(".zij-eq .katex-display").count() == 1
    assert page.locator(".katex-error").count() == 0
    assert page.locator(".zij-symbols .katex, table .katex").count() >= 3
    page.locator(".zij-eq button.zij-copy").click()
    page.locator(".zij-eq button.zij-copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    record = yaml.safe_load((CANON / "first-order" / "adamw.yaml").read_text())
    assert copied == record["update_rule"]["latex"]
    page.locator(".zij-bibtex button.zij-copy").click()
    page.locator(".zij-bibtex button.zij-copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()").startswith("@")
    # the math is drawn with the bundled KaTeX fonts, served by the site itself
    assert any("/assets/katex/fonts/KaTeX_" in u for u in page.requests)
    assert_local(page.requests)


def test_record_with_script_runs_nothing(tmp_path, page):
    canon = small_canon(tmp_path / "canon")
    (canon / "first-order" / "evil.yaml").write_text(yaml.safe_dump(evil_record()))
    proc = build_site(tmp_path, canon, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    with serve(tmp_path / "site") as url:
        page.goto(url + "first-order/evil/")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__zij_pwned") is None
        assert "<script>window.__zij_pwned = 1</script>" in page.locator(".zij-summary").inner_text()
    assert dialogs == []
    assert_local(page.requests)
