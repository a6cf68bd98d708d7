"""The Canon's record schema: strict pydantic models.

Every field carries a docstring; those docstrings become the descriptions of
the published JSON Schema (``zij-canon schema``) and of the schema page on the
site, so the schema documents itself in one place.

Checks that need only one record live here (field patterns, https links,
arXiv ids, SPDX licenses, LaTeX balance). Checks that need the whole Canon
(related ids, vocabularies, duplicates) live in :mod:`zij_canon.canon`.
"""

from __future__ import annotations

import datetime
import re
from typing import Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from typing_extensions import Annotated

from . import latex

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
ARXIV_NEW = re.compile(r"^(\d{2})(\d{2})\.\d{4,5}$")
ARXIV_OLD = re.compile(r"^[a-z][a-z.-]*(?:\.[A-Z]{2})?/(\d{2})(\d{2})\d{3}$")
DOI_PATTERN = r"^10\.\d{4,9}/\S+$"
UNSAFE_NAME = re.compile(r"[<>&\"{}\\`]")
FIRST_YEAR = 1940


def _prose(value: str) -> str:
    problems = latex.check_inline(value)
    if problems:
        raise ValueError("; ".join(problems))
    return value


Prose = Annotated[str, AfterValidator(_prose)]
"""Plain text of our own; inline math goes between single ``$`` signs."""


class Strict(BaseModel):
    """Base of every Canon model: unknown keys are errors, docstrings describe fields."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, str_strip_whitespace=True)


def _https(url: str) -> str:
    if not url.startswith("https://"):
        raise ValueError("links must use https:// (hint: write the https form of this address)")
    if " " in url or len(url) < 12:
        raise ValueError("not a valid link (hint: no spaces, and a host after https://)")
    return url


def arxiv_year(arxiv_id: str) -> int | None:
    """The year an arXiv identifier was issued in, or None if it is malformed."""
    m = ARXIV_NEW.match(arxiv_id) or ARXIV_OLD.match(arxiv_id)
    if not m or not 1 <= int(m.group(2)) <= 12:
        return None
    yy = int(m.group(1))
    return 1900 + yy if yy >= 91 else 2000 + yy


class Paper(Strict):
    """The publication that introduced the method."""

    title: str = Field(min_length=3)
    """The paper's title as published, without surrounding quotes."""
    url: str
    """An https link to the paper (arXiv abstract page, proceedings page or DOI resolver)."""
    arxiv: str | None = None
    """arXiv identifier without prefix or version, e.g. ``1412.6980`` or ``math/0511040``."""
    doi: str | None = Field(default=None, pattern=DOI_PATTERN)
    """Digital Object Identifier, e.g. ``10.1137/16M1080173`` (no ``https://doi.org/`` prefix)."""
    authors: list[str] = []
    """Author names in publication order, as ``First Last``."""

    _url = field_validator("url")(_https)

    @field_validator("arxiv")
    @classmethod
    def _arxiv(cls, value: str | None) -> str | None:
        if value is not None and arxiv_year(value) is None:
            raise ValueError("malformed arXiv id (hint: expected YYMM.NNNNN (e.g. 1412.6980) or archive/YYMMNNN, no 'arXiv:' prefix, no version)")
        return value


class Symbol(Strict):
    """One symbol that appears in the update rule."""

    symbol: str = Field(min_length=1)
    """The symbol in LaTeX, exactly as it appears in the rule (e.g. ``\\beta_1``)."""
    meaning: Prose = Field(min_length=2)
    """What the symbol stands for, in plain words."""


RuleSource = Literal["paper", "code", "implementation", "sketch"]


class UpdateRule(Strict):
    """The method's update (or, for schedulers, its schedule) in LaTeX."""

    latex: str = Field(min_length=1)
    """Body of a display-math block: it must compile inside ``\\[ ... \\]`` in a plain
    article with only amsmath and amssymb. Use ``\\begin{aligned} ... \\end{aligned}``
    for several lines."""
    rule_source: RuleSource
    """Where the rule comes from: ``paper`` (transcribed from the paper's algorithm),
    ``code`` (transcribed from the official implementation; the notes name the file and
    function), ``implementation`` (what the zij class computes) or ``sketch`` (a careful
    statement of the mechanism, not the paper's exact algorithm; the notes say what it
    leaves out)."""
    symbols: list[Symbol] = Field(min_length=1)
    """Every symbol of the rule with its meaning."""
    notes: Prose | None = None
    """How this rule relates to the paper or code (e.g. which variant it shows)."""

    @field_validator("latex")
    @classmethod
    def _parses(cls, value: str) -> str:
        problems = latex.check(value)
        if problems:
            raise ValueError("; ".join(problems))
        return value


CodeKind = Literal["official", "community"]


class Code(Strict):
    """One public implementation of the method."""

    url: str
    """https link to the repository or file."""
    kind: CodeKind
    """``official`` (by the paper's authors) or ``community``."""
    license: str
    """SPDX license expression of the code (e.g. ``MIT``, ``Apache-2.0``), or
    ``NOASSERTION`` when it is unknown. Never guess."""

    _url = field_validator("url")(_https)

    @field_validator("license")
    @classmethod
    def _spdx(cls, value: str) -> str:
        from .spdx import check_license

        problem = check_license(value)
        if problem:
            raise ValueError(problem)
        return value


class Hyperparameter(Strict):
    """A hyperparameter and its default."""

    name: str = Field(min_length=1)
    """Argument name, as in the zij class or the paper (e.g. ``betas``, ``lr``)."""
    symbol: str | None = None
    """Its symbol in the update rule, in LaTeX."""
    default: Union[bool, int, float, str, list[Union[int, float]], None] = None
    """Default value from the paper or the official code; leave out if there is none."""
    note: Prose | None = None
    """Where the default comes from, or how to tune it."""


RelationKind = Literal["builds-on", "variant-of", "combines", "generalizes", "special-case-of"]


class Related(Strict):
    """A directed link to another Canon record."""

    id: str = Field(pattern=ID_PATTERN)
    """The other record's id."""
    relation: RelationKind
    """How this method relates to the other: ``builds-on``, ``variant-of``,
    ``combines``, ``generalizes`` or ``special-case-of``."""


class Record(Strict):
    """One optimization method of the Canon (one YAML file)."""

    id: str = Field(pattern=ID_PATTERN)
    """Lowercase kebab-case identifier; equal to the file name without ``.yaml``."""
    name: str = Field(min_length=1, max_length=80)
    """Display name, as the paper writes it (e.g. ``AdamW``)."""
    aliases: list[str] = []
    """Other names users search for (e.g. ``decoupled weight decay``)."""
    categories: list[str] = Field(min_length=1)
    """Category ids, primary first; the primary one is the folder the file lives in."""
    families: list[str] = []
    """Family tags from ``canon/families.yaml``."""
    summary: Prose = Field(min_length=20, max_length=900)
    """What the method changes and why, in one to three plain sentences of our own."""
    year: int
    """Year of the publication named by ``venue`` (for preprints, first posting)."""
    venue: str
    """Venue id from ``canon/venues.yaml``."""
    paper: Paper
    """The introducing publication."""
    update_rule: UpdateRule
    """The rule in LaTeX with its symbols and provenance."""
    code: list[Code] = []
    """Public implementations, official first."""
    hyperparameters: list[Hyperparameter] = []
    """Hyperparameters with their defaults."""
    related: list[Related] = []
    """Links to other records (reverse links are derived, not written)."""
    zij_class: str | None = Field(default=None, pattern=r"^zij(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    """Dotted path of the zij implementation (e.g. ``zij.AdamW``), if there is one."""
    notes: Prose | None = None
    """Anything a reader should know: corrections to common listings, naming clashes."""

    @field_validator("name", "aliases")
    @classmethod
    def _safe_names(cls, value):
        for name in [value] if isinstance(value, str) else value:
            if UNSAFE_NAME.search(name):
                raise ValueError(f"{name!r}: names may not contain < > & \" {{ }} \\ or backticks (hint: write the plain name)")
        return value

    @field_validator("year")
    @classmethod
    def _plausible_year(cls, value: int) -> int:
        latest = datetime.date.today().year + 1
        if not FIRST_YEAR <= value <= latest:
            raise ValueError(f"year {value} is not plausible (hint: expected {FIRST_YEAR}..{latest}, the year of the publication)")
        return value


class Category(Strict):
    """One of the Canon's categories (``canon/categories.yaml``)."""

    id: str = Field(pattern=ID_PATTERN)
    """Identifier, also the folder name under ``canon/`` and the URL segment."""
    title: str
    """Display title."""
    intro: str
    """Introduction shown on the category page, in our words."""
    order: int
    """Position in the navigation (ascending)."""


class Family(Strict):
    """A family tag (``canon/families.yaml``)."""

    id: str = Field(pattern=ID_PATTERN)
    """Identifier used in records' ``families``."""
    title: str
    """Display title."""
    description: str
    """One sentence saying what members share."""


VenueKind = Literal["conference", "journal", "workshop", "preprint", "other"]


class Venue(Strict):
    """A publication venue (``canon/venues.yaml``)."""

    id: str = Field(pattern=ID_PATTERN)
    """Identifier used in records' ``venue``."""
    name: str
    """Short display name (e.g. ``ICLR``)."""
    full_name: str
    """Full name of the venue."""
    kind: VenueKind
    """conference, journal, workshop, preprint or other."""
    since: int | None = None
    """First year the venue existed; a record's year cannot be earlier."""
