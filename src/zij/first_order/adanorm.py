"""AdaNorm (AdamNorm): Adam with a gradient-norm correction of the first moment (Dubey et al., 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, ema_, ema_sq_, l2_into_grad
from ._ops import map_


def _norm_scale(grad_norm: torch.Tensor, norm_avg: torch.Tensor) -> torch.Tensor:
    """e / ||g|| where the average exceeds the norm (and the norm is not 0), else 1 (a 0-dim tensor)."""
    boost = (norm_avg > grad_norm) & (grad_norm > 0)
    return torch.where(boost, norm_avg / torch.where(boost, grad_norm, torch.ones_like(grad_norm)),
                       torch.ones_like(grad_norm))


def adanorm_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    exp_grad_norm: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    gamma: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdamNorm step for one tensor (or a TensorList), in place (the official code's default path).

    g <- g + wd theta;  e <- gamma e + (1 - gamma) ||g||;  s = (e / ||g||) g if e > ||g|| else g;
    m <- beta1 m + (1 - beta1) s;  v <- beta2 v + (1 - beta2) g^2 + eps;
    theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v / (1 - beta2^t)) + eps).
    """
    grad = l2_into_grad(grad, param, weight_decay)
    grad_norm = grad.norm()
    ema_(exp_grad_norm, grad_norm, gamma)
    scale = map_(_norm_scale, grad_norm, exp_grad_norm)
    ema_(exp_avg, map_(torch.mul, grad, scale), beta1)
    ema_sq_(exp_avg_sq, grad, beta2).add_(eps)
    denom = (exp_avg_sq / bias_correction(beta2, step)).sqrt_().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction(beta1, step))


class AdaNorm(ZijOptimizer):
    r"""AdaNorm (AdamNorm): Adam whose first moment sees gradients rescaled up to their average norm.

    Each tensor keeps a running average $e_t$ of its gradient's norm. When the
    current gradient is smaller than that average, its norm is raised to
    $e_t$ before it enters the first moment, so momentum keeps a
    representative magnitude through flat stretches; the second moment still
    sees the raw gradient.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    e_t &= \gamma\, e_{t-1} + (1-\gamma)\, \lVert \tilde g_t\rVert_2 \\
    s_t &= \begin{cases} \dfrac{e_t}{\lVert \tilde g_t\rVert_2}\, \tilde g_t & \text{if } e_t > \lVert \tilde g_t\rVert_2 \\ \tilde g_t & \text{otherwise} \end{cases} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, s_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} + \epsilon \\
    \theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^{t}}\, \frac{m_t}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon}
    \end{aligned}
    $$

    This is the default path of the official AdamNorm (L2 weight decay,
    $\epsilon$ also added to the stored $v_t$). The norm is per parameter
    tensor; a zero gradient is left as it is.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        eps: $\epsilon$, added to $v_t$ at each step and to the bias-corrected root.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        gamma: decay rate $\gamma$ of the gradient-norm average (0.95 in the official code).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaNorm(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Dubey, Singh and Chaudhuri, "AdaNorm: Adaptive Gradient Norm Correction based Optimizer for CNNs",
        WACV 2023.
        https://arxiv.org/abs/2210.06364
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 gamma: float = 0.95, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, gamma=gamma,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(gamma, "gamma")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["exp_grad_norm"] = torch.zeros((), dtype=state["exp_avg"].dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adanorm_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["exp_grad_norm"], step=state["step"],
                       lr=group["lr"], beta1=beta1, beta2=beta2, gamma=group["gamma"], eps=group["eps"],
                       weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaNorm",
    cls=AdaNorm,
    canon_id="adanorm",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (ErrorInput({"gamma": 1.0}, "gamma"),),
    parity=(
        # pytorch-optimizer neither adds eps to the stored v nor puts it after the bias correction, and decays
        # decoupled by default: compared with L2 decay and eps = 0. It also always adds 1e-15 under the square
        # root (not an argument), which moves the few coordinates whose v is near 1e-9 by ~1e-8 relative and one
        # parameter near zero by ~1e-6 relative: hence rtol 1e-5 (the rules agree to 1e-13 where v is not tiny).
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaNorm",
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 0.0, "weight_decay": 0.01, "gamma": 0.95},
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 0.0, "weight_decay": 0.01, "r": 0.95,
                "weight_decouple": False, "ams_bound": False}, rtol=1e-5),
    ),
))
