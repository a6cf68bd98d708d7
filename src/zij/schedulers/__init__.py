"""Learning-rate schedulers: ``torch.optim.lr_scheduler.LRScheduler`` subclasses with closed forms.

    >>> import zij
    >>> [entry.name for entry in zij.schedulers.list_schedulers()]
    ['InverseSqrt', 'PolynomialWithWarmup', 'REX', 'WSD', 'WarmupConstant', 'WarmupCosine', 'WarmupCosineRestarts']

Each scheduler computes its learning rate from the step count alone (a closed form of
``last_epoch`` and each group's initial learning rate), so ``state_dict`` /
``load_state_dict`` resume it exactly. They work with any ``torch.optim.Optimizer``,
zij's included, and with several parameter groups (each group from its own initial rate).
``zij.optim.lr_scheduler`` stays torch's own module.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._schedules import (REX, WSD, InverseSqrt, PolynomialWithWarmup, WarmupConstant, WarmupCosine,
                         WarmupCosineRestarts)

__all__ = ["REX", "WSD", "InverseSqrt", "PolynomialWithWarmup", "SchedulerEntry", "WarmupConstant", "WarmupCosine",
           "WarmupCosineRestarts", "get_scheduler", "list_schedulers"]


@dataclass(frozen=True)
class SchedulerEntry:
    """One registered scheduler."""

    name: str
    """Public name: ``zij.schedulers.<name>``."""
    cls: type
    canon_id: str | None
    """Id of its Canon record; None for a composition of recorded schedules (a linear warm-up
    followed by another schedule), which has no record of its own."""
    nearest: tuple[str, ...] = ()
    """The Canon records of the schedules it composes, where ``canon_id`` is None."""


_ENTRIES = {e.name: e for e in (
    SchedulerEntry("InverseSqrt", InverseSqrt, "inverse-sqrt"),
    SchedulerEntry("PolynomialWithWarmup", PolynomialWithWarmup, None, ("linear-lr", "polynomial-lr")),
    SchedulerEntry("REX", REX, "rex"),
    SchedulerEntry("WSD", WSD, "wsd"),
    SchedulerEntry("WarmupConstant", WarmupConstant, None, ("linear-lr", "untuned-warmup")),
    SchedulerEntry("WarmupCosine", WarmupCosine, None, ("linear-lr", "cosine-annealing-lr")),
    SchedulerEntry("WarmupCosineRestarts", WarmupCosineRestarts, "sgdr"),
)}


def list_schedulers() -> list[SchedulerEntry]:
    """The registered schedulers, sorted by name."""
    return [_ENTRIES[name] for name in sorted(_ENTRIES)]


def get_scheduler(name: str) -> SchedulerEntry:
    """The entry called ``name`` (case-insensitive)."""
    for key, entry in _ENTRIES.items():
        if key.lower() == name.lower():
            return entry
    raise KeyError(f"no scheduler {name!r} (zij.schedulers.list_schedulers() lists them)")
