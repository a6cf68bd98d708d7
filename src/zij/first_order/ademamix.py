"""AdEMAMix: AdamW with a mixture of a fast and a slow momentum (Pagliardini et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def alpha_schedule(step: int, alpha: float, warmup: int | None) -> float:
    """alpha_t = min(t * alpha / T_alpha, alpha) (alpha itself without warm-up)."""
    return alpha if warmup is None else min(step * alpha / warmup, alpha)


def beta3_schedule(step: int, beta1: float, beta3: float, warmup: int | None) -> float:
    """beta3_t = min(exp(ln b1 ln b3 / ((1 - t/T) ln b3 + (t/T) ln b1)), b3): the half-life of the slow
    average grows linearly from that of beta1 to that of beta3 over T steps (beta3 itself without warm-up)."""
    if warmup is None:
        return beta3
    a = step / warmup
    log1, log3 = math.log(beta1), math.log(beta3)
    return min(math.exp(log1 * log3 / ((1 - a) * log3 + a * log1)), beta3)


def ademamix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_slow: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    alpha: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdEMAMix step for one tensor, in place (``beta3`` and ``alpha`` are this step's values).

    m1 <- b1 m1 + (1 - b1) g;  m2 <- b3 m2 + (1 - b3) g;  v <- b2 v + (1 - b2) g^2;
    theta <- theta - lr * ((m1 / (1 - b1^t) + alpha m2) / (sqrt(v / (1 - b2^t)) + eps) + wd * theta).
    """
    ema_(exp_avg, grad, beta1)
    ema_(exp_avg_slow, grad, beta3)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    numerator = (exp_avg / (1 - beta1**step)).add_(exp_avg_slow, alpha=alpha)
    decoupled_decay_(param, lr, weight_decay).addcdiv_(numerator, denom, value=-lr)


class AdEMAMix(ZijOptimizer):
    r"""AdEMAMix: AdamW stepping along a mix of a fast and a very slow gradient average.

    A single exponential average cannot weigh both the last few gradients and
    gradients from thousands of steps ago. AdEMAMix keeps Adam's fast average
    $m^{(1)}$ and adds a slow one $m^{(2)}$ (decay $\beta_3$ close to 1, not
    bias-corrected) with weight $\alpha$. For stability early in training,
    $\alpha$ and $\beta_3$ can be warmed up: $\alpha_t$ grows linearly from 0,
    and $\beta_{3,t}$ from $\beta_1$ such that the half-life of $m^{(2)}$ grows
    linearly. Weight decay is decoupled.

    $$
    \begin{aligned}
    m^{(1)}_t &= \beta_1 m^{(1)}_{t-1} + (1-\beta_1)\, g_t \\
    m^{(2)}_t &= \beta_{3,t}\, m^{(2)}_{t-1} + (1-\beta_{3,t})\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta \Bigl(\frac{m^{(1)}_t / (1-\beta_1^{t}) + \alpha_t\, m^{(2)}_t}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} + \lambda\, \theta_{t-1}\Bigr) \\
    \alpha_t &= \min\Bigl(\frac{t\,\alpha}{T_\alpha},\, \alpha\Bigr), \qquad
    \beta_{3,t} = \min\Bigl(\exp\Bigl(\frac{\ln\beta_1 \ln\beta_3}{(1 - t/T_{\beta_3}) \ln\beta_3 + (t/T_{\beta_3}) \ln\beta_1}\Bigr),\, \beta_3\Bigr)
    \end{aligned}
    $$

    Without warm-up ($T_\alpha$ or $T_{\beta_3}$ is ``None``), $\alpha_t = \alpha$
    and $\beta_{3,t} = \beta_3$. This is Algorithm 1 of the paper; the official
    code computes the same $\beta_3$ schedule through half-lives, with a
    $10^{-8}$ guard inside its logarithm. With $\alpha = 0$ the rule is AdamW.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2, \beta_3)$, decay rates of the fast average, the second moment and
            the slow average.
        alpha: $\alpha$, weight of the slow average.
        beta3_warmup: $T_{\beta_3}$, warm-up length of $\beta_3$ in steps (``None``: no warm-up; the paper
            uses the whole run).
        alpha_warmup: $T_\alpha$, warm-up length of $\alpha$ in steps (``None``: no warm-up).
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdEMAMix(model.parameters(), lr=1e-3, alpha=8.0, beta3_warmup=10_000, alpha_warmup=10_000)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Pagliardini, Ablin and Grangier, "The AdEMAMix Optimizer: Better, Faster, Older", ICLR 2025.
        https://arxiv.org/abs/2409.03137
    """

    state_names = ("exp_avg", "exp_avg_slow", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999, 0.9999), alpha: float = 2.0,
                 beta3_warmup: int | None = None, alpha_warmup: int | None = None, eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, alpha=alpha, beta3_warmup=beta3_warmup,
                                   alpha_warmup=alpha_warmup, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype,
                                   n_betas=3)
        check_nonnegative(alpha, "alpha")
        if beta3_warmup is not None:
            check_int(beta3_warmup, "beta3_warmup")
            if betas[0] <= 0:
                raise ValueError(f"Invalid betas[0]: {betas[0]!r} (the beta3 warm-up needs beta1 > 0)")
        if alpha_warmup is not None:
            check_int(alpha_warmup, "alpha_warmup")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2, beta3 = group["betas"]
        step = state["step"]
        ademamix_update(p, grad, state["exp_avg"], state["exp_avg_slow"], state["exp_avg_sq"], step=step,
                        lr=group["lr"], beta1=beta1, beta2=beta2,
                        beta3=beta3_schedule(step, beta1, beta3, group["beta3_warmup"]),
                        alpha=alpha_schedule(step, group["alpha"], group["alpha_warmup"]),
                        eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdEMAMix",
    cls=AdEMAMix,
    canon_id="ademamix",
    family="adam-family",
    recipe={"lr": 0.02, "alpha": 1.0},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 0.999, 1.0)) + (
        ErrorInput({"betas": (0.9, 0.999)}, "betas"),
        ErrorInput({"alpha": -1.0}, "alpha"),
        ErrorInput({"beta3_warmup": 0}, "beta3_warmup"),
        ErrorInput({"alpha_warmup": 2.5}, "alpha_warmup"),
        ErrorInput({"betas": (0.0, 0.999, 0.9999), "beta3_warmup": 10}, r"betas\[0\]"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:AdEMAMix",
               {"lr": 1e-2, "betas": (0.9, 0.999, 0.9999), "alpha": 5.0, "eps": 1e-8, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.999, 0.9999), "alpha": 5.0, "t_alpha_beta3": None, "eps": 1e-8,
                "weight_decay": 0.1, "weight_decouple": True, "fixed_decay": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:AdEMAMix",
               {"lr": 1e-2, "betas": (0.8, 0.99, 0.999), "alpha": 3.0, "beta3_warmup": 30, "alpha_warmup": 30,
                "eps": 1e-8, "weight_decay": 0.0},
               {"lr": 1e-2, "betas": (0.8, 0.99, 0.999), "alpha": 3.0, "t_alpha_beta3": 30, "eps": 1e-8,
                "weight_decay": 0.0}),
    ),
))
