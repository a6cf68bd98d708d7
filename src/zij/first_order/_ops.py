"""Elementwise operations the wave-2 first-order rules need that zij.blocks and TensorList lack.

Each takes a tensor or a :class:`~zij._tensorlist.TensorList` and gives the same numbers for both
(torch's multi-tensor kernels, or the per-tensor method), like the blocks. Private to this package.
"""

from __future__ import annotations

import torch

from .._tensorlist import TensorList, _arg


def maximum_(x, other):
    """Elementwise maximum in place: ``x <- max(x, other)``."""
    if isinstance(x, TensorList):
        torch._foreach_maximum_(x.tensors, _arg(other))
        return x
    return torch.maximum(x, other, out=x)


def pow_(x, exponent: float):
    """``x <- x ** exponent`` in place."""
    if isinstance(x, TensorList):
        torch._foreach_pow_(x.tensors, exponent)
        return x
    return x.pow_(exponent)


def map_(fn, x, *others):
    """``fn(t, *others_t)`` per tensor (a tensor: called once), for per-tensor reductions."""
    if isinstance(x, TensorList):
        return x.map(fn, *others)
    return fn(x, *others)


def nan_to_zero_(x):
    """Entries that are NaN set to zero, in place (infinities are kept)."""
    if isinstance(x, TensorList):
        for t in x:
            torch.nan_to_num_(t, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
        return x
    return torch.nan_to_num_(x, nan=0.0, posinf=float("inf"), neginf=float("-inf"))
