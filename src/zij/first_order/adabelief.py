"""AdaBelief: scale steps by the belief in observed gradients (Zhuang et al., 2020)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_


def adabelief_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_var: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdaBelief step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);
    m <- beta1 * m + (1 - beta1) * g;  s <- beta2 * s + (1 - beta2) * (g - m)^2 + eps;
    theta <- theta - lr * (m / (1 - beta1^t)) / (sqrt(s / (1 - beta2^t)) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    surprise = grad - exp_avg
    exp_avg_var.mul_(beta2).addcmul_(surprise, surprise, value=1 - beta2).add_(eps)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = (exp_avg_var / bias_correction2).sqrt_().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction1)


class AdaBelief(TwoMomentOptimizer):
    r"""AdaBelief: Adam whose second moment tracks how far gradients stray from their prediction.

    The momentum $m_t$ is read as a prediction of the gradient; instead of
    the mean squared gradient, AdaBelief averages the squared prediction
    error $(g_t - m_t)^2$. Where gradients agree with the prediction the
    denominator is small and the step large, and where they scatter it is
    cautious. Weight decay is decoupled, as in AdamW.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    s_t &= \beta_2 s_{t-1} + (1-\beta_2)\, (g_t - m_t)^{2} + \epsilon \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad \hat s_t = \frac{s_t}{1-\beta_2^{t}} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, \frac{\hat m_t}{\sqrt{\hat s_t} + \epsilon}
    \end{aligned}
    $$

    With $\lambda = 0$ this is Algorithm 2 of the paper. The official package's
    options (RAdam-style rectification, an AMSGrad maximum, coupled weight
    decay) are not part of this class; its default ``eps`` is the official
    package's.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $s_t$.
        eps: $\epsilon$, added inside $s_t$ at every step and to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaBelief(model.parameters(), lr=1e-3, weight_decay=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris and Duncan, "AdaBelief Optimizer:
        Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS 2020.
        https://arxiv.org/abs/2010.07468
    """

    state_names = ("exp_avg", "exp_avg_var")
    per_element = True
    supports_foreach = True
    rule = staticmethod(adabelief_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-16,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


register(OptimizerEntry(
    name="AdaBelief",
    cls=AdaBelief,
    canon_id="adabelief",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(1.0, 0.999)),
    parity=(
        Parity("adabelief-pytorch", "adabelief_pytorch:AdaBelief",
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-16, "weight_decay": 0.1, "weight_decouple": True,
                "fixed_decay": False, "rectify": False, "amsgrad": False, "print_change_log": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaBelief",
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-12, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-12, "weight_decay": 0.1, "weight_decouple": True,
                "fixed_decay": False, "rectify": False, "ams_bound": False}),
    ),
))
