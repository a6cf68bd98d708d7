"""zij: correct PyTorch optimizers, one interface, each linked to its Canon record.

    >>> import zij
    >>> opt = zij.AdamW(model.parameters(), lr=3e-4)
    >>> zij.list_optimizers("adam*")
    >>> Lion = zij.load_optimizer("lion")

Every optimizer is a ``torch.optim.Optimizer``. torch.optim's classics are
torch's own classes (``zij.AdamW is torch.optim.AdamW``), registered with
their Canon metadata. Importing ``zij`` is cheap: torch and the optimizer
modules load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_API = {"list_optimizers", "load_optimizer", "create_optimizer", "get_entry", "entries"}


def __getattr__(name: str):
    if name in _API:
        from . import _registry

        return getattr(_registry, name)
    if name == "optim":
        import importlib

        return importlib.import_module("zij.optim")
    if name.startswith("_"):
        raise AttributeError(name)
    from . import _registry

    try:
        return _registry.get_entry(name).cls if name.lower() in _registry._names() else _missing(name)
    except ValueError as exc:
        raise AttributeError(f"module 'zij' has no attribute {name!r} ({exc})") from None


def _missing(name: str):
    raise ValueError(f"{name!r} is not a registered name")


def __dir__():
    from . import _registry

    return sorted({*globals(), *_API, "optim", *(e.name for e in _registry.entries())})
