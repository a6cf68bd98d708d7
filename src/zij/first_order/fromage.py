"""Fromage: a layer-relative gradient step with norm control (Bernstein et al., 2020)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, Variant, invalid, register
from .._tensorlist import TensorList
from ..blocks import per_tensor


def _relative_scale(param_norm: torch.Tensor, grad_norm: torch.Tensor) -> torch.Tensor:
    """||theta|| / ||g||, or 1 where either norm is 0."""
    relative = (param_norm > 0) & (grad_norm > 0)
    return torch.where(relative, param_norm / torch.where(relative, grad_norm, torch.ones_like(grad_norm)),
                       torch.ones_like(grad_norm))


def _cap(norm: torch.Tensor, max_norm: torch.Tensor) -> torch.Tensor:
    """The factor that brings a norm above ``max_norm`` back to it (1 otherwise)."""
    return torch.where(norm > max_norm, max_norm / norm, torch.ones_like(norm))


def fromage_update(param, grad, max_norm, *, lr: float) -> None:
    """One Fromage step for one tensor (or a TensorList of them), in place.

    theta <- (theta - lr * ||theta|| / ||g|| * g) / sqrt(1 + lr^2)  (a plain step where either norm is 0);
    then, with a bound, theta is rescaled to norm max_norm if it has grown beyond it.
    """
    scale = per_tensor(_relative_scale, param.norm(), grad.norm())
    param.add_(grad * scale, alpha=-lr).div_(math.sqrt(1 + lr**2))
    if max_norm is not None:
        param.mul_(per_tensor(_cap, param.norm(), max_norm))


class Fromage(ZijOptimizer):
    r"""Fromage (Frobenius matched gradient descent): each tensor moves by a fixed fraction of its norm.

    The gradient of each parameter tensor is rescaled to the tensor's own
    Frobenius norm, so $\eta$ is the relative size of every layer's step, as
    the deep relative trust the paper derives suggests. The prefactor undoes
    the norm growth that a step orthogonal to the weights would cause.

    $$
    W^{l}_t = \frac{1}{\sqrt{1 + \eta^{2}}} \Bigl(W^{l}_{t-1} - \eta\, \frac{\lVert W^{l}_{t-1}\rVert_F}{\lVert g^{l}_t\rVert_F}\, g^{l}_t\Bigr)
    $$

    As in the official code, a tensor whose weights or gradient have norm
    zero takes the plain step $W - \eta g$ instead (still divided by the
    prefactor), and ``p_bound`` caps each tensor's norm at ``p_bound`` times
    its norm at the first step.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$, the relative size of each tensor's step.
        p_bound: optional bound on each tensor's norm, as a multiple of its initial norm (``None``: no bound).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Fromage(model.parameters(), lr=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Bernstein, Vahdat, Yue and Liu, "On the Distance between Two Neural Networks and the Stability of
        Learning", NeurIPS 2020.
        https://arxiv.org/abs/2002.03432
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-2, p_bound: float | None = None, *, maximize: bool = False,
                 foreach: bool | None = None):
        defaults = hyperparameters(lr=lr, p_bound=p_bound, maximize=maximize, foreach=foreach)
        if p_bound is not None:
            check_positive(p_bound, "p_bound")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        """Fromage keeps no per-step state; with ``p_bound``, the bound from the first norm."""
        if group["p_bound"] is not None:
            state["max"] = p.norm() * group["p_bound"]

    def group_step(self, group, params, grads, states):  # no step count to keep
        if self.use_foreach(group, params):
            bound = TensorList([s["max"] for s in states]) if group["p_bound"] is not None else None
            fromage_update(TensorList(params), TensorList(grads), bound, lr=group["lr"])
            return
        for p, grad, state in zip(params, grads, states):
            fromage_update(p, grad, state.get("max"), lr=group["lr"])


register(OptimizerEntry(
    name="Fromage",
    cls=Fromage,
    canon_id="fromage",
    family="layer-wise",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr") + (ErrorInput({"p_bound": 0.0}, "p_bound"),),
    variants={"p_bound": Variant({"p_bound": 10.0}, skips={
        "logistic": "the bound is a multiple of the initial norm, and the logistic problem starts at zero weights, "
                    "which the bound (as in the official code) then pins at zero"})},
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Fromage", {"lr": 0.01}, {"lr": 0.01}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Fromage", {"lr": 0.05, "p_bound": 1.05},
               {"lr": 0.05, "p_bound": 1.05}),
    ),
))
