"""DoG and LDoG: SGD whose step size is the distance travelled over the root of summed squared gradients (Ivgi et al., 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_lr, check_nonnegative, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import l2_into_grad


def dog_step_size(rbar: float, grad_sq_sum: float, *, lr: float) -> float:
    """eta_t = lr rbar_t / sqrt(sum_i ||g_i||^2 (+ eps))."""
    return lr * rbar / math.sqrt(grad_sq_sum)


# The rule reduces over tensors into Python numbers, so it is written on lists of tensors; with ``foreach`` the
# elementwise work takes torch's multi-tensor kernels (per tensor the same kernels as the loop, so the same numbers).
def squared_norms(tensors: list, foreach: bool) -> list[torch.Tensor]:
    """||t||^2 of each tensor as a 0-dim tensor."""
    if not tensors:
        return []
    if foreach:
        return list(TensorList(tensors).square().sum())
    return [t.square().sum() for t in tensors]


def differences(params: list, starts: list, foreach: bool) -> list[torch.Tensor]:
    """theta - theta_0 of each tensor, as new tensors."""
    if foreach and params:
        return list(TensorList(params) - TensorList(starts))
    return [p - x0 for p, x0 in zip(params, starts)]


def total(squares: list[torch.Tensor]) -> float:
    """The sum of per-tensor 0-dim values, as a Python number."""
    return float(torch.stack(squares).sum())


def each_float(values: list[torch.Tensor]) -> list[float]:
    """Per-tensor 0-dim values as Python numbers, read back in one transfer where they share a device."""
    if not values:
        return []
    if len({v.device for v in values}) == 1:
        return torch.stack(values).tolist()  # stacking may widen the dtype, which is exact
    return [float(v) for v in values]


def descend_(params: list, grads: list, eta: float | list[float], foreach: bool) -> None:
    """theta <- theta - eta g for every tensor, in place; ``eta`` is one step size or a list, one per tensor.

    The multi-tensor kernel takes one step size; per-tensor ones go tensor by tensor, since scaling the
    gradients first would round differently from ``add_``'s ``alpha``.
    """
    if foreach and not isinstance(eta, list):
        TensorList(params).add_(TensorList(grads), alpha=-eta)
        return
    etas = eta if isinstance(eta, list) else [eta] * len(params)
    for p, g, step_size in zip(params, grads, etas):
        p.add_(g, alpha=-step_size)


class DoG(ZijOptimizer):
    r"""DoG (Distance over Gradients): SGD with the largest distance from the start over the gradients' root sum of squares.

    The step size needs no tuning: it is the largest distance the iterates have moved
    from $\theta_0$ (at least $r_\epsilon$) divided by the square root of the running sum
    of squared gradient norms. With ``layer_wise`` (LDoG) each tensor gets its own
    distance, sum and step size; otherwise they are taken over each parameter group.

    $$
    \begin{aligned}
    \bar r_t &= \max\left( r_\epsilon,\ \max_{i \le t} \lVert \theta_i - \theta_0 \rVert \right) \\
    G_t &= \epsilon + \sum_{i=0}^{t} \lVert g_i \rVert^{2} \\
    \eta_t &= c\, \frac{\bar r_t}{\sqrt{G_t}} \\
    \theta_{t+1} &= \theta_t - \eta_t\, g_t
    \end{aligned}
    $$

    As in the official code $r_\epsilon$ = ``reps_rel`` $\cdot (1 + \lVert\theta_0\rVert)$, $g_t$ includes the
    L2 weight decay $\lambda\theta_t$, and ``init_eta`` replaces the first step size (then
    $r_\epsilon = 0$). Norms and sums run over the tensors of a group that have a gradient
    (the official code requires every tensor to have one); $\bar r$, $G$ and the step
    count are kept in the group dict (per tensor in the state with ``layer_wise``). The
    paper pairs DoG with a polynomial-decay average of the iterates, which is not part
    of the optimizer.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        reps_rel: relative initial movement; $r_\epsilon$ = ``reps_rel`` $(1 + \lVert\theta_0\rVert)$ (1e-4 with batch norm).
        lr: $c$, multiplier of the step size (leave at 1).
        weight_decay: L2 weight decay $\lambda$, added to the gradient.
        eps: $\epsilon$, added to the sum of squared gradient norms.
        init_eta: the first step size, in place of the one from ``reps_rel`` (``None``: from ``reps_rel``).
        layer_wise: LDoG, the rule applied to each tensor separately.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DoG(model.parameters(), reps_rel=1e-6)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ivgi, Hinder and Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size Schedule", ICML 2023.
        https://arxiv.org/abs/2302.12022
    """

    supports_foreach = True

    def __init__(self, params, reps_rel: float = 1e-6, lr: float = 1.0, weight_decay: float = 0.0, eps: float = 1e-8,
                 init_eta: float | None = None, layer_wise: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None):
        defaults = hyperparameters(reps_rel=reps_rel, lr=lr, weight_decay=weight_decay, eps=eps, init_eta=init_eta,
                                   layer_wise=layer_wise, maximize=maximize, foreach=foreach, k=0)
        if init_eta is not None:
            check_positive(init_eta, "init_eta")
        else:
            check_positive(reps_rel, "reps_rel")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["x0"] = p.detach().clone()

    def group_step(self, group, params, grads, states):
        foreach = self.use_foreach(group, params)
        if foreach:
            grads = list(l2_into_grad(TensorList(grads), TensorList(params), group["weight_decay"]))
        else:
            grads = [l2_into_grad(g, p, group["weight_decay"]) for p, g in zip(params, grads)]
        first = group["k"] == 0
        reps = 0.0 if group["init_eta"] is not None else group["reps_rel"]
        if group["layer_wise"]:  # rbar and G of each tensor, from its first step on
            new = [i for i, state in enumerate(states) if "rbar" not in state]
            seen = [i for i, state in enumerate(states) if "rbar" in state]
            for i, sq in zip(new, each_float(squared_norms([params[i] for i in new], foreach))):
                states[i]["rbar"], states[i]["G"] = reps * (1 + sq**0.5), group["eps"]
            moved = differences([params[i] for i in seen], [states[i]["x0"] for i in seen], foreach)
            for i, sq in zip(seen, each_float(squared_norms(moved, foreach))):
                states[i]["rbar"] = max(states[i]["rbar"], sq**0.5)
            eta = []
            for state, sq in zip(states, each_float(squared_norms(grads, foreach))):
                state["G"] += sq
                eta.append(dog_step_size(state["rbar"], state["G"], lr=group["lr"]))
        else:
            if first:
                group["rbar"], group["G"] = reps * (1 + total(squared_norms(params, foreach)) ** 0.5), group["eps"]
            else:
                moved = differences(params, [s["x0"] for s in states], foreach)
                group["rbar"] = max(group["rbar"], total(squared_norms(moved, foreach)) ** 0.5)
            group["G"] += total(squared_norms(grads, foreach))
            eta = dog_step_size(group["rbar"], group["G"], lr=group["lr"])
        if first and group["init_eta"] is not None:
            eta = group["init_eta"]
        group["k"] += 1
        for state in states:
            state["step"] += 1
        descend_(params, grads, eta, foreach)


register(OptimizerEntry(
    name="DoG",
    cls=DoG,
    canon_id="dog",
    family="parameter-free",
    aliases=("Distance over Gradients",),
    recipe={"lr": 1.0, "reps_rel": 1e-6},
    capabilities=Capabilities(elementwise=False),
    variants={"layer_wise": {"layer_wise": True}, "weight_decay": {"weight_decay": 1e-4}},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"reps_rel": 0.0}, "reps_rel"),
        ErrorInput({"init_eta": -1.0}, "init_eta"),
    ),
    parity=(
        # dog-optimizer needs a gradient for every parameter (the matrix gives one) and keeps its sums as tensors of
        # the parameters' dtype (float64 here); LDoG is its own class there.
        Parity("dog-optimizer", "dog:DoG", {"reps_rel": 1e-4, "weight_decay": 0.01},
               {"reps_rel": 1e-4, "weight_decay": 0.01}),
        Parity("dog-optimizer", "dog:LDoG", {"layer_wise": True, "lr": 0.8, "eps": 1e-6},
               {"lr": 0.8, "eps": 1e-6}),
        Parity("dog-optimizer", "dog:DoG", {"init_eta": 1e-3}, {"init_eta": 1e-3}),
    ),
))
