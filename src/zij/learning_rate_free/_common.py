"""Pieces shared by the learning-rate-free classes of this package (private: not a registering module)."""

from __future__ import annotations

import math


def check_growth_rate(value: float, name: str = "growth_rate") -> None:
    """A cap on the growth of a distance estimate: a number >= 1, ``math.inf`` for none."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 1:
        raise ValueError(f"Invalid {name}: {value!r} (expected a number >= 1, or math.inf for no cap)")
