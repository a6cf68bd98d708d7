"""SPDX license checks through the maintained ``license-expression`` package."""

from __future__ import annotations

from functools import lru_cache

NO_ASSERTION = "NOASSERTION"


@lru_cache(maxsize=1)
def _licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def check_license(expression: str) -> str | None:
    """Return a message if ``expression`` is not a valid SPDX expression, else None."""
    if expression == NO_ASSERTION:
        return None
    info = _licensing().validate(expression, strict=True)
    if info.errors or info.invalid_symbols:
        unknown = ", ".join(info.invalid_symbols) or expression
        return (
            f"{unknown!r} is not an SPDX license id or expression (hint: use an id from "
            "https://spdx.org/licenses/, e.g. MIT, Apache-2.0, BSD-3-Clause, or NOASSERTION when unknown)"
        )
    if info.normalized_expression != expression:
        return f"not the SPDX spelling (hint: write the SPDX id exactly as {info.normalized_expression!r})"
    return None
