"""The Canon as files to take away: JSON, CSV, BibTeX and the record JSON Schema.

The site publishes each at a stable URL (:data:`DOWNLOADS`) and ``zij-canon
export`` writes the same bytes, so a script and a browser get one format.
"""

from __future__ import annotations

import csv
import io
import json

from .bibtex import bibtex, cite_keys
from .canon import Canon
from .models import Record

# site path -> (label on the home page, what the file holds)
DOWNLOADS = {
    "canon.json": ("canon.json", "every record as JSON, with the fields of the record schema"),
    "canon.csv": ("canon.csv", "one row per record: names, categories, families, paper, code and class"),
    "canon.bib": ("canon.bib", "a BibTeX entry for every paper"),
    "schema/record.schema.json": ("record.schema.json", "the JSON Schema every record file validates against"),
}

CSV_COLUMNS = (
    "id", "name", "aliases", "categories", "families", "year", "venue", "venue_kind",
    "title", "authors", "url", "arxiv", "doi", "rule_source", "code_urls", "code_licenses", "zij_class", "page",
)
LIST_SEPARATOR = "; "


def canon_json(canon: Canon) -> str:
    """Every record (sorted like the site: by name), one JSON object a line, as ``zij-canon export`` writes it."""
    lines = (json.dumps(r.model_dump(mode="json", exclude_none=True), ensure_ascii=False, separators=(",", ":"))
             for r in canon.records)
    return "[\n" + ",\n".join(lines) + "\n]\n"


def csv_row(record: Record, canon: Canon, page: str) -> dict[str, str]:
    """A record as one flat CSV row; lists are joined with :data:`LIST_SEPARATOR`."""
    join = LIST_SEPARATOR.join
    return {
        "id": record.id,
        "name": record.name,
        "aliases": join(record.aliases),
        "categories": join(record.categories),
        "families": join(record.families),
        "year": str(record.year),
        "venue": record.venue,
        "venue_kind": canon.venues[record.venue].kind,
        "title": record.paper.title,
        "authors": join(record.paper.authors),
        "url": record.paper.url,
        "arxiv": record.paper.arxiv or "",
        "doi": record.paper.doi or "",
        "rule_source": record.update_rule.rule_source,
        "code_urls": join(c.url for c in record.code),
        "code_licenses": join(c.license for c in record.code),
        "zij_class": record.zij_class or "",
        "page": page,
    }


def canon_csv(canon: Canon, page_url) -> str:
    """Every record as a CSV row; ``page_url(record)`` gives the site path of its page."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in canon.records:
        writer.writerow(csv_row(record, canon, page_url(record)))
    return out.getvalue()


def canon_bib(canon: Canon) -> str:
    """A BibTeX entry for every record's paper, with keys unique across the file."""
    keys = cite_keys(canon.records)
    entries = [bibtex(r, canon.venues[r.venue], keys[r.id]) for r in sorted(canon.records, key=lambda r: keys[r.id])]
    return "\n\n".join(entries) + "\n"


def schema_json() -> str:
    """The record JSON Schema."""
    return json.dumps(Record.model_json_schema(), indent=1)


def render_downloads(canon: Canon, page_url) -> dict[str, str]:
    """Site path -> content of every file in :data:`DOWNLOADS`."""
    content = {
        "canon.json": canon_json(canon),
        "canon.csv": canon_csv(canon, page_url),
        "canon.bib": canon_bib(canon),
        "schema/record.schema.json": schema_json(),
    }
    assert content.keys() == DOWNLOADS.keys()
    return content
