"""AdaTAM: Adam whose first moment is damped where the gradient opposes it (Malviya et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_sq_
from .tam import damped_grad_


def adatam_update(param, grad, smoothed, exp_avg, exp_avg_sq, *, lr: float, beta1: float, beta2: float,
                  decay_rate: float, eps: float, weight_decay: float) -> None:
    """One AdaTAM step for a tensor or a TensorList, in place.

    theta <- (1 - lr wd) theta;  s <- gamma s + (1 - gamma) m_hat * g_hat;  m <- beta1 m + ((1 + s) / 2 + eps) g;
    v <- beta2 v + (1 - beta2) g^2;  theta <- theta - lr m / (sqrt(v) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    damped = damped_grad_(smoothed, exp_avg, grad, decay_rate=decay_rate, eps=eps)
    exp_avg.mul_(beta1).add_(damped)
    ema_sq_(exp_avg_sq, grad, beta2)
    param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr)


class AdaTAM(ZijOptimizer):
    r"""AdaTAM: Adam with Torque-Aware Momentum's damping of the first moment.

    The first moment takes in each gradient scaled by the damping factor
    $(1 + \bar s_t)/2$ of TAM, where $\bar s_t$ is a running average of the
    alignment between the gradient and the first moment; the second moment is
    Adam's. The damping replaces Adam's factor $1-\beta_1$ on the gradient,
    and, as in pytorch-optimizer's implementation, neither moment is
    bias-corrected, and the alignment is taken per entry (momentum and
    gradient each normalized along the tensor's first dimension). Weight
    decay is decoupled (the paper's AdaTAMW).

    $$
    \begin{aligned}
    \theta_{t-1} &\leftarrow (1 - \eta\lambda)\, \theta_{t-1} \\
    s_t &= \frac{m_{t-1}}{\lVert m_{t-1}\rVert_{(0)}} \odot \frac{g_t}{\lVert g_t\rVert_{(0)}}, \qquad \bar s_t = \gamma\, \bar s_{t-1} + (1-\gamma)\, s_t \\
    m_t &= \beta_1 m_{t-1} + \Bigl(\frac{1 + \bar s_t}{2} + \epsilon\Bigr) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    $\lVert\cdot\rVert_{(0)}$ is the norm along the first dimension (floored at $10^{-12}$), broadcast back;
    $m_0 = v_0 = \bar s_0 = 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moments.
        decay_rate: $\gamma$, the decay of the running alignment.
        weight_decay: decoupled weight decay $\lambda$.
        eps: $\epsilon$, the floor of the damping factor and the term added to the denominator.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaTAM(model.parameters(), lr=1e-3, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Malviya et al., "Torque-Aware Momentum", arXiv 2024. https://arxiv.org/abs/2412.18790
    """

    state_names = ("smoothed", "exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), decay_rate: float = 0.9,
                 weight_decay: float = 0.0, eps: float = 1e-8, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, decay_rate=decay_rate, weight_decay=weight_decay, eps=eps,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(decay_rate, "decay_rate")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adatam_update(p, grad, state["smoothed"], state["exp_avg"], state["exp_avg_sq"], lr=group["lr"], beta1=beta1,
                      beta2=beta2, decay_rate=group["decay_rate"], eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaTAM",
    cls=AdaTAM,
    canon_id="adatam",
    family="adam-family",
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (ErrorInput({"decay_rate": 1.0}, "decay_rate"),),
    parity=(
        # weight_decouple=True is pytorch-optimizer's default and our (only) decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaTAM",
               {"lr": 1e-2, "betas": (0.9, 0.99), "decay_rate": 0.8, "weight_decay": 0.1, "eps": 1e-8},
               {"lr": 1e-2, "betas": (0.9, 0.99), "decay_rate": 0.8, "weight_decay": 0.1, "eps": 1e-8}),
    ),
))
