"""FOCUS: signed momentum plus an attraction toward the moving average of the weights (Liu, Liu and Gore, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, ema_, sign_direction


def focus_update(param, grad, exp_avg, pbar, *, step: int, lr: float, beta1: float, beta2: float, gamma: float,
                 weight_decay: float) -> None:
    """One FOCUS step for a tensor or a TensorList, in place.

    m <- b1 m + (1 - b1) g;  pbar <- b2 pbar + (1 - b2) theta;  pbar_hat = pbar / (1 - b2^t);
    theta <- theta - lr (sign(m) + gamma sign(theta - pbar_hat)) - lr wd pbar_hat.
    """
    ema_(exp_avg, grad, beta1)
    ema_(pbar, param, beta2)
    target = pbar / bias_correction(beta2, step)
    update = (param - target).sign_().mul_(gamma).add_(sign_direction(exp_avg))
    param.add_(update, alpha=-lr)
    if weight_decay != 0:
        param.add_(target, alpha=-lr * weight_decay)


class FOCUS(ZijOptimizer):
    r"""FOCUS (First Order Concentrated Updating Scheme): Signum with a pull toward the averaged weights.

    Each coordinate moves by the learning rate along the sign of its momentum, as in
    Signum, plus $\gamma$ times the learning rate toward a bias-corrected moving average
    $\hat\theta_t$ of the weights themselves. In a narrow valley the signed steps keep the
    iterate moving along the floor while the attraction keeps it concentrated there.
    Weight decay, when used, is applied to the moving target (as in the official code),
    after the signed step.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    \bar\theta_t &= \beta_2\, \bar\theta_{t-1} + (1-\beta_2)\, \theta_{t-1}, \qquad \hat\theta_t = \frac{\bar\theta_t}{1-\beta_2^{t}} \\
    \theta_t &= \theta_{t-1} - \eta \Big( \operatorname{sign}(m_t) + \gamma\, \operatorname{sign}\big(\theta_{t-1} - \hat\theta_t\big) \Big) - \eta\lambda\, \hat\theta_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$, the size of the signed step.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the weight average.
        gamma: strength $\gamma \ge 0$ of the attraction toward the averaged weights.
        weight_decay: $\lambda$, decay applied to the averaged weights $\hat\theta_t$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.FOCUS(model.parameters(), lr=1e-3, gamma=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Liu, Liu and Gore, "FOCUS: First Order Concentrated Updating Scheme", arXiv 2025.
        https://arxiv.org/abs/2501.12243
    """

    state_names = ("exp_avg", "pbar")
    supports_foreach = True
    supports_compile = True
    compile_by_reciprocal = False  # sign(theta - pbar_hat) is 0 at the first step only with an exact division

    def __init__(self, params, lr: float = 1e-2, betas=(0.9, 0.999), gamma: float = 0.1, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, gamma=gamma, weight_decay=weight_decay, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(gamma, "gamma")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        focus_update(p, grad, state["exp_avg"], state["pbar"], step=state["step"], lr=group["lr"], beta1=beta1,
                     beta2=beta2, gamma=group["gamma"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="FOCUS",
    cls=FOCUS,
    canon_id="focus",
    family="sign-based",
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 2e-3}},
    errors=invalid("lr", "betas", "weight_decay") + (ErrorInput({"gamma": -0.1}, "gamma"),),
    variants={"weight_decay": {"weight_decay": 0.01}},
    parity=(
        # weight_decay = 0 only: pytorch-optimizer applies the decay before taking sign(theta - theta_hat),
        # the official code (and zij) after the signed step.
        Parity("pytorch-optimizer", "pytorch_optimizer:FOCUS", {"lr": 1e-3, "betas": (0.9, 0.99), "gamma": 0.2},
               {"lr": 1e-3, "betas": (0.9, 0.99), "gamma": 0.2}),
    ),
))
