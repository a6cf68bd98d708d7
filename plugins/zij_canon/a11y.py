"""Small accessibility repairs of the theme's own markup, applied to every page as it is written.

Material's search box is a ``role="dialog"`` element with no accessible name,
which axe-core reports as a serious violation (``aria-dialog-name``), and its
``role="search"`` landmark is unnamed, so it cannot be told from a page's own
search landmark (the explorer's filters; ``landmark-unique``). The repairs
name both. Each is an exact-string replacement, so a theme version that
changes the markup leaves the page untouched, and the axe-core browser test
(``tests/test_accessibility.py``) reports the violation again.
"""

from __future__ import annotations

REPAIRS = (
    ('<div class="md-search" data-md-component="search" role="dialog">',
     '<div class="md-search" data-md-component="search" role="dialog" aria-label="Search">'),
    ('<div class="md-search__inner" role="search">', '<div class="md-search__inner" role="search" aria-label="Site search">'),
)


def repair(html: str) -> str:
    """``html`` with the theme's unnamed search dialog and search landmark given names."""
    for old, new in REPAIRS:
        html = html.replace(old, new, 1)
    return html
