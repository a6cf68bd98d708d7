"""FTRL-Proximal: follow the regularized leader with per-coordinate rates (McMahan et al., 2013)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import nonfinite_into_
from ._ops import map_


def _solve(z: torch.Tensor, denom: torch.Tensor, lambda1: float) -> torch.Tensor:
    """The closed-form weight: 0 where |z| <= lambda1, else -(z - lambda1 sign z) / denom."""
    weight = torch.where(z.abs() > lambda1, (z.sign() * lambda1 - z) / denom, torch.zeros_like(z))
    return nonfinite_into_(weight, z, denom)


def ftrl_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    z: torch.Tensor,
    n: torch.Tensor,
    *,
    lr: float,
    beta: float,
    lambda1: float,
    lambda2: float,
) -> None:
    """One FTRL-Proximal step for one tensor, in place.

    sigma = (sqrt(n + g^2) - sqrt(n)) / lr;  z <- z + g - sigma theta;  n <- n + g^2;
    theta <- 0 if |z| <= lambda1, else -(z - lambda1 sign(z)) / ((beta + sqrt(n)) / lr + lambda2).
    """
    old_root = n.sqrt()
    n.addcmul_(grad, grad)
    root = n.sqrt()
    sigma = (root - old_root).div_(lr)
    z.add_(grad).sub_(sigma.mul_(param))
    denom = root.add_(beta).div_(lr).add_(lambda2)
    param.copy_(map_(_solve, z, denom, lambda1))


class FTRL(ZijOptimizer):
    r"""FTRL-Proximal: each weight is the closed-form minimizer of the accumulated linearized losses.

    The per-coordinate state $z_t$ sums the gradients, corrected so that the
    proximal terms center on past iterates, and $n_t$ sums the squared
    gradients, giving AdaGrad's per-coordinate rate $\eta/(\delta + \sqrt{n_t})$.
    The $L_1$ term $\lambda_1$ sets a weight exactly to zero while
    $\lvert z_t\rvert \le \lambda_1$, which makes the solution sparse.

    $$
    \begin{aligned}
    \sigma_t &= \frac{\sqrt{n_{t-1} + g_t^{2}} - \sqrt{n_{t-1}}}{\eta} \\
    z_t &= z_{t-1} + g_t - \sigma_t\, \theta_{t-1} \\
    n_t &= n_{t-1} + g_t^{2} \\
    \theta_t &= \begin{cases}
      0 & \text{if } \lvert z_t\rvert \le \lambda_1 \\
      -\dfrac{z_t - \lambda_1 \operatorname{sign}(z_t)}{(\delta + \sqrt{n_t})/\eta + \lambda_2} & \text{otherwise}
    \end{cases}
    \end{aligned}
    $$

    The weights are recomputed from $(z_t, n_t)$ at every step (the paper
    computes them lazily, before each prediction, which is the same). With
    $\delta = 0$ and $\lambda_2 = 0$, a coordinate whose gradients have all
    been zero stays at 0. A step at learning rate 0 (the first step of a warm-up
    schedule that starts at zero) changes neither the weights nor the state.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (the paper's $\alpha$).
        beta: $\delta \ge 0$ in the per-coordinate rate (the paper's $\beta$, which it reports 1 is usually good for).
        lambda1: $L_1$ regularization strength $\lambda_1 \ge 0$.
        lambda2: $L_2$ regularization strength $\lambda_2 \ge 0$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.FTRL(model.parameters(), lr=0.1, lambda1=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        McMahan et al., "Ad Click Prediction: a View from the Trenches", KDD 2013.
        https://research.google/pubs/ad-click-prediction-a-view-from-the-trenches/
    """

    state_names = ("z", "n")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-1, beta: float = 1.0, lambda1: float = 0.0, lambda2: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, lambda1=lambda1, lambda2=lambda2, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(beta, "beta")
        check_nonnegative(lambda1, "lambda1")
        check_nonnegative(lambda2, "lambda2")
        if lr == 0:
            raise ValueError("Invalid lr: 0 (FTRL divides by the learning rate; expected a number > 0)")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        if group["lr"] == 0:  # a schedule's zero: no step (the rule divides by lr), weights and state unchanged
            return
        ftrl_update(p, grad, state["z"], state["n"], lr=group["lr"], beta=group["beta"], lambda1=group["lambda1"],
                    lambda2=group["lambda2"])


register(OptimizerEntry(
    name="FTRL",
    cls=FTRL,
    canon_id="ftrl",
    family="adaptive",
    recipe={"lr": 0.5},
    errors=invalid("lr") + (ErrorInput({"beta": -1.0}, "beta"), ErrorInput({"lambda1": -1.0}, "lambda1"),
                            ErrorInput({"lambda2": -1.0}, "lambda2")),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:FTRL",
               {"lr": 0.1, "beta": 1.0, "lambda1": 1e-3, "lambda2": 0.01},
               {"lr": 0.1, "lr_power": -0.5, "beta": 1.0, "lambda_1": 1e-3, "lambda_2": 0.01}),
    ),
))
