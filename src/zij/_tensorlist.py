"""``TensorList``: a list of tensors that does arithmetic with torch's multi-tensor kernels.

An update rule written with tensor methods (``m.mul_(beta).add_(g, alpha=1 - beta)``)
runs unchanged on one tensor or on a ``TensorList`` of all the tensors of a group: each
method maps to the matching ``torch._foreach_*`` kernel, and where torch has none it
loops. The operations run in the same order with the same kernels per tensor, so the
multi-tensor path gives the same numbers as the per-tensor loop (bit for bit on the
CPU, where foreach kernels loop over the per-tensor ones). A per-tensor scalar (a norm,
a mean, a step count) is a ``TensorList`` of 0-dim tensors or a plain list of numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable

import torch


@torch.library.custom_op("zij::computed_once", mutates_args=())
def _computed_once(value: torch.Tensor) -> torch.Tensor:
    """A copy of ``value`` that inductor keeps as a buffer instead of inlining its arithmetic into later kernels."""
    return value.clone()


@_computed_once.register_fake
def _(value: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(value)


class Scalar:
    """A number held as a 0-dim tensor: the learning rate and step count of a compiled step.

    A rule does arithmetic on it as on a Python number (``1 - beta**step``, ``lr * weight_decay``)
    and passes the result wherever TensorList methods take a number, so ``torch.compile`` reads it as
    an input instead of baking its value into the code. A rule that branches on it (``if lr == 0``)
    raises: the branch would be compiled for one value only.
    """

    __slots__ = ("tensor", "once", "by_reciprocal")

    def __init__(self, tensor: torch.Tensor, once: bool = False, by_reciprocal: bool = False):
        self.tensor = tensor
        #: whether powers of it are worked out once per step (:func:`_computed_once`) instead of inline: inductor's
        #: C++ for the CPU would recompute an inlined ``beta ** step`` for every vector of entries (the compiler
        #: may not hoist ``pow``, which sets errno), which made a compiled AdamW step cost twice as much
        self.once = once
        #: whether a TensorList divided by it is multiplied by its reciprocal, worked out once, instead (see
        #: ``ZijOptimizer.compile_by_reciprocal``); both flags pass to the results of arithmetic
        self.by_reciprocal = by_reciprocal

    def _new(self, tensor: torch.Tensor, other: Any = None) -> Scalar:
        flags = [(s.once, s.by_reciprocal) for s in (self, other) if isinstance(s, Scalar)]
        return Scalar(tensor, any(f[0] for f in flags), any(f[1] for f in flags))

    def _apply(self, fn: Callable[[Any, Any], Any], other: Any) -> Any:
        if isinstance(other, TensorList):
            return NotImplemented  # the TensorList's reflected method handles it
        return self._new(fn(self.tensor, other.tensor if isinstance(other, Scalar) else other), other)

    def _held(self) -> Scalar:
        """This value, kept as a buffer of its own where the flag ``once`` asks for it."""
        return Scalar(_computed_once(self.tensor), self.once, self.by_reciprocal) if self.once else self

    def __add__(self, other): return self._apply(lambda a, b: a + b, other)
    def __radd__(self, other): return self._apply(lambda a, b: b + a, other)
    def __sub__(self, other): return self._apply(lambda a, b: a - b, other)
    def __rsub__(self, other): return self._apply(lambda a, b: b - a, other)
    def __mul__(self, other): return self._apply(lambda a, b: a * b, other)
    def __rmul__(self, other): return self._apply(lambda a, b: b * a, other)
    def __truediv__(self, other): return self._apply(lambda a, b: a / b, other)
    def __rtruediv__(self, other): return self._apply(lambda a, b: b / a, other)
    def __pow__(self, other): return self._apply(lambda a, b: a**b, other)._held()
    def __rpow__(self, other): return self._apply(lambda a, b: b**a, other)._held()
    def __neg__(self): return self._new(-self.tensor)

    def reciprocal(self) -> Scalar:
        """1 / self (worked out once per step where powers are)."""
        return self._new(1 / self.tensor)._held()

    def _branch(self, *_: Any) -> bool:
        raise TypeError("a compiled step cannot branch on its learning rate or step count; this rule has no compiled step")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = _branch
    __float__ = __int__ = __index__ = _branch
    __hash__ = None


def _arg(other: Any) -> Any:
    """The foreach form of an operand: the tensors of a TensorList, a list as is, a Scalar's tensor, else the value."""
    if isinstance(other, Scalar):
        return other.tensor
    return other.tensors if isinstance(other, TensorList) else other


_HALF = (torch.bfloat16, torch.float16)


def _numbers(other: Any) -> bool:
    """Whether ``other`` is a Python number or a list of them (not a tensor, a TensorList or a Scalar)."""
    if isinstance(other, (list, tuple)):
        return all(isinstance(o, (int, float)) for o in other)
    return isinstance(other, (int, float))


def _scaled(other: Any, scale: Scalar) -> Any:
    """``other`` times a Scalar: foreach kernels take only numbers as ``alpha`` and ``value``."""
    return torch._foreach_mul(other.tensors, scale.tensor) if isinstance(other, TensorList) else _arg(other) * scale.tensor


def _per(other: Any, i: int) -> Any:
    """The i-th tensor's operand: an element of a list, a Scalar's tensor, or the shared value."""
    if isinstance(other, Scalar):
        return other.tensor
    return other[i] if isinstance(other, (TensorList, list, tuple)) else other


class TensorList:
    """Tensors of one group, operated on together. See the module docstring."""

    __slots__ = ("tensors",)

    def __init__(self, tensors: Iterable[torch.Tensor]):
        self.tensors = list(tensors)

    # --- container ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tensors)

    def __iter__(self):
        return iter(self.tensors)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.tensors[i]

    def __repr__(self) -> str:
        return f"TensorList({len(self.tensors)} tensors)"

    def map(self, fn: Callable[..., torch.Tensor], *others: Any) -> TensorList:
        """``fn`` applied tensor by tensor, with the matching element of each operand."""
        return TensorList([fn(t, *[_per(o, i) for o in others]) for i, t in enumerate(self.tensors)])

    def _loop_(self, name: str, *others: Any, **kwargs: Any) -> TensorList:
        for i, t in enumerate(self.tensors):
            getattr(t, name)(*[_per(o, i) for o in others], **kwargs)
        return self

    # --- in place -------------------------------------------------------------------
    def add_(self, other: Any, *, alpha: float = 1) -> TensorList:
        if isinstance(alpha, Scalar):
            torch._foreach_add_(self.tensors, _scaled(other, alpha))
        elif alpha == 1:
            torch._foreach_add_(self.tensors, _arg(other))
        else:
            torch._foreach_add_(self.tensors, _arg(other), alpha=alpha)
        return self

    def sub_(self, other: Any, *, alpha: float = 1) -> TensorList:
        if isinstance(alpha, Scalar):
            torch._foreach_sub_(self.tensors, _scaled(other, alpha))
        elif alpha == 1:
            torch._foreach_sub_(self.tensors, _arg(other))
        else:
            torch._foreach_sub_(self.tensors, _arg(other), alpha=alpha)
        return self

    def mul_(self, other: Any) -> TensorList:
        if _numbers(other) and any(t.dtype in _HALF and t.device.type == "cpu" for t in self.tensors):
            # On the CPU, torch's in-place foreach multiply by numbers rounds 16-bit floats unlike
            # Tensor.mul_ (a third of bfloat16 results differ in the last bit); the loop keeps them equal.
            return self._loop_("mul_", other)
        torch._foreach_mul_(self.tensors, _arg(other))
        return self

    def div_(self, other: Any) -> TensorList:
        if isinstance(other, Scalar) and other.by_reciprocal:  # one division per step instead of one per entry
            return self.mul_(other.reciprocal())
        torch._foreach_div_(self.tensors, _arg(other))
        return self

    def addcmul_(self, a: Any, b: Any, *, value: Any = 1) -> TensorList:
        if isinstance(value, Scalar):
            return self.add_(TensorList(torch._foreach_mul(_arg(a), _arg(b))), alpha=value)
        torch._foreach_addcmul_(self.tensors, _arg(a), _arg(b), _arg(value))
        return self

    def addcdiv_(self, a: Any, b: Any, *, value: Any = 1) -> TensorList:
        if isinstance(value, Scalar):
            return self.add_(TensorList(torch._foreach_div(_arg(a), _arg(b))), alpha=value)
        torch._foreach_addcdiv_(self.tensors, _arg(a), _arg(b), _arg(value))
        return self

    def lerp_(self, end: Any, weight: Any) -> TensorList:
        torch._foreach_lerp_(self.tensors, _arg(end), _arg(weight))
        return self

    def sigmoid_(self) -> TensorList:
        torch._foreach_sigmoid_(self.tensors)
        return self

    def minimum_(self, other: Any) -> TensorList:
        """Elementwise minimum in place (``torch.minimum(t, other, out=t)`` for each tensor)."""
        torch._foreach_minimum_(self.tensors, _arg(other))
        return self

    def sqrt_(self) -> TensorList:
        torch._foreach_sqrt_(self.tensors)
        return self

    def abs_(self) -> TensorList:
        torch._foreach_abs_(self.tensors)
        return self

    def sign_(self) -> TensorList:
        torch._foreach_sign_(self.tensors)
        return self

    def neg_(self) -> TensorList:
        torch._foreach_neg_(self.tensors)
        return self

    def reciprocal_(self) -> TensorList:
        torch._foreach_reciprocal_(self.tensors)
        return self

    def clamp_min_(self, value: Any) -> TensorList:
        torch._foreach_clamp_min_(self.tensors, _arg(value))
        return self

    def clamp_max_(self, value: Any) -> TensorList:
        torch._foreach_clamp_max_(self.tensors, _arg(value))
        return self

    def copy_(self, other: Any) -> TensorList:
        torch._foreach_copy_(self.tensors, _arg(other))
        return self

    def zero_(self) -> TensorList:
        torch._foreach_zero_(self.tensors)
        return self

    def atan2_(self, other: Any) -> TensorList:
        return self._loop_("atan2_", other)

    def clamp_(self, min: Any = None, max: Any = None) -> TensorList:  # noqa: A002 (torch's names)
        return self._loop_("clamp_", min=min, max=max)

    # --- new tensors ----------------------------------------------------------------
    def clone(self) -> TensorList:
        return self.map(torch.Tensor.clone)

    def add(self, other: Any, *, alpha: float = 1) -> TensorList:
        if isinstance(alpha, Scalar):
            return TensorList(torch._foreach_add(self.tensors, _scaled(other, alpha)))
        if alpha == 1:
            return TensorList(torch._foreach_add(self.tensors, _arg(other)))
        return TensorList(torch._foreach_add(self.tensors, _arg(other), alpha=alpha))

    def __add__(self, other: Any) -> TensorList:
        return TensorList(torch._foreach_add(self.tensors, _arg(other)))

    def __sub__(self, other: Any) -> TensorList:
        return TensorList(torch._foreach_sub(self.tensors, _arg(other)))

    def __mul__(self, other: Any) -> TensorList:
        return TensorList(torch._foreach_mul(self.tensors, _arg(other)))

    def __truediv__(self, other: Any) -> TensorList:
        if isinstance(other, Scalar) and other.by_reciprocal:  # as in div_
            return self * other.reciprocal()
        return TensorList(torch._foreach_div(self.tensors, _arg(other)))

    def __rsub__(self, other: Any) -> TensorList:
        return self.map(torch.Tensor.__rsub__, other)

    def __rtruediv__(self, other: Any) -> TensorList:
        return self.map(torch.Tensor.__rtruediv__, other)

    __radd__ = __add__
    __rmul__ = __mul__

    def div(self, other: Any) -> TensorList:
        return self / other

    def mul(self, other: Any) -> TensorList:
        return self * other

    def pow(self, exponent: Any) -> TensorList:
        return TensorList(torch._foreach_pow(self.tensors, _arg(exponent)))

    def addcdiv(self, a: Any, b: Any, *, value: Any = 1) -> TensorList:
        if isinstance(value, Scalar):
            return self.clone().addcdiv_(a, b, value=value)
        return TensorList(torch._foreach_addcdiv(self.tensors, _arg(a), _arg(b), _arg(value)))

    def clamp_min(self, value: Any) -> TensorList:
        return TensorList(torch._foreach_clamp_min(self.tensors, _arg(value)))

    def __neg__(self) -> TensorList:
        return TensorList(torch._foreach_neg(self.tensors))

    def __gt__(self, other: Any) -> TensorList:
        return self.map(torch.Tensor.__gt__, other)

    def sqrt(self) -> TensorList:
        return TensorList(torch._foreach_sqrt(self.tensors))

    def abs(self) -> TensorList:
        return TensorList(torch._foreach_abs(self.tensors))

    def sign(self) -> TensorList:
        return TensorList(torch._foreach_sign(self.tensors))

    def square(self) -> TensorList:
        return TensorList(torch._foreach_pow(self.tensors, 2))

    def to(self, *args: Any, **kwargs: Any) -> TensorList:
        return TensorList([t.to(*args, **kwargs) for t in self.tensors])

    # --- per-tensor reductions (a TensorList of 0-dim tensors) ---------------------------
    def norm(self) -> TensorList:
        """The Euclidean norm of each tensor."""
        return TensorList(torch._foreach_norm(self.tensors))

    def sum(self) -> TensorList:
        return self.map(torch.Tensor.sum)

    def mean(self) -> TensorList:
        return self.map(torch.Tensor.mean)

    def numel(self) -> list[int]:
        return [t.numel() for t in self.tensors]


def as_many(x: torch.Tensor | Sequence[torch.Tensor] | TensorList) -> torch.Tensor | TensorList:
    """A tensor stays a tensor; a list or tuple of tensors becomes a :class:`TensorList`."""
    if isinstance(x, (torch.Tensor, TensorList)):
        return x
    return TensorList(x)
