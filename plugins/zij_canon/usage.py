"""The "Use it" snippet of a method page: import zij and construct the record's class.

The snippet passes the record's stated defaults by keyword, for the hyperparameters
that are arguments of the class's constructor (names matched as
``tests/test_record_class_agreement.py`` matches them). The arguments come from the
registry catalog (:mod:`zij_canon.signatures`), so the build never imports torch. A
class whose first argument is not ``params`` wraps an optimizer, which the snippet
builds first; a required argument the record gives no default for is left as ``...``.
"""

from __future__ import annotations

import math

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from .models import Record

ONE_LINE = 88  # longer calls put one argument on each line
BASE_OPTIMIZER = "torch.optim.SGD(model.parameters(), lr=0.1)"  # what a wrapper's snippet wraps
_FORMATTER = HtmlFormatter(cssclass="highlight", wrapcode=True)
_LEXER = PythonLexer()


def _literal(value) -> str:
    """A record default as Python source (a list of numbers becomes a tuple, as constructors take)."""
    if isinstance(value, list):
        return "(" + ", ".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    return repr(value)


def keyword_arguments(record: Record, arguments: tuple[str, ...], required: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, Python source) of each stated default that is a constructor argument, then ``...`` for each
    required argument (after the first) that the record gives no default for."""
    stated = [(h.name, _literal(h.default)) for h in record.hyperparameters if h.default is not None and h.name in arguments[1:]]
    named = {name for name, _ in stated}
    return stated + [(name, "...") for name in required[1:] if name not in named]


def snippet(record: Record, arguments: tuple[str, ...] = (), required: tuple[str, ...] = ()) -> str | None:
    """Python source that imports zij and constructs the record's class (with its constructor's
    ``arguments`` and ``required`` ones), or None for a record without a class or arguments."""
    if record.zij_class is None or not arguments:
        return None
    lines = ["import zij"]
    first = "model.parameters()"
    if arguments[0] != "params":  # a wrapper: its first argument is the optimizer it wraps
        lines = ["import torch", "import zij", "", f"base = {BASE_OPTIMIZER}"]
        first = "base"
    args = [first, *(f"{name}={value}" for name, value in keyword_arguments(record, arguments, required))]
    call = f"optimizer = {record.zij_class}({', '.join(args)})"
    if len(call) > ONE_LINE:
        call = f"optimizer = {record.zij_class}(\n" + "".join(f"    {a},\n" for a in args) + ")"
    return "\n".join(lines) + "\n\n" + call + "\n"


def snippet_html(record: Record, arguments: tuple[str, ...] = (), required: tuple[str, ...] = ()) -> str | None:
    """The snippet highlighted by Pygments (escaped by it), in the markup Material styles and copies."""
    source = snippet(record, arguments, required)
    return None if source is None else highlight(source, _LEXER, _FORMATTER)
