"""The GitHub Actions workflows: tests on CPU for every push and pull request; the site to Pages from main."""

from __future__ import annotations

import yaml

from _helpers import ROOT, mkdocs_config

WORKFLOWS = ROOT / ".github" / "workflows"


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_tests_run_on_every_push_and_pull_request():
    flow = load("test.yml")
    assert set(flow["on"]) == {"push", "pull_request"} and not flow["on"]["push"]
    (job,) = flow["jobs"].values()
    assert ".ci/run" in runs(job) and "make test" in (ROOT / ".ci" / "run").read_text()
    assert "download.pytorch.org/whl/cpu" in runs(job), "the CPU wheel of torch"
    assert "playwright install" not in runs(job), "the browser is Debian's chromium"


def test_site_is_built_strictly_and_deployed_from_main():
    flow = load("pages.yml")
    assert flow["on"]["push"]["branches"] == ["main"]
    assert flow["permissions"]["pages"] == "write" and flow["permissions"]["id-token"] == "write"
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    assert "mkdocs build --strict" in runs(build) and "npm ci" in runs(build)
    upload = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert upload and upload[0]["with"]["path"] == mkdocs_config()["site_dir"]
    assert deploy["needs"] == "build" and any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
