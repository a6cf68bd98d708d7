"""Math for the Canon: KaTeX rendering (build time) and a pdflatex compile check.

Every rule and every inline-math piece of every record is rendered by KaTeX
in one Node process, so pages carry finished math and need no script to show
it. An equation KaTeX rejects is a build error naming the record file. The
pdflatex check proves the promise made to users: each rule compiles in a plain
article with amsmath and amssymb.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import latex
from .canon import Canon
from .loader import Problem, field_name

HERE = Path(__file__).parent
RENDER_JS = HERE / "katex_render.js"


class MathError(RuntimeError):
    """KaTeX is missing, or could not render some equations."""


def find_katex(start: Path | None = None) -> Path:
    """Locate the installed npm ``katex`` package (``node_modules/katex``)."""
    env = os.environ.get("ZIJ_KATEX_DIR")
    candidates = [Path(env)] if env else []
    for base in [start or Path.cwd(), *((start or Path.cwd()).parents), HERE.parent.parent]:
        candidates.append(base / "node_modules" / "katex")
    for path in candidates:
        if (path / "dist" / "katex.min.js").is_file():
            return path.resolve()
    raise MathError("KaTeX not found: run `make install` (npm ci) or set ZIJ_KATEX_DIR to node_modules/katex")


@dataclass(frozen=True)
class MathItem:
    """One piece of math to render, with the record field it comes from."""

    key: str
    latex: str
    display: bool
    entry: object = field(compare=False, repr=False)
    loc: tuple

    def problem(self, message: str) -> Problem:
        """``message`` located at the item's field (the line is looked up only now, for errors)."""
        return Problem(self.entry.display, self.entry.line(*self.loc), field_name(self.loc), message)


def record_math(canon: Canon) -> list[MathItem]:
    """Every equation of every record: the rule (display) and inline math in prose."""
    items: list[MathItem] = []
    for rid, entry in canon.entries.items():
        rec = entry.record

        def add(latex_text: str, display: bool, *loc):
            name = ".".join(str(x) for x in loc)
            items.append(MathItem(f"{rid}:{name}:{latex_text}", latex_text, display, entry, loc))

        add(rec.update_rule.latex, True, "update_rule", "latex")
        prose = [(rec.summary, ("summary",)), (rec.notes, ("notes",)), (rec.update_rule.notes, ("update_rule", "notes"))]
        prose += [(s.meaning, ("update_rule", "symbols", i, "meaning")) for i, s in enumerate(rec.update_rule.symbols)]
        prose += [(h.note, ("hyperparameters", i, "note")) for i, h in enumerate(rec.hyperparameters)]
        for text, loc in prose:
            for is_math, piece in latex.split_inline(text or ""):
                if is_math:
                    add(piece, False, *loc)
        for i, s in enumerate(rec.update_rule.symbols):
            add(s.symbol, False, "update_rule", "symbols", i, "symbol")
        for i, h in enumerate(rec.hyperparameters):
            if h.symbol:
                add(h.symbol, False, "hyperparameters", i, "symbol")
    return items


def katex_render(items: list[tuple[str, str, bool]], katex_dir: Path | None = None) -> dict[str, dict]:
    """Render (key, latex, display) triples; return key -> {"html"} or {"error"}."""
    node = shutil.which("node")
    if node is None:
        raise MathError("Node.js is needed to render math with KaTeX; install nodejs")
    katex_dir = katex_dir or find_katex()
    payload = json.dumps([{"key": k, "latex": t, "display": d} for k, t, d in items])
    proc = subprocess.run([node, str(RENDER_JS), str(katex_dir)], input=payload, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MathError(f"KaTeX renderer failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def _read_katex_cache(cache_file: Path | None) -> dict[str, dict]:
    """Earlier renders kept in ``cache_file``; a file that cannot be read, or entries of the wrong shape, are dropped."""
    if cache_file is None or not cache_file.is_file():
        return {}
    try:
        data = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # corrupt (a killed build, a disk error): rendered again
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and list(v) == ["html"] and isinstance(v["html"], str)}


def _cached_render(unique: set[tuple[str, bool]], katex_dir: Path, cache_dir: Path | None) -> dict[str, dict]:
    """Render with KaTeX, reusing earlier successful renders kept in ``cache_dir``.

    The cache (``katex-<version>.json``) keeps only the renders this build used,
    so math no record holds any more is pruned; caches of other KaTeX versions are removed.
    """
    version = json.loads((katex_dir / "package.json").read_text())["version"]
    cache_file = cache_dir / f"katex-{version}.json" if cache_dir else None
    cache = _read_katex_cache(cache_file)
    keys = {f"{int(d)}{t}" for t, d in unique}
    todo = [(f"{int(d)}{t}", t, d) for t, d in sorted(unique) if f"{int(d)}{t}" not in cache]
    fresh = katex_render(todo, katex_dir) if todo else {}
    if cache_file:
        kept = {k: v for k, v in {**cache, **fresh}.items() if k in keys and "html" in v}
        if kept.keys() != cache.keys() or not cache_file.is_file():
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(dict(sorted(kept.items()))), encoding="utf-8")
            tmp.replace(cache_file)
        for other in cache_file.parent.glob("katex-*.json"):
            if other != cache_file:
                other.unlink(missing_ok=True)
    return {**cache, **fresh}


#: KaTeX's copy of the source inside the MathML. The pages carry each equation's LaTeX once, for the copy
#: button (``data-latex``); a second copy in every formula cost the longest rules ~5% of their page.
TEX_ANNOTATION = re.compile(r'<annotation encoding="application/x-tex">.*?</annotation>', re.S)


def render_canon_math(canon: Canon, katex_dir: Path | None = None, cache_dir: Path | None = None) -> tuple[dict[str, str], list[Problem]]:
    """Render all of the Canon's math: (display-flag + latex -> html, problems)."""
    items = record_math(canon)
    unique = {(i.latex, i.display) for i in items}
    results = _cached_render(unique, katex_dir or find_katex(), cache_dir)
    html: dict[str, str] = {}
    problems = []
    for item in items:
        result = results[f"{int(item.display)}{item.latex}"]
        if "error" in result:
            problems.append(item.problem(
                f"KaTeX cannot render this math: {result['error']} "
                "(hint: use only macros of amsmath and amssymb that KaTeX supports; check the braces and the spelling)"
            ))
        else:
            html[f"{int(item.display)}{item.latex}"] = TEX_ANNOTATION.sub("", result["html"])
    return html, sorted(set(problems))


TEX_PREAMBLE = r"""\documentclass{article}
\usepackage{amsmath}
\usepackage{amssymb}
\begin{document}
"""


def tex_check(canon: Canon, pdflatex: str | None = None) -> list[Problem]:
    """Compile every rule in one plain article; return a Problem per failing record.

    Each rule is preceded by a marker in the log, so the first error is pinned
    to its record; that record is set aside and the rest compiled again.
    """
    pdflatex = pdflatex or shutil.which("pdflatex")
    if pdflatex is None:
        raise MathError("pdflatex not found: install texlive-latex-base")
    entries = sorted(canon.entries.values(), key=lambda e: e.display)
    problems: list[Problem] = []
    while entries:
        failed = _compile_once(pdflatex, entries)
        if failed is None:
            break
        entry, message = failed
        problems.append(Problem(entry.display, entry.line("update_rule", "latex"), "update_rule.latex", message))
        entries = [e for e in entries if e is not entry]
    return problems


def _compile_once(pdflatex: str, entries) -> tuple[object, str] | None:
    body = "".join(
        f"\\typeout{{ZIJ-RULE {i}}}\n\\[\n{e.record.update_rule.latex}\n\\]\n" for i, e in enumerate(entries)
    )
    with tempfile.TemporaryDirectory() as tmp:
        tex = Path(tmp) / "rules.tex"
        tex.write_text(TEX_PREAMBLE + body + "\\end{document}\n", encoding="utf-8")
        proc = subprocess.run(
            [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "rules.tex"],
            cwd=tmp,
            capture_output=True,
            text=True,
            errors="replace",
        )
        if proc.returncode == 0:
            return None
        log = (Path(tmp) / "rules.log").read_text(errors="replace")
    markers = re.findall(r"ZIJ-RULE (\d+)", log)
    error = re.search(r"^! (.*)$", log, re.M)
    message = (
        f"does not compile with pdflatex (amsmath, amssymb): {error.group(1) if error else 'unknown error'} "
        "(hint: KaTeX accepts some macros that LaTeX lacks; use the amsmath/amssymb spelling)"
    )
    index = int(markers[-1]) if markers else 0
    return entries[index], message
