"""Tiger: a tight-fisted optimizer, sign of one momentum buffer (Su, 2023)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, sign_direction


def tiger_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    *,
    lr: float,
    beta: float,
    weight_decay: float,
) -> None:
    """One Tiger step for one tensor, in place.

    m <- beta * m + (1 - beta) * g;  theta <- theta - lr * (sign(m) + weight_decay * theta).
    """
    ema_(exp_avg, grad, beta)
    decoupled_decay_(param, lr, weight_decay).add_(sign_direction(exp_avg), alpha=-lr)


class Tiger(ZijOptimizer):
    r"""Tiger (Tight-fisted optimizer): step along the sign of a gradient moving average, with decoupled decay.

    Tiger keeps a single momentum buffer and moves every coordinate by the
    learning rate against its sign, plus decoupled weight decay: Lion with
    $\beta_1 = \beta_2$, or Signum with decoupled decay. With only this one
    buffer, gradient accumulation can be folded into the momentum, which is
    where the name comes from. This class implements that core rule; the
    author's TensorFlow code also multiplies each tensor's learning rate by
    the root mean square of its weights, halves the rate and drops the decay
    for biases and normalization parameters, and guards against NaN
    gradients; those extras are not included (use parameter groups for the
    bias rule).

    $$
    \begin{aligned}
    m_t &= \beta\, m_{t-1} + (1-\beta)\, g_t \\
    \theta_t &= \theta_{t-1} - \eta \left( \operatorname{sign}(m_t) + \lambda\, \theta_{t-1} \right)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        beta: momentum decay rate $\beta$ in $[0, 1)$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Tiger(model.parameters(), lr=1e-3, beta=0.965, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Su, "Tiger: A Tight-fisted Optimizer", GitHub 2023. https://github.com/bojone/tiger
    """

    state_names = ("exp_avg",)
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.965, weight_decay: float = 0.01, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(beta, "beta")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        tiger_update(p, grad, state["exp_avg"], lr=group["lr"], beta=group["beta"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Tiger",
    cls=Tiger,
    canon_id="tiger",
    family="sign-based",
    recipe={"lr": 0.01, "beta": 0.9, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 2e-3}},
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"beta": 1.0}, "beta"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Tiger",
               {"lr": 1e-3, "beta": 0.965, "weight_decay": 0.1},
               {"lr": 1e-3, "beta": 0.965, "weight_decay": 0.1, "weight_decouple": True, "fixed_decay": False}),
    ),
))
