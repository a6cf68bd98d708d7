"""A Griffe extension: a docstring's ``Example:`` section is read as an examples section.

Google-style docstrings know ``Examples:`` (plural), whose ``>>>`` lines Griffe turns
into code; the singular ``Example:`` becomes an admonition whose ``>>>`` lines
Markdown reads as nested quotes. zij's classes write ``Example:``, so the API pages
rename that header before the docstring is parsed, and the examples render as
highlighted, copyable code. Listed under the python handler's ``extensions`` in
``mkdocs.yml``.
"""

from __future__ import annotations

import re

import griffe

SINGULAR_HEADER = re.compile(r"^Example:[ \t]*$", re.M)


def plural_examples(text: str) -> str:
    """``text`` with each ``Example:`` section header (alone on a line, not indented) written ``Examples:``."""
    return SINGULAR_HEADER.sub("Examples:", text)


class ExampleSections(griffe.Extension):
    """Reads ``Example:`` sections of docstrings as ``Examples:`` (code, not quotes)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plural_examples(obj.docstring.value)
