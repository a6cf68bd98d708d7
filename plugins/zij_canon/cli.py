"""``zij-canon``: validate, summarize, scaffold and export the Canon."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from .canon import load
from .loader import CanonError
from .models import ID_PATTERN, Record

DEFAULT_CANON = Path("canon")

SCAFFOLD = """\
# A new Canon record: fill every field, then run `zij-canon validate`.
# Text fields take inline math between single $ signs. Schema: `zij-canon schema`.
id: {id}
name: TODO
aliases: []
categories: [{category}]
families: []
summary: >-
  TODO: what the method changes and why, in one to three sentences of our own.
year: TODO
venue: arxiv
paper:
  title: TODO
  url: https://arxiv.org/abs/TODO
  arxiv: "TODO"
  authors: []
update_rule:
  rule_source: sketch   # paper | code | implementation | sketch
  latex: |-
    TODO
  symbols:
    - {{symbol: '\\theta_t', meaning: parameters after step t}}
code: []
hyperparameters: []
related: []
"""


def cmd_validate(args) -> int:
    try:
        canon = load(args.canon)
    except CanonError as exc:
        for problem in exc.problems:
            print(problem)
        print(f"{len(exc.problems)} problem(s) found", file=sys.stderr)
        return 1
    print(f"{len(canon.entries)} records, {len(canon.categories)} categories")
    return 0


def cmd_stats(args) -> int:
    canon = load(args.canon)
    records = canon.records
    print(f"{len(records)} records, {len(canon.categories)} categories, {len(canon.families)} families")
    for cat in canon.ordered_categories():
        print(f"  {cat.id:<20} {len(canon.in_category(cat.id)):>4}")
    sources = Counter(r.update_rule.rule_source for r in records)
    print("rule sources: " + ", ".join(f"{k} {v} ({100 * v / len(records):.0f}%)" for k, v in sorted(sources.items())))
    transcribed = sum(v for k, v in sources.items() if k != "sketch")
    print(f"whole rules (paper, code or implementation): {transcribed} of {len(records)} "
          f"({100 * transcribed / max(len(records), 1):.0f}%)")
    links = [(r, c) for r in records for c in r.code]
    checked = [c for r, c in links if c.license != "NOASSERTION" or "no license file" in (r.notes or "").lower()]
    print(f"code links with a checked license (SPDX, or NOASSERTION with 'no license file' in the notes): "
          f"{len(checked)} of {len(links)} ({100 * len(checked) / max(len(links), 1):.0f}%)")
    print(f"implemented in zij: {sum(r.zij_class is not None for r in records)}")
    print(f"with code links: {sum(bool(r.code) for r in records)}")
    return 0


def cmd_new(args) -> int:
    import re

    if not re.match(ID_PATTERN, args.id):
        print(f"error: id {args.id!r} must be lowercase kebab-case (e.g. adam-mini)", file=sys.stderr)
        return 2
    folder = Path(args.canon) / args.category
    if not folder.is_dir():
        print(f"error: no category folder {folder}", file=sys.stderr)
        return 2
    path = folder / f"{args.id}.yaml"
    if path.exists():
        print(f"error: {path} already exists", file=sys.stderr)
        return 2
    path.write_text(SCAFFOLD.format(id=args.id, category=args.category), encoding="utf-8")
    print(path)
    return 0


def cmd_export(args) -> int:
    from .downloads import render_downloads
    from .render import method_url

    sys.stdout.write(render_downloads(load(args.canon), method_url)[f"canon.{args.format}"])
    return 0


def cmd_check_math(args) -> int:
    from .math import render_canon_math, tex_check

    canon = load(args.canon)
    _, problems = render_canon_math(canon)
    if not args.katex_only:
        problems += tex_check(canon)
    for problem in sorted(problems):
        print(problem)
    if problems:
        return 1
    print(f"math ok: {len(canon.entries)} rules render with KaTeX" + ("" if args.katex_only else " and compile with pdflatex"))
    return 0


def cmd_schema(args) -> int:
    json.dump(Record.model_json_schema(), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zij-canon", description=__doc__)
    parser.add_argument("--canon", default=str(DEFAULT_CANON), help="Canon directory (default: ./canon)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check every record; print path:line: field: message").set_defaults(fn=cmd_validate)
    sub.add_parser("stats", help="counts per category, rule sources, coverage").set_defaults(fn=cmd_stats)
    new = sub.add_parser("new", help="write a scaffold record canon/CATEGORY/ID.yaml")
    new.add_argument("category")
    new.add_argument("id")
    new.set_defaults(fn=cmd_new)
    export = sub.add_parser("export", help="all records on stdout, as the site's canon.json, canon.csv or canon.bib")
    export.add_argument("--format", choices=["json", "csv", "bib"], default="json")
    export.set_defaults(fn=cmd_export)
    math = sub.add_parser("check-math", help="render all math with KaTeX and compile every rule with pdflatex")
    math.add_argument("--katex-only", action="store_true", help="skip the pdflatex compile")
    math.set_defaults(fn=cmd_check_math)
    sub.add_parser("schema", help="the record JSON Schema on stdout").set_defaults(fn=cmd_schema)
    # --canon may also follow the subcommand
    for action in sub.choices.values():
        action.add_argument("--canon", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except CanonError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
