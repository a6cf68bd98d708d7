"""Adan: adaptive Nesterov momentum from gradient differences (Xie et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def adan_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_diff: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    prev_grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    eps: float,
    weight_decay: float,
    no_prox: bool,
) -> None:
    """One Adan step for one tensor, in place (``prev_grad`` holds g_{t-1}; at t = 1 it must equal g_1).

    d = g - g_prev;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) d;  n <- b3 n + (1 - b3) (g + b2 d)^2;
    u = (m / (1 - b1^t) + b2 v / (1 - b2^t)) / (sqrt(n / (1 - b3^t)) + eps);
    theta <- (theta - lr u) / (1 + lr wd)   or, with no_prox, theta <- theta (1 - lr wd) - lr u.
    """
    diff = grad - prev_grad
    ema_(exp_avg, grad, beta1)
    ema_(exp_avg_diff, diff, beta2)
    nesterov_grad = diff.mul_(beta2).add_(grad)
    ema_sq_(exp_avg_sq, nesterov_grad, beta3)
    denom = (exp_avg_sq / (1 - beta3**step)).sqrt_().add_(eps)
    direction = exp_avg / (1 - beta1**step) + exp_avg_diff * (beta2 / (1 - beta2**step))
    if no_prox:
        decoupled_decay_(param, lr, weight_decay).addcdiv_(direction, denom, value=-lr)
    else:
        param.addcdiv_(direction, denom, value=-lr).div_(1 + lr * weight_decay)
    prev_grad.copy_(grad)


class Adan(ZijOptimizer):
    r"""Adan: Adam-style steps along a Nesterov momentum estimated from gradient differences.

    Nesterov's look-ahead gradient is approximated without a second gradient
    evaluation by adding a moving average of successive gradient differences
    to the momentum; the second moment is taken of the corrected gradient
    $g_t + \beta_2 (g_t - g_{t-1})$. Weight decay is applied as a proximal
    step, dividing by $1 + \eta\lambda$ (``no_prox=True``: multiplying by
    $1 - \eta\lambda$ before the step, as in AdamW).

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, (g_t - g_{t-1}) \\
    n_t &= \beta_3 n_{t-1} + (1-\beta_3)\, \bigl(g_t + \beta_2 (g_t - g_{t-1})\bigr)^{2} \\
    u_t &= \frac{m_t / (1-\beta_1^{t}) + \beta_2\, v_t / (1-\beta_2^{t})}{\sqrt{n_t / (1-\beta_3^{t})} + \epsilon} \\
    \theta_t &= \frac{\theta_{t-1} - \eta\, u_t}{1 + \eta\lambda}
    \end{aligned}
    $$

    The moments start at zero and $g_0 = g_1$, so the first difference is
    zero. This follows the authors' official code. The paper writes the decay
    rates the other way round ($m_t = (1-\beta_1) m_{t-1} + \beta_1 g_t$, with
    defaults 0.02, 0.08, 0.01), initializes $m$ and $n$ from the first
    gradient instead of bias-correcting them, and describes an optional
    restart of the moments; the official code and this class use
    $\beta_i^{\text{here}} = 1 - \beta_i^{\text{paper}}$ and bias correction, and
    neither restarts automatically (the official code offers a manual
    ``restart_opt()``; here, build a new optimizer). The official code's optional global gradient-norm clipping
    (``max_grad_norm``) is not part of this class.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2, \beta_3)$, decay rates of the gradient, gradient-difference and
            squared-corrected-gradient averages.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$ (proximal unless ``no_prox``).
        no_prox: apply the decay as $\theta \leftarrow (1 - \eta\lambda)\theta$ before the step instead of
            dividing by $1 + \eta\lambda$ after it.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Adan(model.parameters(), lr=1e-3, weight_decay=0.02)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Xie, Zhou, Li, Lin and Yan, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
        Deep Models", IEEE TPAMI 2024. https://arxiv.org/abs/2208.06677
    """

    state_names = ("exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.98, 0.92, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.0, no_prox: bool = False, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 no_prox=bool(no_prox), maximize=maximize, foreach=foreach, state_dtype=state_dtype, n_betas=3))

    def update(self, p, grad, state, group):
        if state["step"] == 1:
            state["prev_grad"].copy_(grad)  # g_0 = g_1: the first difference is zero
        beta1, beta2, beta3 = group["betas"]
        adan_update(p, grad, state["exp_avg"], state["exp_avg_diff"], state["exp_avg_sq"], state["prev_grad"],
                    step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2, beta3=beta3, eps=group["eps"],
                    weight_decay=group["weight_decay"], no_prox=group["no_prox"])


register(OptimizerEntry(
    name="Adan",
    cls=Adan,
    canon_id="adan",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.98, 1.0, 0.99)) + (
        ErrorInput({"betas": (0.98, 0.92)}, "betas"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Adan",
               {"lr": 1e-2, "betas": (0.98, 0.92, 0.99), "eps": 1e-8, "weight_decay": 0.05},
               {"lr": 1e-2, "betas": (0.98, 0.92, 0.99), "eps": 1e-8, "weight_decay": 0.05,
                "weight_decouple": False, "max_grad_norm": 0.0}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Adan",
               {"lr": 1e-2, "betas": (0.9, 0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1, "no_prox": True},
               {"lr": 1e-2, "betas": (0.9, 0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1,
                "weight_decouple": True, "max_grad_norm": 0.0}),
    ),
))
