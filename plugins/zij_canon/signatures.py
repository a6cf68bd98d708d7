"""``python -m zij_canon.signatures``: zij's registry catalog, with each class's constructor arguments.

Run in a subprocess by :class:`zij_canon.api.Catalog` (the build itself never imports
torch). Each entry of ``zij._registry.catalog()`` gains ``arguments`` (the names a
constructor takes, in order, without ``*args``/``**kwargs``) and ``required`` (those
without a default), which the method pages' "Use it" snippets are built from.
"""

from __future__ import annotations

import inspect
import json
import sys

VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def with_arguments(catalog: list[dict], classes: dict[str, type]) -> list[dict]:
    """``catalog`` with ``arguments`` and ``required`` added from the signature of each entry's class."""
    out = []
    for item in catalog:
        parameters = [p for p in inspect.signature(classes[item["name"]]).parameters.values() if p.kind not in VARIADIC]
        out.append({
            **item,
            "arguments": [p.name for p in parameters],
            "required": [p.name for p in parameters if p.default is inspect.Parameter.empty],
        })
    return out


def main() -> None:
    from zij._registry import catalog, entries

    json.dump(with_arguments(catalog(), {e.name: e.cls for e in entries()}), sys.stdout)


if __name__ == "__main__":
    main()
