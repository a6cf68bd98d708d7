"""QHM: quasi-hyperbolic momentum (Ma and Yarats, 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import ema_


def qhm_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    nu: float,
    weight_decay: float,
) -> None:
    """One QHM step for one tensor, in place.

    g <- g + weight_decay * theta;  b <- momentum * b + (1 - momentum) * g;
    theta <- theta - lr * ((1 - nu) * g + nu * b).
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    ema_(momentum_buffer, grad, momentum)
    param.add_(grad, alpha=-lr * (1 - nu)).add_(momentum_buffer, alpha=-lr * nu)


class QHM(ZijOptimizer):
    r"""QHM (quasi-hyperbolic momentum): step along a mix of the gradient and its moving average.

    The step is a weighted average of the plain current gradient (weight
    $1-\nu$) and a normalized momentum buffer (weight $\nu$), which separates
    how much history is used from how long it is kept. $\nu = 0$ is SGD,
    $\nu = 1$ normalized heavy-ball momentum and $\nu = \beta$ Nesterov momentum.
    An optional L2 term is added to the gradient, as in the authors' code
    (with $\lambda = 0$ this is the paper's algorithm).

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    b_t &= \beta\, b_{t-1} + (1-\beta)\, \tilde g_t \\
    \theta_t &= \theta_{t-1} - \eta \left[ (1-\nu)\, \tilde g_t + \nu\, b_t \right]
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: momentum decay rate $\beta$ in $[0, 1)$; the paper's rule of thumb is 0.999.
        nu: immediate discount $\nu$ in $[0, 1]$; the paper's rule of thumb is 0.7.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.QHM(model.parameters(), lr=0.1, momentum=0.999, nu=0.7)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ma and Yarats, "Quasi-hyperbolic momentum and Adam for deep learning", ICLR 2019.
        https://arxiv.org/abs/1810.06801
    """

    state_names = ("momentum_buffer",)
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.999, nu: float = 0.7, weight_decay: float = 0.0,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, nu=nu, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(nu, "nu", closed=True)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        qhm_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"], nu=group["nu"],
                   weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="QHM",
    cls=QHM,
    canon_id="qhm",
    family="momentum",
    recipe={"lr": 0.05, "momentum": 0.9, "nu": 0.7},
    recipes={"rosenbrock": {"lr": 1e-3}},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"nu": 1.5}, "nu"),
    ),
    parity=(
        Parity("qhoptim", "qhoptim.pyt:QHM",
               {"lr": 0.1, "momentum": 0.9, "nu": 0.7, "weight_decay": 0.01},
               {"lr": 0.1, "momentum": 0.9, "nu": 0.7, "weight_decay": 0.01, "weight_decay_type": "grad"}),
        Parity("pytorch-optimizer", "pytorch_optimizer:QHM",
               {"lr": 0.1, "momentum": 0.9, "nu": 0.7, "weight_decay": 0.01},
               {"lr": 0.1, "momentum": 0.9, "nu": 0.7, "weight_decay": 0.01, "weight_decouple": False}),
    ),
))
