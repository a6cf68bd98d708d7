"""Padam: partially adaptive momentum estimation (Chen et al., 2020)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import ema_, ema_sq_, l2_into_grad
from ._ops import maximum_, pow_


def padam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    partial: float,
) -> None:
    """One Padam step for one tensor, in place (the official code's rule).

    g <- g + weight_decay * theta;  m, v: Adam's moments;  v_max <- max(v_max, v) (amsgrad);
    theta <- theta - lr * sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(v_max) + eps)^(2 partial).
    """
    grad = l2_into_grad(grad, param, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        second = maximum_(max_exp_avg_sq, exp_avg_sq)
    denom = pow_(second.sqrt().add_(eps), 2 * partial)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    param.addcdiv_(exp_avg, denom, value=-step_size)


class Padam(ZijOptimizer):
    r"""Padam: AMSGrad whose second moment is raised to a partial power $p \le 1/2$.

    The denominator $(\sqrt{\hat v_t} + \epsilon)^{2p}$ interpolates between SGD
    with momentum ($p = 0$) and AMSGrad ($p = 1/2$): a small $p$ keeps much of
    Adam's fast early progress while generalizing more like SGD, which lets
    Padam run with SGD's large learning rates (0.1).

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2}, \qquad \hat v_t = \max(\hat v_{t-1}, v_t) \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, \frac{m_t}{\bigl(\sqrt{\hat v_t} + \epsilon\bigr)^{2p}}
    \end{aligned}
    $$

    This is the official code's rule: the paper's Algorithm 1 (no bias
    correction, no $\epsilon$, $m_t / \hat v_t^{\,p}$) with Adam's step-size
    bias correction and $\epsilon$ inside the power. ``amsgrad=False`` uses
    $v_t$ in place of the running maximum $\hat v_t$. Weight decay is L2.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (Padam takes SGD's, e.g. 0.1).
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        partial: partial adaptivity exponent $p$ in (0, 1/2]; the paper recommends 1/8, its code defaults to 1/4.
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$ before the power.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        amsgrad: keep the running maximum $\hat v_t$ (the paper's rule); ``False``: use $v_t$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Padam(model.parameters(), lr=0.1, partial=0.125)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Chen, Zhou, Tang, Yang, Cao and Gu, "Closing the Generalization Gap of Adaptive Gradient Methods
        in Training Deep Neural Networks", IJCAI 2020.
        https://arxiv.org/abs/1806.06763
    """

    supports_foreach = True
    per_element = True

    def __init__(self, params, lr: float = 1e-1, betas=(0.9, 0.999), partial: float = 0.125, eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = True, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, partial=partial, eps=eps, weight_decay=weight_decay,
                                   amsgrad=bool(amsgrad), maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(partial, "partial")
        if partial > 0.5:
            raise ValueError(f"Invalid partial: {partial!r} (expected a number in (0, 0.5])")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["exp_avg"] = self.zeros_like(p, group)
        state["exp_avg_sq"] = self.zeros_like(p, group)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        padam_update(p, grad, state["exp_avg"], state["exp_avg_sq"],
                     state["max_exp_avg_sq"] if "max_exp_avg_sq" in state else None, step=state["step"],
                     lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     partial=group["partial"])


register(OptimizerEntry(
    name="Padam",
    cls=Padam,
    canon_id="padam",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.005}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"partial": 0.0}, "partial"), ErrorInput({"partial": 0.75}, "partial"),
    ),
    variants={"no_amsgrad": {"amsgrad": False}},
    parity=(
        # pytorch-optimizer's Padam has no running maximum: compared with amsgrad=False (the maximum is
        # checked by hand in tests/optim/test_padam.py).
        Parity("pytorch-optimizer", "pytorch_optimizer:PAdam",
               {"lr": 1e-2, "betas": (0.9, 0.999), "partial": 0.25, "eps": 1e-8, "weight_decay": 0.01, "amsgrad": False},
               {"lr": 1e-2, "betas": (0.9, 0.999), "partial": 0.25, "eps": 1e-8, "weight_decay": 0.01,
                "weight_decouple": False}),
    ),
))
