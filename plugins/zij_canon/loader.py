"""Reading YAML with line numbers, and turning pydantic errors into Problems.

Every problem names the file, the line and the field, and says how to fix it,
so that ``zij-canon validate`` output can be clicked through in an editor.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: the same YAML, faster

HINTS = {
    "extra_forbidden": "remove this key or fix its spelling; the allowed keys are in the schema (zij-canon schema)",
    "missing": "add this required field",
    "string_pattern_mismatch": "see the pattern in the schema",
    "literal_error": "use one of the allowed values",
    "too_short": "this list or text is too short",
    "too_long": "shorten it",
    "string_too_short": "write more: this text is too short",
    "string_too_long": "shorten it",
    "string_type": "write text here (quote it if YAML reads it as a number, date or boolean)",
    "int_type": "write a whole number here, without quotes",
    "int_parsing": "write a whole number here, without quotes",
    "int_from_float": "write a whole number here, without a fractional part",
    "float_type": "write a number here",
    "float_parsing": "write a number here",
    "bool_type": "write true or false",
    "bool_parsing": "write true or false",
    "list_type": "write a YAML list here (- item lines, or [a, b])",
    "dict_type": "write a mapping of keys and values here (key: value lines), as in the schema",
    "model_type": "write a mapping of keys and values here (key: value lines), as in the schema",
    "model_attributes_type": "write a mapping of keys and values here (key: value lines), as in the schema",
    "none_required": "leave this field out",
    "recursion_loop": "write the value out without references",
    "invalid_key": "keys are field names: remove this key, or quote it if it is meant as text",
}
GENERIC_HINT = "see this field's description in the schema (zij-canon schema)"


@dataclass(frozen=True, order=True)
class Problem:
    """One validation problem, located in a file."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class CanonError(Exception):
    """Raised when the Canon does not validate; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


MAX_FILE_BYTES = 64 * 1024
"""A record file larger than this is refused before it is parsed."""
MAX_VOCABULARY_BYTES = 1024 * 1024
"""The same for a vocabulary file (``venues.yaml`` lists hundreds of venues)."""
MAX_SCALAR_CHARS = 6000
"""No text value of a record may be longer (the longest field, ``notes``, is a few paragraphs)."""
MAX_DEPTH = 12
"""How deeply mappings and lists may nest; the schema needs four levels."""
# Characters that never belong in a record: control characters other than newline
# and tab, format characters (bidi overrides, zero-width joiners), surrogates,
# private-use and unassigned code points, and the Unicode line/paragraph separators.
BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
MAX_NODE_PROBLEMS = 20
"""Structural problems reported per file at most (an alias bomb would otherwise list thousands)."""
STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}


ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _bad_characters(text: str) -> str:
    """The code points of ``text`` in BAD_CATEGORIES (newline and tab allowed), as ``U+XXXX``; empty if none."""
    if text.isascii():
        if not ASCII_CONTROL.search(text):
            return ""
        bad = sorted(set(ASCII_CONTROL.findall(text)))
    else:
        bad = sorted(c for c in set(text) if c not in "\n\t" and unicodedata.category(c) in BAD_CATEGORIES)
    return ", ".join(f"U+{ord(c):04X}" for c in bad[:5])


def _tag_problems(text: str, display: str) -> list[Problem]:
    """Explicit YAML tags (``!!python/object``, ``!!binary``, ``!custom``): none is allowed in the Canon."""
    if "!" not in text:  # no tag without one
        return []
    out = []
    try:
        for token in yaml.scan(text, Loader=LOADER):
            if isinstance(token, yaml.TagToken):
                handle, suffix = token.value
                out.append(Problem(display, token.start_mark.line + 1, "<yaml>", (
                    f"YAML tag {(handle or '') + suffix!r} is not allowed "
                    "(hint: write plain YAML values; remove the tag, and quote the value if it should be text)")))
    except yaml.YAMLError:  # reported by the parser
        return []
    return out


def _node_problems(root: yaml.Node, display: str) -> list[Problem]:
    """What YAML allows but a record must not hold, found on the node tree before anything is constructed.

    Anchors and aliases (so no alias bomb is ever expanded), duplicate keys (YAML
    keeps the last silently), oversized text, unprintable characters, odd tags
    and too deep nesting.
    """
    out: list[Problem] = []
    seen: set[int] = set()
    aliased: set[int] = set()
    stack: list[tuple[yaml.Node, tuple, int, int]] = [(root, (), 1, 1)]  # node, field path, depth, line that led here

    def add(node, loc, message, hint, line=None):
        line = line or node.start_mark.line + 1
        out.append(Problem(display, line, field_name(loc), f"{message} (hint: {hint})"))

    while stack and len(out) < MAX_NODE_PROBLEMS:
        node, loc, depth, via = stack.pop()
        if id(node) in seen:  # an alias: the node's own mark is where its anchor is
            if id(node) not in aliased:  # once per anchor: an alias bomb names each level once
                aliased.add(id(node))
                add(node, loc, "YAML anchors and aliases (&name, *name, <<) are not allowed in the Canon",
                    "write the value out in full where it is used", via)
            continue
        seen.add(id(node))
        if depth > MAX_DEPTH:
            add(node, loc, f"nested more than {MAX_DEPTH} levels deep", "records need at most four levels; check the indentation")
            continue
        if node.tag not in STANDARD_TAGS:
            add(node, loc, f"values of type {node.tag!r} are not allowed", "write plain text, numbers, lists and mappings")
            continue
        if isinstance(node, yaml.ScalarNode):
            if len(node.value) > MAX_SCALAR_CHARS:
                add(node, loc, f"text of {len(node.value)} characters is too long (at most {MAX_SCALAR_CHARS})",
                    "shorten it; the site shows a summary, not a paper")
            elif bad := _bad_characters(node.value):
                add(node, loc, f"unprintable or invisible characters ({bad})",
                    "remove them; write plain text, and LaTeX macros for symbols in math")
        elif isinstance(node, yaml.SequenceNode):
            line = node.start_mark.line + 1
            stack.extend((item, (*loc, i), depth + 1, line) for i, item in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            keys: dict = {}
            children = []
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:merge":
                    add(key, loc, "YAML merge keys (<<) are not allowed in the Canon", "write the keys out in full")
                    continue
                if name is not None and name in keys:
                    add(key, (*loc, name), f"duplicate key {name!r} (also on line {keys[name]})",
                        "keep one of them; YAML would silently use the last")
                elif name is not None:
                    keys[name] = key.start_mark.line + 1
                line = key.start_mark.line + 1
                children += [(key, (*loc, name if name is not None else "<key>"), depth + 1, line), (value, (*loc, name), depth + 1, line)]
            stack.extend(reversed(children))
    return out


def load_yaml(path: Path, display: str, max_bytes: int = MAX_FILE_BYTES) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """Parse ``path``; return (data, node tree, problems).

    Nothing a file holds raises: unreadable files, bad UTF-8, malformed YAML,
    tags, aliases, duplicate keys, huge or unprintable text all come back as
    located problems, and no value is constructed from a file that has any.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, None, [Problem(display, 1, "<file>", f"cannot be read ({reason}) (hint: make it a plain, readable file or remove it)")]
    if len(raw) > max_bytes:
        return None, None, [Problem(display, 1, "<file>", (
            f"{len(raw)} bytes is too large for a Canon file (at most {max_bytes}) "
            "(hint: records are short; move long text elsewhere or shorten it)"))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, None, [Problem(display, line, "<file>", f"not UTF-8 ({exc.reason} at byte {exc.start}) (hint: save the file as UTF-8)")]
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        problems = _tag_problems(text, display) or (_node_problems(node, display) if node is not None else [])
        if problems:
            return None, None, problems
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        if mark is None and isinstance(getattr(exc, "position", None), int):  # a reader error: a character offset
            line = text[: exc.position].count("\n") + 1
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        return None, None, [Problem(display, line, "<yaml>", f"malformed YAML: {problem} (hint: check indentation and quoting)")]
    except RecursionError:  # the pure-Python parser on absurd nesting
        return None, None, [Problem(display, 1, "<yaml>", "malformed YAML: nested too deeply (hint: check the brackets and indentation)")]
    finally:
        loader.dispose()
    return data, node, []


def line_of(node: yaml.Node | None, loc: tuple) -> int:
    """Line (1-based) of the deepest node reachable along ``loc``."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    line, node = k.start_mark.line + 1, v
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


PLAIN_KEY = re.compile(r"^[A-Za-z0-9_<>-]{1,60}$")


def field_name(loc: tuple) -> str:
    """Dotted field path: ``code[0].license``; odd keys (spaces, colons, newlines, very long) are quoted and cut."""
    out = ""
    for key in loc:
        if isinstance(key, int) and not isinstance(key, bool):
            out += f"[{key}]"
        elif isinstance(key, str) and PLAIN_KEY.match(key):
            out += f".{key}" if out else key
        else:
            text = repr(key if len(str(key)) <= 60 else f"{str(key)[:40]}...")
            out += f"[{text}]"
    return out or "<record>"


def problems_from(exc: ValidationError, display: str, node: yaml.Node | None) -> list[Problem]:
    """Convert a pydantic ValidationError into located Problems."""
    out = []
    for err in exc.errors():
        loc = tuple(k for k in err["loc"] if not (isinstance(k, str) and k.startswith("function-")))
        message = err["msg"].removeprefix("Value error, ")
        if "(hint: " not in message:  # our validators write their own hints
            hint = HINTS.get(err["type"]) or GENERIC_HINT
            if err["type"] == "literal_error" and "ctx" in err:
                hint = f"use one of {err['ctx'].get('expected')}"
            message = f"{message} (hint: {hint})"
        out.append(Problem(display, line_of(node, loc), field_name(loc), message))
    return out


def validate(model: type[BaseModel], data: Any, display: str, node) -> tuple[BaseModel | None, list[Problem]]:
    """Validate ``data`` against ``model``; return (instance or None, problems)."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc, display, node)
