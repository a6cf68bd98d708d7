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
    if name in ("optim", "schedulers"):
        import importlib

        return importlib.import_module(f"zij.{name}")
    if name.startswith("_"):
        raise AttributeError(name)
    from . import _registry

    entry = _registry.public_entries().get(name)
    if entry is None:
        raise AttributeError(f"module 'zij' has no attribute {name!r} (zij.list_optimizers() lists the optimizers)")
    return entry.cls


def __dir__():
    from . import _registry

    return sorted({*globals(), *_API, "optim", "schedulers", *(e.name for e in _registry.entries())})
