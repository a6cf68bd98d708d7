"""Shared helpers for the test suite: small canons and real mkdocs builds."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CANON = ROOT / "canon"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MKDOCS = Path(sys.executable).with_name("mkdocs")
BENCH_RESULTS = ROOT / "benchmarks" / "results"


class _ConfigLoader(yaml.SafeLoader):
    """Reads mkdocs.yml as mkdocs does for what the tests need: ``!ENV [NAME, default]`` is the
    variable's value when it is set, else the default."""


def _env(loader, node):
    name, *default = loader.construct_sequence(node)
    return os.environ.get(name, default[0] if default else None)


_ConfigLoader.add_constructor("!ENV", _env)


def mkdocs_config() -> dict:
    """The project's mkdocs.yml, with environment variables resolved."""
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_ConfigLoader)


def small_canon(dest: Path, records: tuple[str, ...] = ("first-order/adam.yaml",)) -> Path:
    """A canon with the real vocabularies and a few real records, at ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for vocab in CANON.glob("*.yaml"):
        shutil.copy(vocab, dest / vocab.name)
    for folder in yaml.safe_load((CANON / "categories.yaml").read_text()):
        (dest / folder["id"]).mkdir(exist_ok=True)
    for rel in records:
        shutil.copy(CANON / rel, dest / rel)
    return dest


def bench_results(tmp: Path, canon: Path = CANON) -> Path:
    """The benchmark results a test build shows: the project's (``make bench-tasks``) once it holds files, else
    synthetic results (``_bench_helpers``) for every class of ``canon``, written once into ``tmp``."""
    if any(BENCH_RESULTS.glob("*.json")):
        return BENCH_RESULTS
    classes = sorted({m.group(1) for path in Path(canon).glob("*/*.yaml")
                      for m in [re.search(r"^zij_class: zij\.(\w+)", path.read_text(encoding="utf-8"), re.M)] if m})
    key = hashlib.sha256(",".join(classes).encode()).hexdigest()[:12]
    dest = tmp / ("bench-results" if Path(canon) == CANON else f"bench-results-{key}")
    if not any(dest.glob("*.json")):
        from _bench_helpers import write_results

        write_results(dest, classes)
    return dest


def build_site(tmp: Path, canon: Path, site_dir: Path, docs_dir: Path | None = None, strict: bool = True,
               api: bool | None = None, cache_dir: Path | None = None, bench: Path | bool = True,
               options: dict | None = None):
    """Run a real ``mkdocs build`` of ``canon`` into ``site_dir``; return the CompletedProcess.

    The API reference (which needs every registered optimizer's record) is on for the real
    Canon and off for the small test canons, unless ``api`` says otherwise. The build cache
    is the project's (``build/.cache``) unless ``cache_dir`` names another folder. The
    Benchmarks page shows :func:`bench_results`, or the folder ``bench`` names; with
    ``bench=False`` the ``bench_results`` option is unset. ``options`` are further zij-canon plugin options.
    """
    config = mkdocs_config()
    with_api = (canon == CANON) if api is None else api
    if docs_dir is None:
        docs_dir = ROOT / "site"
        if not with_api:  # the package page links to the API reference, which is not built here
            docs_dir = tmp / "docs-without-api"
            if not docs_dir.exists():
                shutil.copytree(ROOT / "site", docs_dir)
                (docs_dir / "package.md").unlink()
    config["docs_dir"] = str(docs_dir)
    config["site_dir"] = str(site_dir)
    config["theme"]["custom_dir"] = str(docs_dir / "overrides")
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "zij-canon" in plugin:
            plugin["zij-canon"]["canon_dir"] = str(canon)
            plugin["zij-canon"]["api"] = with_api
            plugin["zij-canon"]["cache_dir"] = str(cache_dir or ROOT / "build" / ".cache")
            plugin["zij-canon"]["overrides"] = str(docs_dir / "overrides" / "zij_canon")
            plugin["zij-canon"]["state_bytes"] = str(ROOT / "benchmarks" / "state-bytes.json")
            plugin["zij-canon"].update(options or {})
            if bench is False:
                del plugin["zij-canon"]["bench_results"]
            else:
                plugin["zij-canon"]["bench_results"] = str(bench_results(tmp, canon) if bench is True else bench)
    if not with_api:
        config["nav"] = [item for item in config["nav"] if not {"API reference", "Using the package"} & set(item)]
    cfg = tmp / f"mkdocs-{site_dir.name}.yml"
    cfg.write_text(yaml.safe_dump(config))
    args = [str(MKDOCS), "build", "-f", str(cfg)] + (["--strict"] if strict else [])
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
