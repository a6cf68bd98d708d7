"""StableAdamW: AdamW with per-tensor update clipping (Wortsman et al., 2023)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import debiased_beta, decoupled_decay_, ema_, ema_sq_


def stableadamw_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One StableAdamW step for one tensor, in place.

    m, v: moving averages with debiased decays;  rms = sqrt(mean(g^2 / max(v, eps^2)));
    lr_t = lr / max(1, rms);  theta <- theta - lr_t * weight_decay * theta - lr_t * m / (sqrt(v) + eps).
    """
    beta1_hat = debiased_beta(beta1, step)
    beta2_hat = debiased_beta(beta2, step)
    ema_(exp_avg, grad, beta1_hat)
    ema_sq_(exp_avg_sq, grad, beta2_hat)
    rms = (grad.square() / exp_avg_sq.clamp_min(eps**2)).mean().sqrt()
    step_lr = lr / rms.clamp_min(1.0)
    decoupled_decay_(param, step_lr, weight_decay)
    param.sub_(step_lr * exp_avg / (exp_avg_sq.sqrt() + eps))


class StableAdamW(TwoMomentOptimizer):
    r"""StableAdamW: AdamW whose learning rate is cut for a tensor when its second moment lags.

    Adds AdaFactor-style update clipping to AdamW, against the loss spikes
    of large-scale training. For each tensor it measures the RMS of
    $g_t^2 / v_t$; above 1 the second moment underestimates the current
    gradients (it has not caught up with a sudden increase), and the
    learning rate for that tensor and step is divided by it. Bias
    correction is folded into the decay rates, as in AdaFactor.

    $$
    \begin{aligned}
    \hat\beta_1 &= \beta_1 \frac{1-\beta_1^{t-1}}{1-\beta_1^{t}}, \qquad \hat\beta_2 = \beta_2 \frac{1-\beta_2^{t-1}}{1-\beta_2^{t}} \\
    m_t &= \hat\beta_1 m_{t-1} + (1-\hat\beta_1)\, g_t, \qquad v_t = \hat\beta_2 v_{t-1} + (1-\hat\beta_2)\, g_t^{2} \\
    \rho_t &= \sqrt{\operatorname{mean}\Bigl(\frac{g_t^{2}}{\max(v_t, \epsilon^{2})}\Bigr)}, \qquad \eta_t = \frac{\eta}{\max(1, \rho_t)} \\
    \theta_t &= \theta_{t-1} - \eta_t \lambda\, \theta_{t-1} - \eta_t\, \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    This follows Algorithm 2 of the paper (whose $v_t, u_t$ are $m_t, v_t$
    here); the mean runs over the entries of one parameter tensor, and the
    floor $\epsilon^2$ keeps $\rho_t$ finite where $v_t = 0$. With the
    debiased decays, $m_t$ and $v_t$ equal Adam's bias-corrected moments
    $\hat m_t$ and $\hat v_t$. The default weight decay is AdamW's in torch.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates before debiasing.
        eps: $\epsilon$, added to $\sqrt{v_t}$; $\epsilon^2$ floors $v_t$ in $\rho_t$.
        weight_decay: decoupled weight decay $\lambda$, scaled by the clipped $\eta_t$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.StableAdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Wortsman, Dettmers, Zettlemoyer, Morcos, Farhadi and Schmidt, "Stable and low-precision
        training for large-scale vision-language models", NeurIPS 2023. https://arxiv.org/abs/2304.13013
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True
    rule = staticmethod(stableadamw_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.99), eps: float = 1e-6, weight_decay: float = 1e-2, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


register(OptimizerEntry(
    name="StableAdamW",
    cls=StableAdamW,
    canon_id="stableadamw",
    family="adam-family",
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "weight_decay", eps=-1e-6),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:StableAdamW",
               {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-6, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-6, "weight_decay": 0.1, "weight_decouple": True,
                "kahan_sum": False}),
    ),
))
