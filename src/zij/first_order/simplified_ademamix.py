"""Simplified-AdEMAMix: one undamped momentum plus the current gradient (Morwani et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_sq_


def beta1_schedule(step: int, beta1: float, min_beta1: float, warmup: int | None) -> float:
    """beta1_t: the half-life 1 / log_{1/2}(beta) grows linearly from that of min_beta1 to that of beta1 over
    T steps, i.e. beta1_t = exp(ln b0 ln b1 / ((1 - t/T) ln b1 + (t/T) ln b0)) for t < T (beta1 without warm-up)."""
    if warmup is None or step >= warmup:
        return beta1
    a = step / warmup
    log0, log1 = math.log(min_beta1), math.log(beta1)
    return math.exp(log0 * log1 / ((1 - a) * log1 + a * log0))


def simplified_ademamix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    alpha: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One Simplified-AdEMAMix step for one tensor, in place (``beta1`` is this step's value).

    m <- b1 m + g  (no (1 - b1) damping);  v <- b2 v + (1 - b2) g^2;
    theta <- theta - lr * ((m + alpha g) / (sqrt(v / (1 - b2^t)) + eps) + wd * theta).
    """
    exp_avg.mul_(beta1).add_(grad)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    numerator = exp_avg.add(grad, alpha=alpha)
    decoupled_decay_(param, lr, weight_decay).addcdiv_(numerator, denom, value=-lr)


class SimplifiedAdEMAMix(ZijOptimizer):
    r"""Simplified-AdEMAMix: Adam's denominator over an undamped momentum plus the current gradient.

    AdEMAMix mixes a fast and a slow gradient average. Its simplified form
    keeps a single momentum that sums past gradients without the usual
    $(1-\beta_1)$ damping (a "theory-style" heavy-ball momentum) and adds the
    current gradient with weight $\alpha$, which plays the part of the fast
    average. Because the momentum is not damped, its scale is about
    $1/(1-\beta_1)$ times Adam's: the learning rate must be smaller. Weight
    decay is decoupled. $\beta_1$ may be warmed up from $\beta_{1,\min}$ so
    that the momentum's half-life grows linearly.

    $$
    \begin{aligned}
    m_t &= \beta_{1,t}\, m_{t-1} + g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta \Bigl(\frac{m_t + \alpha\, g_t}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} + \lambda\, \theta_{t-1}\Bigr) \\
    \beta_{1,t} &= \exp\Bigl(\frac{\ln\beta_{1,\min} \ln\beta_1}{(1 - t/T) \ln\beta_1 + (t/T) \ln\beta_{1,\min}}\Bigr) \text{ for } t < T, \qquad \beta_{1,t} = \beta_1 \text{ otherwise}
    \end{aligned}
    $$

    This follows the authors' official code with its defaults (no bias
    correction of $m_t$, bias-corrected $v_t$); its optional division of
    $m_t$ by $\sum_{i<t} \beta_1^{i}$ is not part of this class, and its
    half-life warm-up adds $10^{-8}$ inside a logarithm, which this class
    leaves out. With $\beta_1 = 0$ and $\alpha = 0$ the rule is AdamW with
    $\beta_1 = 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$; the authors suggest Adam's learning rate times
            $\sqrt{(1-\beta_{1,\min})(1-\beta_1)}$.
        betas: $(\beta_1, \beta_2)$, momentum and second-moment decay rates.
        alpha: $\alpha$, weight of the current gradient (the authors find it should shrink as the
            batch grows).
        beta1_warmup: $T$, warm-up length of $\beta_1$ in steps (``None``: no warm-up; the authors use
            the whole run).
        min_beta1: $\beta_{1,\min}$, the value $\beta_1$ warms up from.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SimplifiedAdEMAMix(model.parameters(), lr=1e-4, betas=(0.99, 0.95), beta1_warmup=1000)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Morwani, Vyas, Zhang and Kakade, "Connections between Schedule-Free Optimizers, AdEMAMix, and
        Accelerated SGD Variants", arXiv 2025. https://arxiv.org/abs/2502.02431
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.99, 0.95), alpha: float = 0.0,
                 beta1_warmup: int | None = None, min_beta1: float = 0.9, eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, alpha=alpha, beta1_warmup=beta1_warmup, min_beta1=min_beta1,
                                   eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(alpha, "alpha")
        if beta1_warmup is not None:
            check_int(beta1_warmup, "beta1_warmup")
            if betas[0] <= 0:
                raise ValueError(f"Invalid betas[0]: {betas[0]!r} (the beta1 warm-up needs beta1 > 0)")
        check_unit(min_beta1, "min_beta1")
        if min_beta1 <= 0:
            raise ValueError(f"Invalid min_beta1: {min_beta1!r} (expected a number in (0, 1))")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        step = state["step"]
        simplified_ademamix_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=step, lr=group["lr"],
                                   beta1=beta1_schedule(step, beta1, group["min_beta1"], group["beta1_warmup"]),
                                   beta2=beta2, alpha=group["alpha"], eps=group["eps"],
                                   weight_decay=group["weight_decay"])


# No parity entry: pytorch-optimizer 4.1.0's SimplifiedAdEMAMix damps the momentum by (1 - beta1) and divides
# the update by sqrt(1 - beta2^t) where the official code multiplies by it, so it computes a different rule.
# tests/optim/test_simplified_ademamix.py checks identities and hand-computed steps instead.
register(OptimizerEntry(
    name="SimplifiedAdEMAMix",
    cls=SimplifiedAdEMAMix,
    canon_id="simplified-ademamix",
    family="adam-family",
    aliases=("Simplified-AdEMAMix",),
    recipe={"lr": 0.005, "betas": (0.9, 0.999), "alpha": 1.0},
    recipes={"rosenbrock": {"lr": 1e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"alpha": -1.0}, "alpha"),
        ErrorInput({"beta1_warmup": 0}, "beta1_warmup"),
        ErrorInput({"betas": (0.0, 0.95), "beta1_warmup": 10}, r"betas\[0\]"),
        ErrorInput({"min_beta1": 0.0}, "min_beta1"),
    ),
))
