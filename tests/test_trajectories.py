"""Trajectory plots (zij_canon.trajectories): the settings file, the runs, the cache, the pages."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest
import yaml

import zij
from zij_canon import trajectories as tr
from zij_canon.api import ApiEntry
from zij_canon.trajectory_runs import _run_job, trajectory

SPEC = tr.load_spec()
IMG = re.compile(r'<img[^>]*class="zij-trajectory-path"[^>]*src="([^"]+)"[^>]*alt="([^"]+)"')


def entry(name: str, module: str) -> ApiEntry:
    return ApiEntry(name=name, public=f"zij.{name}", path=f"{module}.{name}", canon_id=name.lower(), family="x",
                    builtin=module.startswith("torch"))


def test_the_file_covers_every_registered_class():
    registered = set(zij.list_optimizers())
    assert sorted(registered - set(SPEC.optimizers)) == [], "add these classes to zij_canon/trajectories.yaml"
    assert sorted(set(SPEC.optimizers) - registered) == [], "these names are not registered classes"
    for name in registered:
        plotted = all(SPEC.settings(name, p) is not None for p in SPEC.problems)
        reason = SPEC.omitted().get(name, "")
        assert plotted != bool(reason.strip()), f"{name}: either plotted on every problem or omitted with a reason"


def test_the_file_uses_the_packages_problems():
    from zij.bench.tasks import STARTS

    assert set(SPEC.problems) == {"rosenbrock", "rastrigin"}
    for name, problem in SPEC.problems.items():
        assert problem.start == STARTS[name]


def test_an_omitted_class_shows_its_reason(tmp_path):
    spec = yaml.safe_load(tr.SPEC_FILE.read_text())
    spec["optimizers"] = {"SGD": {"omit": "a reason <b>"}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    plots = tr.Trajectories([entry("SGD", "torch.optim.sgd")], tmp_path / "cache", spec_path=path)
    plots.wait()
    assert plots.computed == 2 and plots.plots == {}  # the two contours only
    html = str(plots.html("SGD", lambda t: t))
    assert "Not plotted: a reason &lt;b&gt;" in html and "<img" not in html
    spec["optimizers"] = {"SGD": {"omit": "reason", "lr": 0.1}}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ValueError, match="only its reason"):
        tr.load_spec(path)


def test_plain_sgd_is_hand_rolled_gradient_descent():
    lr, steps = 1e-3, 60
    points = trajectory("SGD", "rosenbrock", (-1.5, 2.0), steps, {"lr": lr})
    x, y = -1.5, 2.0
    expected = [[x, y]]
    for _ in range(steps):
        gx = -2 * (1 - x) - 400 * x * (y - x * x)
        gy = 200 * (y - x * x)
        x, y = x - lr * gx, y - lr * gy
        expected.append([x, y])
    assert len(points) == steps + 1
    for got, want in zip(points, expected):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def _job(tmp: Path, name="SGD", problem="rosenbrock") -> dict:
    p = SPEC.problems[problem]
    data = {"kind": "path", "name": name, "problem": problem, "settings": SPEC.settings(name, problem),
            "start": list(p.start), "steps": SPEC.steps, "every": SPEC.every,
            "view": [list(v) for v in p.view], "title": f"{name} on {problem}"}
    return {**data, "out": str(tmp / f"{name}.svg")}


def test_rendering_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    for folder in (first, second):
        _run_job(_job(folder, "Lookahead", "rastrigin"))  # a wrapper: its base built from the file too
    a, b = (first / "Lookahead.svg").read_bytes(), (second / "Lookahead.svg").read_bytes()
    assert a == b
    text = a.decode()
    assert "<title>Lookahead on rastrigin</title>" in text and "<path" in text
    assert "dc:date" not in text.lower() and len(a) < 20_000
    assert (first / "Lookahead.json").read_bytes() == (second / "Lookahead.json").read_bytes()


def test_matrix_rules_step_the_point_with_their_own_rule():
    """MuonWithAuxAdam with use_muon forced moves along the orthogonalized gradient (for a 1 x 2 matrix,
    the gradient's direction), not as its AdamW fallback (the same step on each coordinate)."""
    kw = SPEC.settings("MuonWithAuxAdam", "rosenbrock")
    assert kw["group"] == {"use_muon": True}
    x, y = -1.5, 2.0
    g = (-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x))

    def first_step(settings):
        (x0, y0), (x1, y1) = trajectory("MuonWithAuxAdam", "rosenbrock", (x, y), 1, settings)[:2]
        return x1 - x0, y1 - y0

    def cosine(d):
        return -(d[0] * g[0] + d[1] * g[1]) / math.hypot(*d) / math.hypot(*g)

    muon = first_step(kw)
    fallback = first_step({**kw, "group": {"use_muon": False}})
    assert cosine(muon) > 0.9999
    assert fallback[0] == pytest.approx(fallback[1], rel=1e-6) and cosine(fallback) < 0.95


def test_a_cache_hit_computes_nothing(tmp_path, monkeypatch):
    spec = yaml.safe_load(tr.SPEC_FILE.read_text())
    spec["optimizers"] = {"SGD": {"lr": 0.001}, "AdamW": {"lr": 0.05}}
    spec["steps"] = 20
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    entries = [entry("SGD", "torch.optim.sgd"), entry("AdamW", "torch.optim.adamw")]
    started = []
    real = tr.subprocess.Popen
    monkeypatch.setattr(tr.subprocess, "Popen", lambda *a, **k: started.append(a) or real(*a, **k))

    cold = tr.Trajectories(entries, tmp_path / "cache", spec_path=path)
    cold.wait()
    assert cold.computed == 2 + 4 and len(started) == 1  # two contours, four paths, one subprocess
    files = {site: Path(src) for site, src in cold.files()}
    stamps = {site: src.stat().st_mtime_ns for site, src in files.items()}

    warm = tr.Trajectories(entries, tmp_path / "cache", spec_path=path)
    warm.wait()
    assert warm.computed == 0 and len(started) == 1
    assert {site: Path(src).stat().st_mtime_ns for site, src in warm.files()} == stamps
    assert warm.summaries == cold.summaries

    spec["optimizers"]["AdamW"] = {"lr": 0.1}  # one class's settings change: its two paths only
    path.write_text(yaml.safe_dump(spec))
    changed = tr.Trajectories(entries, tmp_path / "cache", spec_path=path)
    changed.wait()
    assert changed.computed == 2 and len(started) == 2
    changed.prune()
    kept = {p.name for p in (tmp_path / "cache" / "trajectories").iterdir()}
    assert kept == {Path(src).name for _, src in changed.files()} | {
        Path(src).with_suffix(".json").name for site, src in changed.files() if "-" in Path(site).stem}


# -- the built site --------------------------------------------------------
def _page(site: Path, url: str) -> str:
    return (site / url / "index.html").read_text(encoding="utf-8")


def _resolve(site: Path, url: str, src: str) -> Path:
    return (site / url / src).resolve()


def test_method_and_api_pages_show_existing_plots(built_site):
    from zij._registry import get_entry

    record_url = "first-order/adamw/"
    html = _page(built_site, record_url)
    assert '<h2 id="trajectories">Trajectories' in html
    assert 'href="#trajectories"' in html, "the Trajectories heading is in the page's table of contents"
    found = IMG.findall(html)
    assert len(found) == len(SPEC.problems)
    for src, alt in found:
        svg = _resolve(built_site, record_url, src)
        assert svg.is_file() and svg.read_text().lstrip().startswith("<?xml")
        assert alt.startswith("Path of AdamW on the")
    contours = re.findall(r'<div class="zij-trajectory-plot"><img src="([^"]+)"', html)
    assert all(_resolve(built_site, record_url, c).is_file() for c in contours)

    lion = get_entry("Lion")
    api_url = f"api/{lion.family}/"
    api = _page(built_site, api_url)
    found = [(s, a) for s, a in IMG.findall(api) if a.startswith("Path of Lion on")]
    assert len(found) == len(SPEC.problems)
    assert all(_resolve(built_site, api_url, s).is_file() for s, _ in found)


def test_every_registered_class_has_its_plots_on_the_site(built_site):
    folder = built_site / tr.SITE_DIR
    for name in zij.list_optimizers():
        for problem in SPEC.problems:
            assert (folder / f"{name}-{problem}.svg").is_file() or name in SPEC.omitted(), name
    sizes = [p.stat().st_size for p in folder.glob("*-*.svg")]
    print(f"\n{len(sizes)} path plots, {sum(sizes) / 1024:.0f} KiB in all, largest {max(sizes) / 1024:.1f} KiB")
    assert max(sizes) < 20_000


@pytest.mark.browser
def test_plots_load_in_the_browser(built_site):
    pytest.importorskip("playwright.sync_api")
    from test_browser import CHROMIUM, assert_local, serve
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with serve(built_site) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url + "first-order/adamw/#trajectories")
        images = page.locator(".zij-trajectory img")
        assert images.count() == 2 * len(SPEC.problems)
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
        widths = page.evaluate("[...document.querySelectorAll('.zij-trajectory img')].map(i => i.naturalWidth)")
        assert all(w > 0 for w in widths)
        browser.close()
        assert_local(requests)
