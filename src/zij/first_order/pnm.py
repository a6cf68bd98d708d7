"""PNM: positive-negative momentum (Xie et al., 2021)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, l2_into_grad


def pnm_buffers(state) -> tuple:
    """The (positive, negative) momentum buffers of this step: they swap roles between odd and even steps."""
    if state["step"] % 2 == 1:
        return state["pos_momentum"], state["neg_momentum"]
    return state["neg_momentum"], state["pos_momentum"]


def pnm_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    pos_momentum: torch.Tensor,
    neg_momentum: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta0: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """One PNM step for one tensor, in place.

    theta <- (1 - lr wd) theta;  m <- beta1^2 m + (1 - beta1^2) g  (this step's buffer);
    theta <- theta - lr * ((1 + beta0) m - beta0 m_other) / sqrt((1 + beta0)^2 + beta0^2).
    """
    if decoupled:
        decoupled_decay_(param, lr, weight_decay)
    else:
        grad = l2_into_grad(grad, param, weight_decay)
    ema_(pos_momentum, grad, beta1**2)
    noise_norm = math.sqrt((1 + beta0) ** 2 + beta0**2)
    direction = (pos_momentum * (1 + beta0)).add_(neg_momentum, alpha=-beta0)
    param.add_(direction, alpha=-lr / noise_norm)


class PNM(ZijOptimizer):
    r"""PNM: heavy-ball momentum plus a controlled share of the previous step's momentum, subtracted.

    Two momentum buffers take turns: each step updates one with the new
    gradient (at rate $\beta_1^2$, as each sees every other gradient) and moves
    along a positive multiple of it minus $\beta_0$ times the other. The mean
    direction is that of ordinary momentum, but the gradient noise is enlarged
    in a controlled way, which the authors link to flatter minima; the square
    root keeps the combination's noise scale normalized.

    $$
    \begin{aligned}
    \theta_{t-1} &\leftarrow (1 - \eta\lambda)\, \theta_{t-1} \\
    m_t &= \beta_1^{2}\, m_{t-2} + (1-\beta_1^{2})\, g_t, \qquad m_{-1} = m_0 = 0 \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{(1+\beta_0)\, m_t - \beta_0\, m_{t-1}}{\sqrt{(1+\beta_0)^{2} + \beta_0^{2}}}
    \end{aligned}
    $$

    ``decoupled=False`` adds $\lambda\theta_{t-1}$ to the gradient instead (L2).
    $\beta_0 = 0$ recovers heavy-ball momentum with coefficient $\beta_1^2$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_0)$: momentum coefficient in [0, 1) and weight $\beta_0 \ge 0$ of the negative momentum.
        weight_decay: weight decay $\lambda$ (decoupled unless ``decoupled=False``).
        decoupled: decay the weights directly (default) instead of adding $\lambda\theta$ to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.PNM(model.parameters(), lr=0.1, betas=(0.9, 1.0))
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Xie, Yuan, Zhu and Sugiyama, "Positive-Negative Momentum: Manipulating Stochastic Gradient Noise
        to Improve Generalization", ICML 2021.
        https://arxiv.org/abs/2103.17182
    """

    state_names = ("pos_momentum", "neg_momentum")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 1.0), weight_decay: float = 0.0, decoupled: bool = True,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, weight_decay=weight_decay, decoupled=bool(decoupled),
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        defaults["betas"] = betas = tuple(betas)
        if len(betas) != 2:
            raise ValueError(f"Invalid betas: {betas!r} (expected 2 values)")
        check_unit(betas[0], "betas[0]")
        check_nonnegative(betas[1], "betas[1]")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta0 = group["betas"]
        pos, neg = pnm_buffers(state)
        pnm_update(p, grad, pos, neg, lr=group["lr"], beta1=beta1, beta0=beta0, weight_decay=group["weight_decay"],
                   decoupled=group["decoupled"])


register(OptimizerEntry(
    name="PNM",
    cls=PNM,
    canon_id="pnm",
    family="momentum",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=invalid("lr", "weight_decay", betas=(1.0, 1.0)) + (ErrorInput({"betas": (0.9, -1.0)}, r"betas\[1\]"),),
    variants={"l2": {"decoupled": False, "weight_decay": 0.01}},
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:PNM", {"lr": 0.05, "betas": (0.9, 1.0), "weight_decay": 0.1},
               {"lr": 0.05, "betas": (0.9, 1.0), "weight_decay": 0.1, "weight_decouple": True}),
    ),
))
