"""Graph layout for the site's lineage graphs: the Eclipse Layout Kernel (elkjs), cached.

A graph is given as ELK's JSON input: ``children`` (nodes with an ``id``, a
``width`` and a ``height``) and ``edges`` (``id``, ``sources``, ``targets``).
ELK's *layered* algorithm (Sugiyama style: cycle breaking, layering, crossing
minimisation, node placement, orthogonal edge routing) places them; we only
draw the result (:mod:`zij_canon.svg`). All graphs that are not cached are laid
out by one Node process per build (``elk_layout.js``), like the KaTeX renders.

Layouts are kept in the build cache (``layouts-<key>.json``) under the SHA-256
of each graph's input with the layout options, so a build of an unchanged
Canon starts no Node process at all. ``<key>`` digests the elkjs version and
the layout script: another ELK gives another file, and files of other keys are
removed. The cache keeps only the layouts a build used, so it never grows
beyond the Canon's graphs; a file that cannot be read is ignored and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).parent
LAYOUT_JS = HERE / "elk_layout.js"
# ELK options of every graph: generations left to right, fixed seed (ELK's default, written out)
OPTIONS = {
    "elk.algorithm": "layered",
    "elk.direction": "RIGHT",
    "elk.edgeRouting": "ORTHOGONAL",
    "elk.randomSeed": "1",
    "elk.padding": "[top=6,left=6,bottom=6,right=6]",
    "elk.spacing.nodeNode": "10",
    "elk.layered.spacing.nodeNodeBetweenLayers": "36",
    "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
    "elk.layered.mergeEdges": "true",  # edges leaving one node share their first segment: no thick bundles
    "elk.separateConnectedComponents": "false",  # a family's separate lineages share its generation columns
}


class LayoutError(RuntimeError):
    """elkjs or Node.js is missing, or ELK could not lay out a graph."""


def find_elk(start: Path | None = None) -> Path:
    """Locate the installed npm ``elkjs`` package (``node_modules/elkjs``)."""
    env = os.environ.get("ZIJ_ELK_DIR")
    candidates = [Path(env)] if env else []
    for base in [start or Path.cwd(), *((start or Path.cwd()).parents), HERE.parent.parent]:
        candidates.append(base / "node_modules" / "elkjs")
    for path in candidates:
        if (path / "lib" / "elk.bundled.js").is_file():
            return path.resolve()
    raise LayoutError("elkjs not found: run `make install` (npm ci) or set ZIJ_ELK_DIR to node_modules/elkjs")


def elk_run(items: list[tuple[str, dict]], elk_dir: Path) -> dict[str, dict]:
    """Lay out (key, ELK graph) pairs in one Node process; return key -> layout or {"error"}."""
    node = shutil.which("node")
    if node is None:
        raise LayoutError("Node.js is needed to lay out the lineage graphs; install nodejs")
    payload = json.dumps([{"key": k, "graph": g} for k, g in items])
    proc = subprocess.run([node, str(LAYOUT_JS), str(elk_dir)], input=payload, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LayoutError(f"the ELK layout script failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def graph_input(graph: dict) -> dict:
    """The full ELK input of ``graph``: a root node with the layout options."""
    return {"id": "root", "layoutOptions": OPTIONS, **graph}


def digest(graph: dict) -> str:
    """The cache key of a graph: SHA-256 of its ELK input, written canonically."""
    return hashlib.sha256(json.dumps(graph_input(graph), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _is_layout(value) -> bool:
    return (isinstance(value, dict) and set(value) == {"width", "height", "nodes", "edges"}
            and isinstance(value["nodes"], dict) and isinstance(value["edges"], dict))


def _cache_file(cache_dir: Path | None, elk_dir: Path) -> Path | None:
    if cache_dir is None:
        return None
    version = json.loads((elk_dir / "package.json").read_text())["version"]
    key = hashlib.sha256(version.encode() + b"\0" + LAYOUT_JS.read_bytes()).hexdigest()[:16]
    return Path(cache_dir) / f"layouts-{key}.json"


def _read(cache_file: Path | None) -> dict[str, dict]:
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # corrupt: laid out again
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if _is_layout(v)}


def layout_graphs(graphs: dict[str, dict], elk_dir: Path, cache_dir: Path | None = None) -> dict[str, dict]:
    """Layouts of ``graphs`` (name -> ELK graph without options), from the cache or one ELK run.

    A layout is ``{"width", "height", "nodes": {id: [x, y]}, "edges": {id: [[x, y], ...]}}``
    (integer coordinates: the top-left corner of each node, each edge's points from source to target).
    """
    cache_file = _cache_file(cache_dir, elk_dir)
    cache = _read(cache_file)
    keys = {name: digest(graph) for name, graph in graphs.items()}
    todo = sorted({(keys[name], name) for name in graphs if keys[name] not in cache})
    unique = {}
    for key, name in todo:
        unique.setdefault(key, graph_input(graphs[name]))
    fresh = elk_run(sorted(unique.items()), elk_dir) if unique else {}
    fresh.update({key: {"error": "no output"} for key, _ in todo if key not in fresh})
    failed = sorted(f"{name}: {fresh[key]['error']}" for key, name in todo if "error" in fresh[key])
    if failed:
        raise LayoutError("ELK could not lay out these graphs:\n" + "\n".join(failed))
    results = {**cache, **fresh}
    if cache_file is not None:
        kept = {k: results[k] for k in sorted(set(keys.values()))}
        if kept.keys() != cache.keys() or not cache_file.is_file():
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(kept, separators=(",", ":")), encoding="utf-8")
            tmp.replace(cache_file)
        for other in cache_file.parent.glob("layouts-*.json"):
            if other != cache_file:
                other.unlink(missing_ok=True)
    return {name: results[keys[name]] for name in graphs}
