"""Ano: the momentum's sign with the current gradient's magnitude over a Yogi-style moment (Kegreisz, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, sign_direction


def ano_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float, eps: float,
               weight_decay: float) -> None:
    """One Ano step for a tensor or a TensorList, in place.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) sign(g^2 - v) g^2;  v_hat = v / (1 - b2^t);
    theta <- (1 - lr wd) theta - lr |g| sign(m) / sqrt(v_hat + eps).
    """
    ema_(exp_avg, grad, beta1)
    square = grad.square()
    exp_avg_sq.mul_(beta2).addcmul_((square - exp_avg_sq).sign_(), square, value=1 - beta2)
    denom = (exp_avg_sq / bias_correction(beta2, step)).add_(eps).sqrt_()
    update = grad.abs().mul_(sign_direction(exp_avg)).div_(denom)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)


class Ano(ZijOptimizer):
    r"""Ano: step along the momentum's sign, sized by the current gradient over a Yogi-style second moment.

    The direction of each coordinate's step is the sign of a gradient moving average,
    which smooths out noise; its size is the current gradient's magnitude divided by
    the root of a second moment updated additively as in Yogi, so step sizes react at
    once rather than through a stale momentum. Meant for noisy, non-stationary problems
    such as reinforcement learning. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \operatorname{sign}\big(g_t^{2} - v_{t-1}\big)\, g_t^{2}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \frac{\lvert g_t\rvert}{\sqrt{\hat v_t + \epsilon}}\, \operatorname{sign}(m_t)
    \end{aligned}
    $$

    $\epsilon$ sits inside the square root, as in the official code.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the second moment.
        eps: $\epsilon$, added to $\hat v_t$ under the square root.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Ano(model.parameters(), lr=1e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kegreisz, "ANO : Faster is Better in Noisy Landscape", arXiv 2025. https://arxiv.org/abs/2508.18258
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.92, 0.99), weight_decay: float = 0.0, eps: float = 1e-8, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, eps=eps,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        ano_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"], beta1=beta1,
                   beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Ano",
    cls=Ano,
    canon_id="ano",
    family="sign-based",
    recipe={"lr": 0.02},
    recipes={"rosenbrock": {"lr": 2e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        # eps = 0: pytorch-optimizer adds eps outside the square root (sqrt(v_hat) + eps), the official code
        # (and zij) inside it; without eps both divide by sqrt(v_hat). 40 steps: its momentum is a lerp, zij's a
        # multiply-add, and at step 50 one coordinate's momentum crosses zero within that rounding, so its sign
        # (the step's direction) differs there.
        Parity("pytorch-optimizer", "pytorch_optimizer:Ano",
               {"lr": 1e-3, "betas": (0.92, 0.99), "eps": 0.0, "weight_decay": 0.1},
               {"lr": 1e-3, "betas": (0.92, 0.99), "eps": 0.0, "weight_decay": 0.1}, steps=40),
    ),
))
