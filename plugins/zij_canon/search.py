"""Full-text search entries for generated pages, made faster than Material makes them.

Material's search plugin splits each page into sections (one per heading with
an id) with a subclass of ``html.parser.HTMLParser`` whose callbacks compare
``Element`` objects in Python; on the Canon's generated pages that was the
largest single cost of a build. Those pages come from our own autoescaping
templates, so they are well formed: :class:`LeanParser` tokenizes them with one
regular expression and runs the same algorithm as Material's ``Parser`` on
plain strings. It produces the same sections, hence the same search index; the
tests compare both on every generated page. Pages with anything that Material
would skip (scripts, styles, objects, ``data-search-exclude``, line-number
tables) or markup other than elements and comments go to Material's own parser.

With a :class:`SectionCache`, the sections of a page whose HTML has not changed
since an earlier build are taken from the build cache instead of being parsed.
"""

from __future__ import annotations

import re
from collections import Counter
from html import escape, unescape

from material.plugins.search.plugin import Element, Parser, Section, void

from .cache import DigestCache

TOKEN = re.compile(
    r"<!--.*?-->"  # a comment (the math placeholders): ignored, as by HTMLParser
    r"|<(/?)([a-zA-Z][^\s/>]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)>"  # a start or end tag
    r"|[^<]+|<",  # text, or a '<' that starts no tag or comment (malformed: see LeanParser.feed)
    re.S,
)
ATTR = re.compile(r"([^\s=/>]+)(?:\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+)))?")
# Left to Material's parser: what it skips, elements whose content HTMLParser may not parse
# as markup (this differs between Python versions), and markup other than elements and comments
SKIPPED = re.compile(
    r"<(?:script|style|object|textarea|title|xmp|iframe|noembed|noframes|noscript|plaintext)\b"
    r"|data-search-exclude|linenodiv|<!(?!--)|<\?",
    re.I,
)
HEADINGS = {f"h{x}" for x in range(1, 7)}
KEEP = {"p", "code", "pre", "li", "ol", "ul", "sub", "sup"}  # Material's Parser().keep (checked by a test)


def _attrs(text: str) -> dict[str, str | None]:
    """A start tag's attributes, as HTMLParser reports them (names lowercased, values unescaped)."""
    out = {}
    for m in ATTR.finditer(text):
        name, *values = m.groups()
        value = next((v for v in values if v is not None), None)
        out[name.lower()] = None if value is None else unescape(value)  # the last one wins, as in dict(attrs)
    return out


class Unsupported(ValueError):
    """The HTML is not plain elements, text and comments; :func:`parse` leaves it to Material."""


class LeanParser:
    """Material's search ``Parser`` for pages where it skips nothing: ``feed``, then read ``data``."""

    def __init__(self):
        self.data: list[Section] = []
        self.section: Section | None = None
        self.stack: list[tuple[str, bool]] = []  # open elements: (tag, is a heading's permalink)
        self.open: Counter[str] = Counter()  # open elements by tag (Material compares elements by tag)
        self.permalinks = 0

    def feed(self, html: str) -> None:
        for m in TOKEN.finditer(html):
            close, tag, rest = m.group(1, 2, 3)
            if tag is None:
                text = m.group()
                if text == "<":  # HTMLParser's recovery from malformed markup is not imitated
                    raise Unsupported("a '<' that starts no tag")
                if not text.startswith("<!--"):
                    self.handle_data(unescape(text) if "&" in text else text)
            elif close:
                self.handle_endtag(tag.lower())
            else:
                tag = tag.lower()
                self.handle_starttag(tag, rest)
                if rest.endswith("/"):
                    self.handle_endtag(tag)

    def _target(self) -> list[str]:
        """Where text goes: the section's title while its heading is open, else its text."""
        return self.section.title if self.open[self.section.el.tag] else self.section.text

    def handle_starttag(self, tag: str, rest: str) -> None:
        if tag in void:
            return
        attrs = _attrs(rest) if tag in HEADINGS or tag == "a" else {}
        permalink = tag == "a" and attrs.get("class") == "headerlink"
        self.stack.append((tag, permalink))
        self.open[tag] += 1
        self.permalinks += permalink
        if tag in HEADINGS and "id" in attrs:
            depth = len(self.stack)
            if tag != "h1" and not self.data:
                self.data.append(Section(Element("hx"), depth))
            self.section = Section(Element(tag, attrs), depth)
            if self.data:
                self.section.id = attrs["id"]
            self.data.append(self.section)
        if self.section is None:
            self.section = Section(Element("hx"))
            self.data.append(self.section)
        if tag in KEEP:
            self._target().append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            return
        if self.section.depth > len(self.stack):  # leaving the element a heading was nested in
            for section in reversed(self.data):
                if section.depth <= len(self.stack):
                    self.section.depth = float("inf")
                    self.section = section
                    break
        _, permalink = self.stack.pop()
        self.open[tag] -= 1
        self.permalinks -= permalink
        if tag in KEEP:
            data = self._target()
            index = data.index(f"<{tag}>")
            if all(item.isspace() for item in data[index + 1:]):
                del data[index:]  # an element with no text is dropped
            else:
                data.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        in_pre = self.open["pre"] > 0
        if not in_pre:
            data = " " if data.isspace() else data.replace("\n", " ")
        if self.section is None:
            self.section = Section(Element("hx"))
            self.data.append(self.section)
        if self.open[self.section.el.tag]:
            if not self.permalinks:
                self.section.title.append(escape(data, quote=False))
        elif data.isspace():
            text = self.section.text
            if not text or not text[-1].isspace() or in_pre:
                text.append(data)
        else:
            self.section.text.append(escape(data, quote=False))


def parse(html: str) -> LeanParser | Parser:
    """The sections of ``html`` as Material's search parser finds them (in ``.data``)."""
    if not SKIPPED.search(html):
        try:
            parser = LeanParser()
            parser.feed(html)
            return parser
        except Unsupported:
            pass
    parser = Parser()
    parser.feed(html)
    parser.close()
    return parser


def _is_rows(value) -> bool:
    return isinstance(value, list) and all(isinstance(row, tuple) and len(row) == 6 for row in value)


class SectionCache(DigestCache):
    """The sections of pages by the digest of the page's HTML, each section as a row
    ``(tag, attrs, id, title, text, depth)``."""

    def __init__(self, cache_dir):
        super().__init__(cache_dir, "search", _is_rows)


def sections(html: str, cache: SectionCache | None = None) -> list[Section]:
    """The sections of ``html`` as Material's search parser finds them, from ``cache`` when it has them."""
    if cache is None:
        return parse(html).data
    digest = cache.digest(html.encode())
    rows = cache.get(digest)
    if rows is None:
        rows = [(s.el.tag, s.el.attrs, s.id, s.title, s.text, s.depth) for s in parse(html).data]
        cache.put(digest, rows)
    out = []
    for tag, attrs, id_, title, text, depth in rows:  # fresh objects: Material may modify them
        section = Section(Element(tag, dict(attrs)), depth)
        section.id, section.title, section.text = id_, list(title), list(text)
        out.append(section)
    return out


def index_page(index, page, cache: SectionCache | None = None) -> None:
    """Add ``page``'s sections to Material's search ``index``, as its plugin would."""
    for section in sections(page.content, cache):
        if not section.is_excluded():
            index.create_entry_for_section(section, page.toc, page.url, page)
