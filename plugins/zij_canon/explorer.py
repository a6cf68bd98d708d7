"""The explorer: every record in one table, with facets, a name filter and sortable columns.

The page itself is a plain HTML table of every record (it is the full list when
scripts are off). Its filters come from ``assets/zij/explorer.js``, which reads
the compact facet data written here (:func:`explorer_json`) to
``assets/zij/explorer.json``; category pages use the same script and data for
their filter chips.

The data holds each fact once: the vocabularies (categories, families, venues,
venue kinds, licenses, rule sources) are small arrays, and each record is one
array of plain values and indices into them (:data:`RECORD_FIELDS`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import get_args

from markupsafe import Markup

from .canon import Canon
from .models import Record, RuleSource, VenueKind
from .render import SOURCE_BADGES, category_url, method_url, relative

EXPLORER_URL = "explorer/"
EXPLORER_PAGE = "explorer.md"
EXPLORER_DATA = "assets/zij/explorer.json"
# the explorer page's meta: its rows are the method pages' names, so search does not index them again,
# and its wide table takes the table of contents' room (the page has a single heading)
PAGE_META = {"search": {"exclude": True}, "hide": ["toc"]}

# the positions of a record's array in the data; the script reads them in this order
RECORD_FIELDS = ("id", "name", "aliases", "year", "categories", "families", "venue", "code", "licenses",
                 "zij_class", "rule_source")
CODE_NONE, CODE_COMMUNITY, CODE_OFFICIAL = 0, 1, 2

# facets of the explorer, and of the category pages (their category is fixed), as the script names them
EXPLORER_FACETS = ("category", "family", "year", "kind", "code", "license", "zij", "source")
CATEGORY_FACETS = ("family", "year", "kind", "code", "license", "zij", "source")
# sortable columns, in the order of each table's headers
EXPLORER_COLUMNS = ("name", "year", "category", "family", "venue", "code", "zij", "source")
CATEGORY_COLUMNS = ("name", "year", "family", "venue", "code", "zij")  # _records.html grouped by family


def code_level(record: Record) -> int:
    """2 when the authors published code, 1 when only others did, 0 without code."""
    if any(c.kind == "official" for c in record.code):
        return CODE_OFFICIAL
    return CODE_COMMUNITY if record.code else CODE_NONE


def vocabularies(canon: Canon) -> dict[str, list]:
    """The small arrays the records index into, each in a fixed order."""
    venues = [canon.venues[v] for v in sorted({r.venue for r in canon.records})]
    kinds = list(get_args(VenueKind))
    return {
        "category": [[c.id, c.title] for c in canon.ordered_categories()],
        "family": [[f.id, f.title] for f in sorted(canon.families.values(), key=lambda f: (f.title.lower(), f.id))],
        "venue": [[v.id, v.name, kinds.index(v.kind)] for v in venues],
        "kind": kinds,
        "license": sorted({c.license for r in canon.records for c in r.code}),
        "source": list(get_args(RuleSource)),
    }


def explorer_data(canon: Canon) -> dict:
    """The facet data of every record (sorted by name, like the explorer's table)."""
    vocab = vocabularies(canon)
    index = {name: {(v[0] if isinstance(v, list) else v): i for i, v in enumerate(values)} for name, values in vocab.items()}
    records = [
        [
            r.id, r.name, r.aliases, r.year,
            [index["category"][c] for c in r.categories],
            [index["family"][f] for f in r.families],
            index["venue"][r.venue],
            code_level(r),
            sorted({index["license"][c.license] for c in r.code}),
            r.zij_class.rsplit(".", 1)[-1] if r.zij_class else 0,
            index["source"][r.update_rule.rule_source],
        ]
        for r in canon.records
    ]
    return {"fields": list(RECORD_FIELDS), "vocab": vocab, "records": records}


def explorer_json(canon: Canon) -> str:
    """:func:`explorer_data` as compact JSON (deterministic: every list has a fixed order)."""
    return json.dumps(explorer_data(canon), ensure_ascii=False, separators=(",", ":"))


def filter_attributes(data_url: str, facets: tuple[str, ...], columns: tuple[str, ...]) -> Markup:
    """The attributes that make the records table inside an element filterable by the explorer script."""
    attrs = {"data-zij-explorer": data_url, "data-facets": ",".join(facets), "data-columns": ",".join(columns)}
    return Markup(" ").join(Markup('{}="{}"').format(name, value) for name, value in attrs.items())


@dataclass(frozen=True)
class Row:
    """One row of the explorer's table, as it is printed."""

    id: str
    url: str
    name: str
    year: int
    categories: str
    families: str
    venue: str
    venue_title: str
    code: str
    licenses: str
    zij_class: str
    source: str
    source_help: str


def explorer_rows(canon: Canon) -> list[Row]:
    """Every record as a table row, sorted by name; links are relative to the explorer page."""
    up = "../" * EXPLORER_URL.count("/")  # from the explorer to the site's root (one relpath per row was slow)
    code_labels = {CODE_NONE: "\u2014", CODE_COMMUNITY: "community", CODE_OFFICIAL: "official"}
    rows = []
    for r in canon.records:
        venue = canon.venues[r.venue]
        label, help_text = SOURCE_BADGES[r.update_rule.rule_source]
        rows.append(Row(
            id=r.id,
            url=up + method_url(r),
            name=r.name,
            year=r.year,
            categories=", ".join(canon.categories[c].title for c in r.categories),
            families=", ".join(canon.families[f].title for f in r.families) or "\u2014",
            venue=venue.name,
            venue_title=f"{venue.full_name} ({venue.kind})",
            code=code_labels[code_level(r)],
            licenses=", ".join(sorted({c.license for c in r.code})),
            zij_class=r.zij_class or "",
            source=r.update_rule.rule_source,
            source_help=label,
        ))
    return rows


def explorer_page(renderer) -> str:
    """HTML body of the explorer page (``renderer`` is the site's :class:`~zij_canon.render.Renderer`)."""
    canon = renderer.canon
    return renderer.env.get_template("explorer.html").render(
        rows=explorer_rows(canon),
        total=len(canon.records),
        attributes=filter_attributes(relative(EXPLORER_URL, EXPLORER_DATA), EXPLORER_FACETS, EXPLORER_COLUMNS),
    )


def category_filter_attributes(category_id: str) -> Markup:
    """The filter attributes of a category page's table (the category is fixed, the other facets are chips)."""
    page = category_url(category_id)
    return filter_attributes(relative(page, EXPLORER_DATA), CATEGORY_FACETS, CATEGORY_COLUMNS)
