"""Checked ``state_dict`` loading for zij optimizers.

torch's ``Optimizer.load_state_dict`` takes any dict with ``state`` and ``param_groups`` and
maps the saved state onto the parameters by position: a state_dict of another optimizer, or
of a model whose layers changed shape, loads without complaint and fails (or silently
computes nonsense) steps later. :class:`CheckedStateDict` makes that fail at load time, with
a message that names the problem:

- the class that saved it, when it is not the class loading it (zij state_dicts carry
  ``"zij_class"``; one without it, saved by torch or by zij before the key existed, is
  checked by content alone);
- a hyperparameter the class needs that no saved group has;
- a state entry the class creates at a parameter's first step that the saved state lacks;
- a state tensor whose shape is not the one the class creates for that parameter.

On any of these errors the optimizer keeps the state it had before the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

#: The key naming the class that saved a state_dict.
CLASS_KEY = "zij_class"


def _fail(optimizer, message: str, hint: str) -> None:
    raise ValueError(f"{type(optimizer).__name__}.load_state_dict: {message}. {hint}")


def check_saved_class(optimizer, state_dict: Any) -> None:
    """Reject a state_dict that is not a mapping or was saved by another zij class."""
    if not isinstance(state_dict, Mapping):
        _fail(optimizer, f"expected a dict, got {type(state_dict).__name__}", "Pass optimizer.state_dict().")
    saved = state_dict.get(CLASS_KEY)
    if saved is not None and saved != type(optimizer).__name__:
        _fail(optimizer, f"this state_dict was saved by {saved}, not by {type(optimizer).__name__}",
              f"Load it into a {saved}, or start this optimizer from a fresh state.")


def check_wrapper(optimizer, state_dict: Any, keys: tuple[str, ...]) -> None:
    """For a wrapper's state_dict: the class that saved it, and the keys the wrapper reads."""
    check_saved_class(optimizer, state_dict)
    missing = [key for key in keys if key not in state_dict]
    if missing:
        _fail(optimizer, f"the state_dict has no {', '.join(map(repr, missing))}",
              "It was saved by another optimizer; load it into that class.")


def check_groups(optimizer, state_dict: Mapping) -> None:
    """Every saved group must carry the hyperparameters of this class (options added later excepted)."""
    for key in ("state", "param_groups"):
        if key not in state_dict:
            _fail(optimizer, f"the state_dict has no {key!r} (its keys: {sorted(map(str, state_dict))})",
                  "Pass the dict returned by optimizer.state_dict().")
    later = set(getattr(optimizer, "option_defaults", {}))
    needed = [name for name in optimizer.defaults if name not in later]
    first_only = getattr(optimizer, "first_group_keys", ())
    for i, group in enumerate(state_dict["param_groups"]):
        missing = [name for name in (*needed, *(first_only if i == 0 else ())) if name not in group]
        if missing:
            _fail(optimizer, f"param_groups[{i}] has no {', '.join(map(repr, missing))}",
                  "The state_dict was saved by another optimizer; load it into that class.")


def check_states(optimizer) -> None:
    """Each loaded parameter state must hold what the class's ``init_state`` creates, in its shapes."""
    init_state = getattr(optimizer, "init_state", None)
    if init_state is None:
        return
    index = 0
    for group in optimizer.param_groups:
        for p in group["params"]:
            saved = optimizer.state.get(p)
            if saved:
                expected: dict = {}
                shaped = optimizer.state_shaped_like(p) if hasattr(optimizer, "state_shaped_like") else p
                with torch.random.fork_rng(devices=[]):
                    init_state(shaped, expected, dict(group))
                for name, value in expected.items():
                    where = f"the state of parameter {index} (shape {tuple(p.shape)})"
                    if name not in saved:
                        _fail(optimizer, f"{where} has no {name!r} (it has {sorted(map(str, saved))})",
                              "The state_dict was saved by another optimizer or for other parameters.")
                    got = saved[name]
                    if isinstance(value, torch.Tensor) and isinstance(got, torch.Tensor) and got.shape != value.shape:
                        _fail(optimizer, f"{where}: {name!r} has shape {tuple(got.shape)}, expected "
                              f"{tuple(value.shape)}", "The parameters differ from those the state_dict was saved for.")
            index += 1


class CheckedStateDict:
    """Mixin for a ``torch.optim.Optimizer`` subclass: tagged ``state_dict``, checked ``load_state_dict``."""

    #: Optimizer-wide quantities a class keeps in its first group (which ``state_dict`` saves).
    first_group_keys: tuple[str, ...] = ()

    def state_dict(self):
        return {**super().state_dict(), CLASS_KEY: type(self).__name__}

    def load_state_dict(self, state_dict):
        check_saved_class(self, state_dict)
        state_dict = {key: value for key, value in state_dict.items() if key != CLASS_KEY}
        check_groups(self, state_dict)
        previous = {"state": self.state, "param_groups": self.param_groups}
        super().load_state_dict(state_dict)
        try:
            check_states(self)
        except ValueError:
            torch.optim.Optimizer.__setstate__(self, previous)  # keep what it had before the call
            raise


def restore_exact(optimizer, state_dict: dict, names: tuple[str, ...]) -> None:
    """After ``torch.optim.Optimizer.load_state_dict`` (which casts floating-point parameters' state to
    their dtype): put back the state entries ``names`` as saved (sign bits and masks are not numbers)."""
    saved = {i: {n: s[n] for n in names if n in s} for i, s in state_dict.get("state", {}).items()}
    ids = [i for group in state_dict["param_groups"] for i in group["params"]]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in zip(ids, params):
        for name, value in saved.get(i, {}).items():
            optimizer.state[p][name] = value.to(device=p.device, copy=True)
