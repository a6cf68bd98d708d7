"""BibTeX entries for Canon records."""

from __future__ import annotations

import re
import unicodedata

from .models import Record, Venue

SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_"}
# Symbols a plain pdflatex text font lacks, written as math so the entry compiles anywhere
# (accented letters are left as UTF-8, which LaTeX reads natively since 2018).
MATH_SYMBOLS = {
    "\u03b1": r"$\alpha$", "\u03b2": r"$\beta$", "\u03b3": r"$\gamma$", "\u03b5": r"$\varepsilon$",
    "\u03b7": r"$\eta$", "\u03bb": r"$\lambda$", "\u03bc": r"$\mu$", "\u03c3": r"$\sigma$",
    "\u2113": r"$\ell$", "\u221e": r"$\infty$", "\u00b2": r"$^2$", "\u22a5": r"$\perp$",
}
ENTRY_TYPES = {"conference": "inproceedings", "workshop": "inproceedings", "journal": "article"}


def _tex_escape(text: str) -> str:
    return "".join(SPECIAL.get(c) or MATH_SYMBOLS.get(c, c) for c in text)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def cite_key(record: Record) -> str:
    """``lastname2015adam``-style key; falls back to the record id."""
    first = record.paper.authors[0].split()[-1] if record.paper.authors else ""
    word = next((w for w in re.findall(r"[A-Za-z0-9]+", _ascii(record.name))), record.id)
    return re.sub(r"[^a-z0-9]", "", f"{_ascii(first)}{record.year}{word}".lower()) or record.id


def cite_keys(records: list[Record]) -> dict[str, str]:
    """Record id -> its key, unique across ``records``: papers sharing a key get a, b, ... in id order."""
    by_key: dict[str, list[str]] = {}
    for record in sorted(records, key=lambda r: r.id):
        by_key.setdefault(cite_key(record), []).append(record.id)
    keys = {}
    for key, ids in by_key.items():
        for i, rid in enumerate(ids):
            keys[rid] = key if len(ids) == 1 else f"{key}{_suffix(i)}"
    return keys


def _suffix(i: int) -> str:
    """a, b, ..., z, aa, ab, ...: the suffix of the i-th paper sharing a key."""
    return _suffix(i // 26 - 1) + chr(97 + i % 26) if i >= 26 else chr(97 + i)


def reference(record: Record, venue: Venue) -> str:
    """The paper as a plain-text reference: authors, title, venue and year, then its identifiers."""
    authors = record.paper.authors
    names = ", ".join(authors[:-1]) + " and " + authors[-1] if len(authors) > 1 else "".join(authors)
    parts = [f"{names}." if names else "", f"{record.paper.title.rstrip('.')}.", f"{venue.full_name}, {record.year}."]
    if record.paper.arxiv:
        parts.append(f"arXiv:{record.paper.arxiv}.")
    parts.append(f"https://doi.org/{record.paper.doi}" if record.paper.doi else record.paper.url)
    return " ".join(p for p in parts if p)


def bibtex(record: Record, venue: Venue, key: str | None = None) -> str:
    """A BibTeX entry for the record's paper, under ``key`` (its :func:`cite_key` when not given)."""
    kind = ENTRY_TYPES.get(venue.kind, "misc")
    fields = [("title", "{" + _tex_escape(record.paper.title) + "}")]
    if record.paper.authors:
        fields.append(("author", _tex_escape(" and ".join(record.paper.authors))))
    if kind == "inproceedings":
        fields.append(("booktitle", _tex_escape(venue.full_name)))
    elif kind == "article":
        fields.append(("journal", _tex_escape(venue.full_name)))
    elif venue.kind != "preprint":
        fields.append(("howpublished", _tex_escape(venue.full_name)))
    fields.append(("year", str(record.year)))
    if record.paper.arxiv:
        fields += [("eprint", record.paper.arxiv), ("archivePrefix", "arXiv")]
    if record.paper.doi:
        fields.append(("doi", record.paper.doi))
    fields.append(("url", record.paper.url))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key or cite_key(record)},\n{body}\n}}"
