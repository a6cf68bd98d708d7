"""Reading YAML with line numbers, and turning pydantic errors into Problems.

Every problem names the file, the line and the field, and says how to fix it,
so that ``zij-canon validate`` output can be clicked through in an editor.
"""

from __future__ import annotations

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
}


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


def load_yaml(path: Path, display: str) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """Parse ``path``; return (data, node tree, problems)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, None, [Problem(display, 1, "<file>", f"not UTF-8 ({exc.reason}); save the file as UTF-8")]
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        return None, None, [Problem(display, line, "<yaml>", f"malformed YAML: {problem}; check indentation and quoting")]
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


def field_name(loc: tuple) -> str:
    """Dotted field path: ``code[0].license``."""
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "<record>"


def problems_from(exc: ValidationError, display: str, node: yaml.Node | None) -> list[Problem]:
    """Convert a pydantic ValidationError into located Problems."""
    out = []
    for err in exc.errors():
        loc = tuple(k for k in err["loc"] if not (isinstance(k, str) and k.startswith("function-")))
        message = err["msg"].removeprefix("Value error, ")
        hint = HINTS.get(err["type"])
        if err["type"] == "literal_error" and "ctx" in err:
            hint = f"use one of {err['ctx'].get('expected')}"
        if hint:
            message = f"{message} (hint: {hint})"
        out.append(Problem(display, line_of(node, loc), field_name(loc), message))
    return out


def validate(model: type[BaseModel], data: Any, display: str, node) -> tuple[BaseModel | None, list[Problem]]:
    """Validate ``data`` against ``model``; return (instance or None, problems)."""
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from(exc, display, node)
