"""AdaPNM: positive-negative momentum with Adam's (AMSGrad's) denominator (Xie et al., 2021)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_, l2_into_grad
from ._ops import maximum_
from .pnm import pnm_buffers


def adapnm_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    pos_momentum: torch.Tensor,
    neg_momentum: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    max_exp_avg_sq: torch.Tensor | None,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    beta0: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """One AdaPNM step for one tensor, in place (the official code's rule).

    theta <- (1 - lr wd) theta;  m <- beta1^2 m + (1 - beta1^2) g;  v: Adam's;  u <- max(u, v);
    theta <- theta - lr / (1 - beta1^t) * ((1 + beta0) m - beta0 m_other) / (sqrt(...) (sqrt(u / (1 - beta2^t)) + eps)).
    """
    if decoupled:
        decoupled_decay_(param, lr, weight_decay)
    else:
        grad = l2_into_grad(grad, param, weight_decay)
    ema_(pos_momentum, grad, beta1**2)
    ema_sq_(exp_avg_sq, grad, beta2)
    second = exp_avg_sq if max_exp_avg_sq is None else maximum_(max_exp_avg_sq, exp_avg_sq)
    noise_norm = math.sqrt((1 + beta0) ** 2 + beta0**2)
    denom = second.sqrt().div_(math.sqrt(bias_correction(beta2, step))).add_(eps).mul_(noise_norm)
    direction = (pos_momentum * (1 + beta0)).add_(neg_momentum, alpha=-beta0)
    param.addcdiv_(direction, denom, value=-lr / bias_correction(beta1, step))


class AdaPNM(ZijOptimizer):
    r"""AdaPNM: positive-negative momentum divided by AMSGrad's second moment.

    The positive-negative momentum of :class:`PNM` (two alternating buffers,
    a positive multiple of this step's minus $\beta_0$ times the other's)
    replaces Adam's first moment; the denominator is the running maximum of
    the bias-corrected second moment, as in AMSGrad.

    $$
    \begin{aligned}
    \theta' &= (1 - \eta\lambda)\, \theta_{t-1} \\
    m_t &= \beta_1^{2}\, m_{t-2} + (1-\beta_1^{2})\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}, \qquad u_t = \max(u_{t-1},\ v_t) \\
    \theta_t &= \theta' - \frac{\eta}{1-\beta_1^{t}}\, \frac{(1+\beta_0)\, m_t - \beta_0\, m_{t-1}}{\sqrt{(1+\beta_0)^{2} + \beta_0^{2}}\, \bigl(\sqrt{u_t / (1-\beta_2^{t})} + \epsilon\bigr)}
    \end{aligned}
    $$

    This is the official code's rule: the first-moment correction uses
    $\beta_1^t$ although each buffer decays at $\beta_1^2$. ``amsgrad=False``
    uses $v_t$ for $u_t$; ``decoupled=False`` adds $\lambda\theta_{t-1}$ to the
    gradient instead (L2).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2, \beta_0)$: momentum and second-moment rates in [0, 1), negative-momentum weight $\beta_0 \ge 0$.
        eps: $\epsilon$, added to the bias-corrected root.
        weight_decay: weight decay $\lambda$ (decoupled unless ``decoupled=False``).
        amsgrad: divide by the running maximum $u_t$ (default) instead of $v_t$.
        decoupled: decay the weights directly (default) instead of adding $\lambda\theta$ to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaPNM(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Xie, Yuan, Zhu and Sugiyama, "Positive-Negative Momentum: Manipulating Stochastic Gradient Noise
        to Improve Generalization", ICML 2021.
        https://arxiv.org/abs/2103.17182
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999, 1.0), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = True, decoupled: bool = True, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad),
                                   decoupled=bool(decoupled), maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        defaults["betas"] = betas = tuple(betas)
        if len(betas) != 3:
            raise ValueError(f"Invalid betas: {betas!r} (expected 3 values)")
        check_unit(betas[0], "betas[0]")
        check_unit(betas[1], "betas[1]")
        check_nonnegative(betas[2], "betas[2]")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        for name in ("pos_momentum", "neg_momentum", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ()):
            state[name] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        beta1, beta2, beta0 = group["betas"]
        pos, neg = pnm_buffers(state)
        adapnm_update(p, grad, pos, neg, state["exp_avg_sq"], state["max_exp_avg_sq"] if "max_exp_avg_sq" in state else None,
                      step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2, beta0=beta0, eps=group["eps"],
                      weight_decay=group["weight_decay"], decoupled=group["decoupled"])


register(OptimizerEntry(
    name="AdaPNM",
    cls=AdaPNM,
    canon_id="adapnm",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.03}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.0, 1.0)) + (
        ErrorInput({"betas": (0.9, 0.999, -1.0)}, r"betas\[2\]"),),
    variants={"no_amsgrad": {"amsgrad": False}, "l2": {"decoupled": False, "weight_decay": 0.01}},
    parity=(
        # pytorch-optimizer adds eps to sqrt(u) before dividing by sqrt(1 - beta2^t) (the official code after it):
        # a tiny eps makes the placement immaterial.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaPNM",
               {"lr": 0.01, "betas": (0.9, 0.999, 1.0), "eps": 1e-12, "weight_decay": 0.1},
               {"lr": 0.01, "betas": (0.9, 0.999, 1.0), "eps": 1e-12, "weight_decay": 0.1, "weight_decouple": True,
                "ams_bound": True}),
    ),
))
