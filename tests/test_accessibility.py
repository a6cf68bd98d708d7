"""axe-core, from the npm registry (``npm ci`` installs it), run in Debian's Chromium on the site's main kinds
of page, in the light and the dark palette: no violation of impact "serious" or "critical" is allowed.

axe-core is a development dependency of ``package.json``, used only here: it is injected into the page under
test and never copied into the built site.
"""

from __future__ import annotations

import json

import pytest

from _helpers import ROOT
from test_browser import assert_local, browser, site_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
PAGES = {  # what a visitor reads, one of each kind
    "home": "",
    "category": "first-order/",
    "method": "first-order/adamw/",
    "explorer": "explorer/",
    "family": "families/adam-family/",
    "benchmarks": "benchmarks/",
}
PALETTES = {"light": ("light", "default"), "dark": ("dark", "slate")}  # emulated preference -> Material's scheme


def describe(violations: list[dict]) -> str:
    """Every violation with its nodes, for the failure message."""
    lines = []
    for v in violations:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['html'][:200]}")
            lines.append(f"        {(node.get('failureSummary') or '').replace(chr(10), ' ')}")
    return "\n".join(lines)


@pytest.fixture()
def palette_page(browser, request):  # noqa: F811
    preference, scheme = PALETTES[request.param]
    context = browser.new_context(color_scheme=preference, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda r: page.requests.append(r.url))
    page.scheme = scheme
    yield page
    context.close()


def test_axe_core_is_installed_from_the_lockfile():
    assert AXE.is_file(), "axe-core is missing: run `make install` (npm ci)"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    package = json.loads((ROOT / "package.json").read_text())
    assert lock["packages"]["node_modules/axe-core"]["version"] == package["devDependencies"]["axe-core"]
    assert lock["packages"]["node_modules/axe-core"]["dev"] is True


def test_axe_core_is_not_shipped(built_site):
    assert not list(built_site.rglob("axe*.js"))


@pytest.mark.parametrize("palette_page", list(PALETTES), indirect=True)
@pytest.mark.parametrize("kind", list(PAGES))
def test_no_serious_or_critical_violations(palette_page, site_url, kind):  # noqa: F811
    page = palette_page
    response = page.goto(site_url + PAGES[kind])
    assert response is not None and response.status == 200, f"the {kind} page /{PAGES[kind]} is not in the site"
    page.wait_for_load_state("networkidle")
    assert page.locator("body").get_attribute("data-md-color-scheme") == page.scheme
    page.add_script_tag(path=str(AXE))
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert results["testEngine"]["name"] == "axe-core"
    assert results["passes"], "axe-core checked nothing"
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{kind} page, {page.scheme} palette:\n" + describe(results["violations"])
    assert_local(page.requests)
