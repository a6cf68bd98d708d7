"""``zij.optim``: the same namespace as ``zij``, plus ``lr_scheduler`` (torch's)."""

from __future__ import annotations

from torch.optim import lr_scheduler  # noqa: F401  (re-exported)


def __getattr__(name: str):
    import zij

    return getattr(zij, name)
