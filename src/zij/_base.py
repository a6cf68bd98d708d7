"""The base class of zij's own optimizers, and hyperparameter checks.

A zij optimizer is a ``torch.optim.Optimizer`` whose class validates
hyperparameters and holds state, and whose math lives in a plain function in
the same module (``lion_update(...)``), so the code reads like the rule in the
method's Canon record. :class:`ZijOptimizer` does the bookkeeping shared by
all of them: evaluating the closure, skipping parameters without gradients,
rejecting sparse and complex gradients, ``maximize``, and lazy state creation.
"""

from __future__ import annotations

import functools

import math
import types
from collections.abc import Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from ._checkpoint import CheckedStateDict
from ._sharded import gather, is_dtensor, keep_shard_, local
from ._tensorlist import Scalar, TensorList


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


class StateView:
    """The states of several parameters seen as one, for an update on TensorLists.

    ``view[name]`` is a :class:`~zij._tensorlist.TensorList` of each parameter's state
    tensor (0-dim ones included), or the shared value of a non-tensor entry (``step``: the foreach path groups
    parameters by step, so it is the same for all of them).
    """

    __slots__ = ("states",)

    def __init__(self, states: list[dict]):
        self.states = states

    def __getitem__(self, name: str):
        first = self.states[0][name]
        if isinstance(first, torch.Tensor):
            return TensorList([s[name] for s in self.states])
        return first

    def __contains__(self, name: str) -> bool:
        return name in self.states[0]


class _Columns:
    """A :class:`StateView` for the compiled step, from each state entry's list over the parameters."""

    __slots__ = ("columns", "step")

    def __init__(self, columns: dict, step: Scalar):
        self.columns = columns
        self.step = step

    def __getitem__(self, name: str):
        if name == "step":
            return self.step
        value = self.columns[name]
        return TensorList(value) if isinstance(value, list) else value

    def __contains__(self, name: str) -> bool:
        return name == "step" or name in self.columns


#: inductor options of :meth:`ZijOptimizer.compile` unless the caller gives a ``mode`` or its own values.
_COMPILE_OPTIONS = {"size_asserts": False, "alignment_asserts": False}


def _traced_update(optimizer: ZijOptimizer, params: list, grads: list, columns: dict, step: torch.Tensor,
                   lr: torch.Tensor, group: dict) -> None:
    """The foreach update that :meth:`ZijOptimizer.compile` compiles: ``lr`` and ``step`` are 0-dim tensors, seen by
    the rule as Scalars; ``columns`` holds each state entry as a list over the parameters (a list of dicts would
    cost a guard per dict)."""
    cpu = params[0].device.type == "cpu"  # Triton's GPU kernels pay little for inline scalar arithmetic
    flags = {"once": cpu, "by_reciprocal": cpu and optimizer.compile_by_reciprocal}
    type(optimizer).update(optimizer, TensorList(params), TensorList(grads), _Columns(columns, Scalar(step, **flags)),
                           {**group, "lr": Scalar(lr, **flags)})


def _write_back_shards(optimizer, args, kwargs) -> None:
    """After any step (subclasses' own ``step`` included): each gathered FSDP2 parameter keeps its shard."""
    for p, whole in optimizer.__dict__.pop("_sharded", ()):
        keep_shard_(p, whole)
    optimizer.__dict__.pop("_originals", None)


class ZijOptimizer(CheckedStateDict, Optimizer):
    """Shared bookkeeping for zij optimizers.

    A subclass sets ``state_names`` (per-parameter tensors created as zeros) and
    implements :meth:`update` for one parameter. The base class evaluates the closure,
    skips parameters without gradients, rejects sparse and complex gradients, negates
    the gradient for ``maximize``, creates state lazily, and calls these hooks, each of
    which a rule may override:

    - :meth:`init_state`: state that is not zero-filled or elementwise (matrices,
      factored statistics), created at a parameter's first step. Zero-filled state
      tensors follow the group's ``state_dtype`` (``None``: the parameter's dtype), so a
      class gets float32 or bfloat16 state by that option alone.
    - :meth:`global_step`: once per step, before any group is updated, with every
      group's gathered parameters: for rules that reduce over all parameters (a global
      gradient norm, Prodigy's and D-Adaptation's estimates). Quantities that must
      survive a checkpoint belong in the group dicts, which ``state_dict`` saves.
    - :meth:`group_step`: once per group: for rules that reduce over a whole group
      (LAMB-style norms) or route parameters by shape (Muon's matrices, AdamW for the
      rest). The default updates parameters one at a time, or, where the class sets
      ``supports_foreach`` and the group's ``foreach`` is on, calls :meth:`update` once
      per step count with :class:`~zij._tensorlist.TensorList` arguments and a
      :class:`StateView`: a rule written with tensor methods and :mod:`zij.blocks` runs
      unchanged on both paths and gives the same numbers.

    ``foreach=None`` (the default of every class that supports it) takes the multi-tensor
    path on every device. Unlike torch, which keeps its loop on the CPU, zij can: its
    foreach path runs the same kernels per tensor there, so it gives the loop's numbers
    bit for bit while saving Python overhead per tensor. It holds temporaries for all
    tensors of a bucket at once; ``foreach=False`` trades that memory for time.

    :meth:`compile` opts in to a compiled step for classes that set ``supports_compile``: the
    foreach update of each bucket runs through ``torch.compile``, fused across tensors, with the
    learning rate and the step count passed as 0-dim float64 tensors, so a scheduler changing the
    rate (or the next step) reuses the compiled code. Other hyperparameters are constants of it:
    changing one compiles again.

    ``option_defaults`` lists options added after a class first shipped, with the value
    that keeps the old behaviour; :meth:`__setstate__` gives them to the groups of a
    ``state_dict`` saved before they existed, so old checkpoints load and resume
    bit-identically (``tests/optim/test_golden.py``). A subclass extends it with
    ``option_defaults = {**Base.option_defaults, "new_option": old_value}``.
    """

    #: Names of the per-parameter state tensors, created like the parameter at the first step.
    state_names: tuple[str, ...] = ()
    #: Whether :meth:`update` accepts TensorLists (the multi-tensor path).
    supports_foreach: bool = False
    #: Whether the foreach update traces whole with a tensor learning rate and step (:meth:`compile`).
    supports_compile: bool = False
    #: Whether the compiled step on the CPU multiplies by the reciprocal of a divisor that depends on the learning
    #: rate or step (a bias correction), worked out once per step, where eager divides every entry by it: divisions
    #: are what a fused CPU step spends most of its arithmetic on. It rounds differently by about an ulp; a rule
    #: whose result at an exact tie depends on that rounding sets False (FOCUS: at the first step its averaged
    #: weights equal the weights exactly, and the sign of their difference must be 0).
    compile_by_reciprocal: bool = True
    #: Options every group carries, with the defaults an older checkpoint is given.
    option_defaults: dict[str, Any] = {"foreach": None, "state_dtype": None}
    #: Whether each element's update depends only on that element (and group scalars): then a
    #: parameter sharded by FSDP2 is stepped shard by shard; otherwise it is gathered (``_sharded``).
    per_element: bool = False

    def __init__(self, params, defaults: dict[str, Any]):
        if defaults.get("foreach") and not self.supports_foreach:
            raise ValueError(f"Invalid foreach: {type(self).__name__} has no multi-tensor path")
        state_dtype = defaults.get("state_dtype")
        if state_dtype is not None and not (isinstance(state_dtype, torch.dtype) and state_dtype.is_floating_point):
            raise ValueError(f"Invalid state_dtype: {state_dtype!r} (expected a floating torch.dtype or None)")
        super().__init__(params, {**self.option_defaults, **defaults})
        self.register_step_post_hook(_write_back_shards)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for name, value in self.option_defaults.items():
                group.setdefault(name, value)

    def zeros_like(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        """A zero state tensor shaped like ``p``, in the group's ``state_dtype`` (default: ``p``'s)."""
        return torch.zeros_like(p, dtype=group.get("state_dtype") or p.dtype, memory_format=torch.preserve_format)

    def copy_like(self, p: torch.Tensor, group: dict) -> torch.Tensor:
        """A copy of ``p`` kept as state (slow weights, the starting point), in the group's ``state_dtype``."""
        return p.detach().to(group.get("state_dtype") or p.dtype, memory_format=torch.preserve_format, copy=True)

    def init_state(self, p: torch.Tensor, state: dict, group: dict) -> None:
        """Create the state of ``p`` at its first step; override to add more."""
        state["step"] = 0
        for name in self.state_names:
            state[name] = self.zeros_like(p, group)

    def update(self, p, grad, state, group: dict) -> None:
        """Apply one step of the rule to parameter ``p`` (or a TensorList of them) in place."""
        raise NotImplementedError

    def global_step(self, gathered: list[tuple[dict, list, list, list]]) -> None:
        """Hook called once per step with ``(group, params, grads, states)`` of every group."""

    def use_foreach(self, group: dict, params: list) -> bool:
        foreach = group.get("foreach")
        return self.supports_foreach if foreach is None else bool(foreach)

    def compile(self, **options: Any) -> ZijOptimizer:
        """Opt in to the compiled step and return the optimizer (see the class docstring).

        ``options`` go to ``torch.compile`` (default ``fullgraph=True``: a rule that cannot be traced
        whole raises instead of running in pieces; and for inductor without a ``mode``, its size and
        alignment assertions off, as dynamo's guards check the inputs already). The compiled code is not
        part of a ``state_dict`` or a copy; call this again on a loaded or copied optimizer.
        """
        name = type(self).__name__
        if not self.supports_compile:
            raise ValueError(f"Invalid compile: {name} has no compiled step (supports_compile is False)")
        loops = [i for i, group in enumerate(self.param_groups) if not self.use_foreach(group, group["params"])]
        if loops:
            raise ValueError(f"Invalid compile: {name}'s param group(s) {loops} take the per-tensor loop "
                             "(foreach=False, or an option the foreach path does not cover); only the foreach update compiles")
        for i, group in enumerate(self.param_groups):
            reason = self.compile_refusal(group)
            if reason:
                raise ValueError(f"Invalid compile: {name}'s param group {i}: {reason}")
        # dynamo keeps compiled code per code object and tells optimizers apart by identity: a copy of the
        # code for each optimizer keeps their entries apart, so many optimizers never reach its recompile limit
        code = types.FunctionType(_traced_update.__code__.replace(), _traced_update.__globals__, "_traced_update")
        options = {"fullgraph": True, **options}
        if "mode" not in options and options.get("backend", "inductor") == "inductor":  # a mode or options, not both
            # dynamo's guards already check each input's size and stride before the compiled code runs; inductor's
            # own assertions check them again, which for hundreds of small tensors costs a fifth of the step
            options["options"] = {**_COMPILE_OPTIONS, **options.get("options", {})}
        self.__dict__["_compiled"] = functools.partial(torch.compile(code, **options), self)
        return self

    def compile_refusal(self, group: dict) -> str | None:
        """Why ``group``'s options keep it from the compiled step (they branch on the step count, say), or None."""
        return None

    def group_step(self, group: dict, params: list, grads: list, states: list) -> None:
        """Update every parameter of a group (see the class docstring)."""
        for state in states:
            state["step"] += 1
        compiled = self.__dict__.get("_compiled")
        if compiled is not None and self.use_foreach(group, params):  # a group added later may take the loop
            scalars = {k: v for k, v in group.items() if k not in ("params", "lr")}
            lr = torch.tensor(float(group["lr"]), dtype=torch.float64)
            for index in self._buckets(params, states):
                step = torch.tensor(float(states[index[0]]["step"]), dtype=torch.float64)
                first = states[index[0]]
                columns = {k: [states[i][k] for i in index] if isinstance(v, torch.Tensor) else v
                           for k, v in first.items() if k != "step"}  # the step goes in as a tensor
                compiled([params[i] for i in index], [grads[i] for i in index], columns, step, lr, scalars)
            return
        if not self.use_foreach(group, params):
            for p, grad, state in zip(params, grads, states):
                self.update(p, grad, state, group)
            return
        for index in self._buckets(params, states):
            self.update(TensorList([params[i] for i in index]), TensorList([grads[i] for i in index]),
                        StateView([states[i] for i in index]), group)

    def bucket_key(self, p: torch.Tensor, state: dict) -> Any:
        """What else a parameter's foreach bucket must share besides its step count, device and dtype (default:
        nothing): a rule whose state differs in kind between tensors (a factored matrix, a full vector) keys on it."""
        return None

    def _buckets(self, params: list, states: list) -> list[list[int]]:
        """Indices of the parameters updated together: same step count, device, dtype and :meth:`bucket_key`."""
        buckets: dict[Any, list[int]] = {}
        for i, (p, state) in enumerate(zip(params, states)):
            buckets.setdefault((state["step"], p.device, p.dtype, self.bucket_key(p, state)), []).append(i)
        return list(buckets.values())

    def state_shaped_like(self, p: torch.Tensor) -> torch.Tensor:
        """The tensor a parameter's state is created for: ``p``, or for an FSDP2 shard, the shard or
        (for rules that need whole tensors) an empty tensor of the whole shape."""
        if not is_dtensor(p):
            return p
        return local(p) if self.per_element else torch.empty(p.shape, dtype=p.dtype, device=local(p).device)

    def param_of(self, t: torch.Tensor) -> torch.Tensor:
        """The parameter ``t`` stands for in this step (an FSDP2 parameter's shard or gathered whole), else ``t``."""
        return self.__dict__.get("_originals", {}).get(id(t), t)

    def _gather(self, group: dict):
        params, grads, states = [], [], []
        maximize, state_of = group.get("maximize", False), self.state
        for p in group["params"]:
            grad = p.grad  # read once: a property of the C tensor, and this loop runs for every parameter each step
            if grad is None:
                continue
            if grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            if p.is_complex():
                raise RuntimeError(f"{type(self).__name__} does not support complex parameters")
            work = p
            if is_dtensor(p):  # sharded by FSDP2: step the shard, or the gathered whole (see _sharded)
                if self.per_element:
                    work, grad = local(p), local(grad)
                else:
                    work, grad = gather(p), gather(grad)
                    self.__dict__.setdefault("_sharded", []).append((p, work))  # see _write_back_shards
                if work is not p:
                    self.__dict__.setdefault("_originals", {})[id(work)] = p
            state = state_of[p]
            if not state:
                self.init_state(work, state, group)
            params.append(work)
            grads.append(-grad if maximize else grad)
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
        gathered = [(group, *self._gather(group)) for group in self.param_groups]
        self.global_step(gathered)
        for group, params, grads, states in gathered:
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
