"""The trajectory plots' SVG: a problem's contour, drawn once and shared, and each path over it.

Both kinds have the same size and the same axes box, so a page lays a path (transparent,
without axes) over its problem's contour; each path file then holds only its line. The
output is deterministic: Agg backend, fixed ``svg.hashsalt``, no date, text kept as text
(``svg.fonttype: none``) in a fixed font, no randomness.
"""

from __future__ import annotations

import html
import math
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

SIZE = (3.2, 3.2)  # inches; SVG points are 1/72 inch
BOX = (0.15, 0.13, 0.8, 0.8)  # axes left, bottom, width, height (figure fractions)
PATH_COLOR = "#c2185b"
RC = {
    "svg.hashsalt": "zij-trajectories",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "path.simplify": True,
    "path.simplify_threshold": 0.5,
    "axes.linewidth": 0.6,
}
METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


def _numpy_function(problem: str):
    if problem == "rosenbrock":
        return lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2, True
    if problem == "rastrigin":
        return lambda x, y: 20 + x**2 - 10 * np.cos(2 * math.pi * x) + y**2 - 10 * np.cos(2 * math.pi * y), False
    raise ValueError(f"no contour for {problem!r}")


def _svg(fig, title: str) -> str:
    from io import StringIO

    out = StringIO()
    fig.savefig(out, format="svg", metadata=METADATA, transparent=True)
    plt.close(fig)
    text = out.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    at = text.index(">", text.index("<svg")) + 1
    return text[:at] + f"\n <title>{html.escape(title)}</title>" + text[at:]


def _figure(view):
    fig = plt.figure(figsize=SIZE)
    ax = fig.add_axes(BOX)
    (x0, x1), (y0, y1) = view
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    return fig, ax


def contour_svg(problem: str, view, start, minimum) -> str:
    """The problem's contour lines in ``view`` ([[x0, x1], [y0, y1]]), its start and its minimum."""
    with plt.rc_context(RC):
        fig, ax = _figure(view)
        fig.patch.set_facecolor("white")
        fig.patch.set_alpha(1.0)
        fn, logarithmic = _numpy_function(problem)
        (x0, x1), (y0, y1) = view
        x, y = np.meshgrid(np.linspace(x0, x1, 97), np.linspace(y0, y1, 97))
        z = fn(x, y)
        levels = np.logspace(-1, 3.5, 10) if logarithmic else [4.0, 12.0, 24.0, 40.0]
        ax.contour(x, y, z, levels=levels, colors="#8a94a6", linewidths=0.5)
        ax.plot(*start, marker="o", color="#1f2937", markersize=4, linestyle="none")
        ax.plot(*minimum, marker="*", color="#1b5e20", markersize=8, linestyle="none")
        ax.set_xlabel("x", labelpad=1)
        ax.set_ylabel("y", labelpad=1)
        ax.tick_params(length=2, pad=1.5)
        return _svg(fig, f"Contours of the {problem.capitalize()} function, start (dot) and minimum (star)")


def thinned(points: list, every: int, view) -> np.ndarray:
    """Every ``every``-th point and the last, clamped to a margin around ``view``."""
    keep = points[::every]
    if (len(points) - 1) % every:
        keep.append(points[-1])
    arr = np.asarray(keep, dtype=float)
    (x0, x1), (y0, y1) = view
    wx, wy = x1 - x0, y1 - y0
    arr[:, 0] = arr[:, 0].clip(x0 - wx, x1 + wx)
    arr[:, 1] = arr[:, 1].clip(y0 - wy, y1 + wy)
    return arr.round(4)


def path_svg(points: list, view, every: int, title: str) -> str:
    """A path on a transparent background, in the contour's axes box, without axes."""
    with plt.rc_context(RC):
        fig, ax = _figure(view)
        ax.set_axis_off()
        arr = thinned(points, every, view)
        ax.plot(arr[:, 0], arr[:, 1], color=PATH_COLOR, linewidth=1.2, solid_joinstyle="round")
        ax.plot(arr[-1, 0], arr[-1, 1], marker="o", markersize=3.5, color=PATH_COLOR, linestyle="none")
        return _svg(fig, title)
