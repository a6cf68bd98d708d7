"""Grokfast-AdamW: AdamW on gradients whose slow component is amplified (Lee et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_


def grokfast_adamw_update(param, grad, exp_avg, exp_avg_sq, grok_avg, *, step: int, lr: float, beta1: float,
                          beta2: float, eps: float, weight_decay: float, alpha: float, lamb: float, after_step: int,
                          normalize_lr: bool) -> None:
    """One Grokfast-AdamW step for a tensor or a TensorList, in place.

    eta = lr / (1 + lamb) if normalize_lr;  theta <- (1 - eta wd) theta;
    mu <- g at t = 1;  if t > after_step: mu <- alpha mu + (1 - alpha) g, g <- g + lamb mu;
    m, v: Adam's moments of g;  theta <- theta - eta / (1 - b1^t) * m / max(sqrt(v) / sqrt(1 - b2^t), eps).
    """
    if step == 1:
        grok_avg.copy_(grad)
    if normalize_lr:
        lr = lr / (1.0 + lamb)
    decoupled_decay_(param, lr, weight_decay)
    if step > after_step and lamb > 0:
        ema_(grok_avg, grad, alpha)
        grad = grad.add(grok_avg, alpha=lamb)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = exp_avg_sq.sqrt().div_(math.sqrt(bias_correction(beta2, step))).clamp_min_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction(beta1, step))


class GrokFastAdamW(ZijOptimizer):
    r"""Grokfast-AdamW: AdamW fed gradients with their slow, low-frequency part amplified.

    Grokfast treats the sequence of a parameter's gradients as a signal: an
    exponential moving average $\mu_t$ (a low-pass filter, started at the
    first gradient) is scaled by $\lambda_{\mathrm{amp}}$ and added to each
    gradient, which speeds up grokking, the late jump from memorizing to
    generalizing. This class runs AdamW on the filtered gradient, with the
    decoupled weight decay applied first, the filter off for the first
    ``after_step`` steps, and, with ``normalize_lr``, the learning rate divided
    by $1 + \lambda_{\mathrm{amp}}$ to offset the larger gradients. Adam's
    denominator is floored at $\epsilon$ rather than offset by it.

    $$
    \begin{aligned}
    \eta' &= \eta / (1 + \lambda_{\mathrm{amp}}) \ \text{(normalize\_lr, else } \eta' = \eta), \qquad \theta_{t-1} \leftarrow (1 - \eta'\lambda)\, \theta_{t-1} \\
    \mu_t &= \alpha\, \mu_{t-1} + (1-\alpha)\, g_t, \quad \mu_0 = g_1, \qquad \tilde g_t = g_t + \lambda_{\mathrm{amp}}\, \mu_t \qquad (t > t_0;\ \text{else } \tilde g_t = g_t,\ \mu_t = \mu_{t-1}) \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    \theta_t &= \theta_{t-1} - \frac{\eta'}{1-\beta_1^{t}}\, \frac{m_t}{\max\bigl(\sqrt{v_t / (1-\beta_2^{t})},\ \epsilon\bigr)}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of Adam's moments.
        eps: $\epsilon$, the floor of the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        alpha: $\alpha$, the momentum of the gradient filter.
        lamb: $\lambda_{\mathrm{amp}}$, the amplification of the filtered gradient (0: AdamW).
        after_step: $t_0$, the number of first steps without the filter.
        normalize_lr: divide the learning rate by $1 + \lambda_{\mathrm{amp}}$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.GrokFastAdamW(model.parameters(), lr=1e-3, alpha=0.98, lamb=2.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lee, Kang, Kim and Lee, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients", arXiv 2024.
        https://arxiv.org/abs/2405.20233
    """

    state_names = ("exp_avg", "exp_avg_sq", "grok_avg")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.0,
                 alpha: float = 0.98, lamb: float = 2.0, after_step: int = 0, normalize_lr: bool = True, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, alpha=alpha, lamb=lamb,
                                   after_step=after_step, normalize_lr=bool(normalize_lr), maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_unit(alpha, "alpha")
        check_nonnegative(lamb, "lamb")
        check_int(after_step, "after_step", minimum=0)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        grokfast_adamw_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["grok_avg"], step=state["step"],
                              lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                              weight_decay=group["weight_decay"], alpha=group["alpha"], lamb=group["lamb"],
                              after_step=group["after_step"], normalize_lr=group["normalize_lr"])


register(OptimizerEntry(
    name="GrokFastAdamW",
    cls=GrokFastAdamW,
    canon_id="grokfast",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={"after_step": {"after_step": 5}, "plain_lr": {"normalize_lr": False}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"alpha": 1.0}, "alpha"),
        ErrorInput({"lamb": -1.0}, "lamb"),
        ErrorInput({"after_step": -1}, "after_step"),
    ),
    parity=(
        # pytorch-optimizer divides the stored lr by 1 + lamb at construction; we divide at each step (the same
        # numbers, and a scheduler then sets the peak lr). weight_decouple=True is its default and our only decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:GrokFastAdamW",
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "alpha": 0.9, "lamb": 2.0},
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "grokfast_alpha": 0.9, "grokfast_lamb": 2.0}),
        Parity("pytorch-optimizer", "pytorch_optimizer:GrokFastAdamW",
               {"lr": 1e-2, "alpha": 0.98, "lamb": 5.0, "after_step": 7, "normalize_lr": False, "eps": 1e-6},
               {"lr": 1e-2, "grokfast_alpha": 0.98, "grokfast_lamb": 5.0, "grokfast_after_step": 7,
                "normalize_lr": False, "eps": 1e-6}),
    ),
))
