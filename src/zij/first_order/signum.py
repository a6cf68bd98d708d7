"""Signum and signSGD: steps along the sign of the momentum or gradient (Bernstein et al., 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import ema_, sign_direction


def signum_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """One Signum step for one tensor, in place.

    g <- g + weight_decay * theta;  m <- momentum * m + (1 - momentum) * g;
    theta <- theta - lr * sign(m).  With momentum = 0, m = g: signSGD.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    if momentum == 0:
        momentum_buffer.copy_(grad)
    else:
        ema_(momentum_buffer, grad, momentum)
    param.add_(sign_direction(momentum_buffer), alpha=-lr)


class Signum(ZijOptimizer):
    r"""Signum (signSGD with momentum): step along the sign of a gradient moving average.

    Every coordinate moves by exactly the learning rate, in the direction
    opposite to the sign of an exponential moving average of the gradient.
    With ``momentum=0`` the average is the gradient itself and the method is
    signSGD. An optional L2 term is added to the gradient before averaging
    (it is not part of the paper's algorithm; with $\lambda = 0$ this is the
    paper's Signum).

    $$
    \begin{aligned}
    m_t &= \beta\, m_{t-1} + (1-\beta)\,(g_t + \lambda\, \theta_{t-1}) \\
    \theta_t &= \theta_{t-1} - \eta\, \operatorname{sign}(m_t)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$, the size of every coordinate's step.
        momentum: momentum coefficient $\beta$ in $[0, 1)$; 0 gives signSGD.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Signum(model.parameters(), lr=1e-3, momentum=0.9)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Bernstein, Wang, Azizzadenesheli and Anandkumar, "signSGD: Compressed
        Optimisation for Non-Convex Problems", ICML 2018.
        https://arxiv.org/abs/1802.04434
    """

    state_names = ("momentum_buffer",)
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        signum_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                      weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Signum",
    cls=Signum,
    canon_id="signsgd",
    family="sign-based",
    aliases=("signSGD",),
    recipe={"lr": 0.01, "momentum": 0.9},
    recipes={"rosenbrock": {"lr": 2e-3}},
    errors=invalid("lr", "momentum", "weight_decay"),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:SignSGD",
               {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.1},
               {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.1, "weight_decouple": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:SignSGD",
               {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0},
               {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0}),
    ),
))
