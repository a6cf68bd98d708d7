"""Record -> HTML: plain functions the MkDocs plugin calls.

Nothing here knows about MkDocs. A :class:`Renderer` holds the validated
Canon and its pre-rendered math, and turns records, categories and the home
page into HTML through jinja2 templates with autoescaping on. Templates can
be overridden by putting a file of the same name in an override folder.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import jinja2
from markupsafe import Markup, escape
from mkdocs.structure.toc import TableOfContents, get_toc

from . import latex
from .bibtex import bibtex, cite_keys, reference
from .canon import Canon
from . import models
from .downloads import DOWNLOADS
from .equations import page_equations
from .models import Record
from .usage import snippet_html

TEMPLATES = Path(__file__).parent / "templates"
MATH_PLACEHOLDER = re.compile(r"<!--zij-math:(\d+)-->")
HEADING = re.compile(r'<h([1-3]) id="([^"]+)"[^>]*>(.*?)</h\1>', re.S)
TAG = re.compile(r"<[^>]+>")
SOURCE_BADGES = {
    "paper": ("transcribed from the paper", "The rule is transcribed from the paper's algorithm."),
    "code": ("transcribed from the official code", "The rule is transcribed from the official implementation named in the notes."),
    "implementation": ("as implemented in zij", "The rule is what the zij class computes."),
    "sketch": ("sketch of the mechanism", "The rule states the mechanism; it is not the paper's exact algorithm."),
}


def method_url(record: Record) -> str:
    """Site-relative URL of a method page (directory style)."""
    return f"{record.categories[0]}/{record.id}/"


def category_url(category_id: str) -> str:
    return f"{category_id}/"


def family_url(family_id: str) -> str:
    return f"families/{family_id}/"


def table_of_contents(html: str) -> TableOfContents:
    """The table of contents of a generated page: its h1 to h3 headings, nested by level."""
    root: list[dict] = []
    open_levels: list[dict] = []
    for level, anchor, inner in HEADING.findall(html):
        token = {"level": int(level), "id": anchor, "name": TAG.sub("", inner).strip(), "children": []}
        while open_levels and open_levels[-1]["level"] >= token["level"]:
            open_levels.pop()
        (open_levels[-1]["children"] if open_levels else root).append(token)
        open_levels.append(token)
    return get_toc(root)


def relative(from_url: str, to_url: str) -> str:
    """Relative link between two directory-style site URLs ('' is the home page); keeps a #fragment."""
    to_url, hash_, fragment = to_url.partition("#")
    rel = posixpath.relpath("/" + to_url, "/" + from_url)
    rel = "./" if rel == "." else rel + "/" if to_url.endswith("/") else rel
    return rel + hash_ + fragment


class Renderer:
    """Renders the Canon's pages from templates; math comes pre-rendered."""

    def __init__(self, canon: Canon, math_html: dict[str, str], overrides: Path | None = None, api_urls=None,
                 signatures=None, trajectories=None, lineage=None, benchmarks=None):
        loaders: list[jinja2.BaseLoader] = []
        if overrides is not None and overrides.is_dir():
            loaders.append(jinja2.FileSystemLoader(str(overrides)))
        loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.canon = canon
        self.math_list = list(math_html.values())
        self.math_ids = {key: i for i, key in enumerate(math_html)}
        self.api_urls = api_urls or {}
        self.signatures = signatures or {}  # zij_class -> (constructor arguments, required ones)
        self.trajectories = trajectories  # zij_canon.trajectories.Trajectories, or None
        self.lineage = lineage  # zij_canon.lineage.Lineage (graph placeholders), or None
        self.benchmarks = benchmarks  # zij_canon.leaderboard.Leaderboard, or None
        self.cite_keys = cite_keys(canon.records)
        from .explorer import category_filter_attributes  # imported here: the explorer module imports this one

        self.env.globals.update(canon=canon, explorer_filter=category_filter_attributes)

    # -- helpers exposed to templates -------------------------------------
    def math(self, text: str, display: bool) -> Markup:
        """A placeholder for the KaTeX HTML of ``text``, filled by :meth:`fill_math`.

        Pages carry placeholders until they are written, so the search indexer
        never parses KaTeX's many spans (measured: most of the build time).
        """
        return Markup(f"<!--zij-math:{self.math_ids[f'{int(display)}{text}']}-->")

    def fill_math(self, html: str) -> str:
        """Replace the math placeholders in a finished page with KaTeX HTML (escaped by KaTeX)."""
        return MATH_PLACEHOLDER.sub(lambda m: self.math_list[int(m.group(1))], html)

    def prose(self, text: str | None) -> Markup:
        """Escape prose, rendering its ``$...$`` pieces as inline math."""
        if not text:
            return Markup("")
        parts = [self.math(piece, False) if is_math else escape(piece) for is_math, piece in latex.split_inline(text)]
        return Markup("").join(parts)

    def _context(self, page_url: str) -> dict:
        return {
            "math": self.math,
            "prose": self.prose,
            "link": lambda target: relative(page_url, target),
            "method_url": method_url,
            "category_url": category_url,
            "family_url": family_url,
            "families_of": lambda record: [self.canon.families[f] for f in record.families],
        }

    # -- pages --------------------------------------------------------------
    def method_page(self, record: Record) -> str:
        """HTML body of a method page."""
        url = method_url(record)
        venue = self.canon.venues[record.venue]
        source_label, source_help = SOURCE_BADGES[record.update_rule.rule_source]
        return self.env.get_template("method.html").render(
            record=record,
            venue=venue,
            categories=[self.canon.categories[c] for c in record.categories],
            families=[self.canon.families[f] for f in record.families],
            links=self.canon.links(record.id),
            source_label=source_label,
            source_help=source_help,
            equations=page_equations(record),
            bibtex=bibtex(record, venue, self.cite_keys[record.id]),
            reference=reference(record, venue),
            use_it=Markup(snippet_html(record, *self.signatures.get(record.zij_class, ((), ()))) or ""),
            api_url=self.api_urls.get(record.zij_class),
            trajectories=self.trajectories_html(record, url),
            benchmarks=self.benchmarks_html(record, url),
            lineage=self.lineage.method(record) if self.lineage else Markup(""),
            **self._context(url),
        )

    def trajectories_html(self, record: Record, url: str) -> Markup:
        """The method's "Trajectories" section (empty without a registered class or plots)."""
        if self.trajectories is None or not record.zij_class:
            return Markup("")
        return self.trajectories.html(record.zij_class.removeprefix("zij."), lambda target: relative(url, target))

    def benchmarks_html(self, record: Record, url: str) -> Markup:
        """The method's "Benchmarks" section: a placeholder that zij.js fills with the class's block (a fragment,
        so the block does not weigh on the page); empty without a registered class or its results."""
        if self.benchmarks is None or not record.zij_class:
            return Markup("")
        slot = self.benchmarks.slot(record.zij_class.removeprefix("zij."), lambda target: relative(url, target))
        return Markup('<h2 id="benchmarks">Benchmarks</h2>\n') + slot if slot else slot

    def category_page(self, category_id: str) -> str:
        category = self.canon.categories[category_id]
        records = sorted(self.canon.in_category(category_id), key=lambda r: (r.year, r.name.lower()))
        return self.env.get_template("category.html").render(
            category=category, records=records, venues=self.canon.venues, api_urls=self.api_urls,
            timeline=self.lineage.timeline(category_id) if self.lineage else Markup(""),
            **self._context(category_url(category_id)),
        )

    def home_page(self) -> str:
        records = self.canon.records
        return self.env.get_template("home.html").render(
            categories=self.canon.ordered_categories(),
            total=len(records),
            implemented=sum(r.zij_class is not None for r in records),
            with_code=sum(bool(r.code) for r in records),
            counts={c: len(self.canon.in_category(c)) for c in self.canon.categories},
            downloads=DOWNLOADS,
            **self._context(""),
        )

    def families_page(self) -> str:
        families = sorted(self.canon.families.values(), key=lambda f: f.title.lower())
        return self.env.get_template("families.html").render(
            families=[(f, self.canon.in_family(f.id)) for f in families], **self._context("families/")
        )

    def family_page(self, family_id: str) -> str:
        """One family: its description and its members' table."""
        family = self.canon.families[family_id]
        records = sorted(self.canon.in_family(family_id), key=lambda r: (r.year, r.name.lower()))
        api_page = f"api/{family_id}/"  # the API page of the family's zij classes, when it has one
        has_api = any(self.api_urls.get(r.zij_class, "").startswith(api_page) for r in records)
        return self.env.get_template("family.html").render(
            family=family, records=records, venues=self.canon.venues, api_urls=self.api_urls,
            api_page=api_page if has_api else None,
            lineage=self.lineage.family(family_id) if self.lineage else Markup(""),
            **self._context(family_url(family_id)),
        )

    def schema_page(self) -> str:
        """Field reference of every record model, from the models' field docstrings."""
        return self.env.get_template("schema.html").render(models=schema_tables(), **self._context("schema/"))

    def api_index_page(self, entries, state=None) -> str:
        """The API index: families of zij's own classes, and torch.optim's registered classes."""
        own = sorted((e for e in entries if not e.builtin), key=lambda e: (e.family, e.name.lower()))
        families = {}
        for e in own:
            families.setdefault(e.family, []).append(e)
        return self.env.get_template("api_index.html").render(
            families=[(self.canon.families[f], members) for f, members in sorted(families.items())],
            builtins=sorted((e for e in entries if e.builtin), key=lambda e: e.name.lower()),
            records={e.public: self.canon.entries[e.canon_id].record for e in entries},
            state={e.public: state.short(e.name) for e in entries} if state is not None else {},
            state_source=Markup(state.source()) if state is not None else "",
            **self._context("api/"),
        )

    def names_index(self) -> list[dict]:
        """The small name/alias index the search box uses to rank exact names first: methods, then families."""
        methods = [
            {
                "name": r.name,
                "aliases": r.aliases,
                "id": r.id,
                "url": method_url(r),
                "category": self.canon.categories[r.categories[0]].title,
                "year": r.year,
            }
            for r in self.canon.records
        ]
        families = [
            {"name": f.title, "aliases": [f.id], "id": f"family:{f.id}", "url": family_url(f.id),
             "category": "Family", "year": None}
            for f in sorted(self.canon.families.values(), key=lambda f: f.id)
        ]
        return methods + families


SCHEMA_MODELS = (
    models.Record, models.Paper, models.UpdateRule, models.Symbol, models.Code,
    models.Hyperparameter, models.Related, models.Category, models.Family, models.Venue,
)


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    text = text or str(annotation).replace("typing.", "").replace("zij_canon.models.", "")
    return re.sub(r" at 0x[0-9a-f]+>", ">", text)  # function addresses change from run to run


def schema_tables() -> list[tuple[str, str, list[tuple[str, str, bool, str]]]]:
    """(model name, model doc, [(field, type, required, description)]) for the schema page."""
    return [
        (
            model.__name__,
            (model.__doc__ or "").strip(),
            [(name, _type_name(f.annotation), f.is_required(), f.description or "") for name, f in model.model_fields.items()],
        )
        for model in SCHEMA_MODELS
    ]
