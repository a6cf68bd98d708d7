"""The base class of zij's own optimizers, and hyperparameter checks.

A zij optimizer is a ``torch.optim.Optimizer`` whose class validates
hyperparameters and holds state, and whose math lives in a plain function in
the same module (``lion_update(...)``), so the code reads like the rule in the
method's Canon record. :class:`ZijOptimizer` does the bookkeeping shared by
all of them: evaluating the closure, skipping parameters without gradients,
rejecting sparse and complex gradients, ``maximize``, and lazy state creation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer


def check_lr(lr: float, name: str = "lr") -> None:
    """``lr`` must be a finite number >= 0."""
    if isinstance(lr, torch.Tensor):
        lr = lr.item()
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"Invalid {name}: {lr!r} (expected a finite number >= 0)")


def check_nonnegative(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number >= 0)")


def check_positive(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number > 0)")


def check_unit(value: float, name: str, *, closed: bool = False) -> None:
    """``value`` must lie in [0, 1) (or [0, 1] with ``closed``)."""
    ok = isinstance(value, (int, float)) and (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0)
    if not ok:
        raise ValueError(f"Invalid {name}: {value!r} (expected a number in [0, 1{']' if closed else ')'})")


def check_betas(betas: Iterable[float], count: int = 2, name: str = "betas") -> None:
    betas = tuple(betas)
    if len(betas) != count:
        raise ValueError(f"Invalid {name}: {betas!r} (expected {count} values)")
    for i, beta in enumerate(betas):
        check_unit(beta, f"{name}[{i}]")


def check_int(value: int, name: str, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")


def hyperparameters(*, n_betas: int | None = 2, **values: Any) -> dict[str, Any]:
    """Check the hyperparameters many optimizers share and return ``values`` as the defaults dict.

    The shared names are checked in the order given: ``lr`` with :func:`check_lr`; ``betas``, stored
    as a tuple, with :func:`check_betas` for ``n_betas`` values (``None``: as many as given);
    ``momentum`` must lie in [0, 1); ``eps`` and ``weight_decay`` must be >= 0. Other names pass
    through unchanged: the class checks them itself, with the ``check_*`` helpers.

    Example:
        >>> hyperparameters(lr=1e-3, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0, maximize=False)
        {'lr': 0.001, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0.0, 'maximize': False}
    """
    defaults = dict(values)
    for name, value in values.items():
        if name == "lr":
            check_lr(value)
        elif name == "betas":
            defaults["betas"] = betas = tuple(value)
            check_betas(betas, count=len(betas) if n_betas is None else n_betas)
        elif name == "momentum":
            check_unit(value, "momentum")
        elif name in ("eps", "weight_decay"):
            check_nonnegative(value, name)
    return defaults


class ZijOptimizer(Optimizer):
    """Shared bookkeeping for zij optimizers.

    Subclasses set ``state_names`` (per-parameter tensors created as zeros)
    and implement :meth:`update` for one parameter. Groups may carry a
    ``maximize`` flag; the gradient is then negated before ``update``.
    """

    #: Names of the per-parameter state tensors, created like the parameter at the first step.
    state_names: tuple[str, ...] = ()

    def __init__(self, params, defaults: dict[str, Any]):
        super().__init__(params, defaults)

    def init_state(self, p: torch.Tensor, state: dict, group: dict) -> None:
        """Create the state of ``p`` at its first step; override to add more."""
        state["step"] = 0
        for name in self.state_names:
            state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        """Apply one step of the rule to parameter ``p`` in place."""
        raise NotImplementedError

    def group_step(self, group: dict, params: list, grads: list, states: list) -> None:
        """Update every parameter of a group; the default is one tensor at a time."""
        for p, grad, state in zip(params, grads, states):
            state["step"] += 1
            self.update(p, grad, state, group)

    def _gather(self, group: dict):
        params, grads, states = [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            if torch.is_complex(p):
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            state = self.state[p]
            if not state:
                self.init_state(p, state, group)
            params.append(p)
            grads.append(-p.grad if group.get("maximize", False) else p.grad)
            states.append(state)
        return params, grads, states

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads, states = self._gather(group)
            if params:
                self.group_step(group, params, grads, states)
        return loss


class TwoMomentOptimizer(ZijOptimizer):
    """Base of rules shaped like Adam: two moving averages and (lr, betas, eps, weight_decay).

    A subclass sets ``state_names`` and ``rule``, a plain function called as
    ``rule(p, grad, *state tensors in state_names order, step=, lr=, beta1=, beta2=, eps=, weight_decay=)``;
    its own ``__init__`` keeps the signature and defaults of its paper.
    """

    #: The module's update function for one tensor (set with ``staticmethod``).
    rule = None

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        self.rule(p, grad, *(state[name] for name in self.state_names), step=state["step"], lr=group["lr"],
                  beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])
