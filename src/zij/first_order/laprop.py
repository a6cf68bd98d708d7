"""LaProp: normalize each gradient first, then take its momentum (Ziyin et al., 2020)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_sq_


def laprop_update(
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
    """One LaProp step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  v <- beta2 * v + (1 - beta2) * g^2;
    m <- beta1 * m + (1 - beta1) * g / (sqrt(v / (1 - beta2^t)) + eps);  theta <- theta - lr * m / (1 - beta1^t).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    exp_avg.mul_(beta1).addcdiv_(grad, denom, value=1 - beta1)
    param.add_(exp_avg, alpha=-lr / (1 - beta1**step))


class LaProp(TwoMomentOptimizer):
    r"""LaProp: RMSprop-normalized gradients averaged into a momentum, the reverse of Adam's order.

    Adam averages raw gradients and then divides by the root second moment;
    LaProp divides each gradient by the current root second moment first
    and then averages these normalized gradients. Momentum and adaptivity
    are thereby decoupled: there is no constraint between $\beta_1$ and
    $\beta_2$, and a tiny $\epsilon$ is safe. Weight decay is decoupled.

    $$
    \begin{aligned}
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \frac{g_t}{\sqrt{\hat v_t} + \epsilon} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, \frac{m_t}{1-\beta_1^{t}}
    \end{aligned}
    $$

    With $\lambda = 0$ this is the paper's algorithm. The official code
    accumulates the learning rate inside $m_t$ and corrects the bias with
    a running average of past learning rates, which equals this rule while
    the learning rate is constant; its centered and AMSGrad options are not
    part of this class.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, momentum and second-moment decay rates (any pair in $[0, 1)$).
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.LaProp(model.parameters(), lr=4e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ziyin, Wang and Ueda, "LaProp: Separating Momentum and Adaptivity in Adam", arXiv 2020.
        https://arxiv.org/abs/2002.04839
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True
    rule = staticmethod(laprop_update)

    def __init__(self, params, lr: float = 4e-4, betas=(0.8, 0.99), eps: float = 1e-15, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


register(OptimizerEntry(
    name="LaProp",
    cls=LaProp,
    canon_id="laprop",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "weight_decay", betas=(1.0, 0.99), eps=-1e-15),
    parity=(
        # pytorch-optimizer applies its decoupled decay after the step (ours before, as AdamW), so none here;
        # it adds eps before the bias correction, which a tiny eps makes immaterial.
        Parity("pytorch-optimizer", "pytorch_optimizer:LaProp",
               {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-15},
               {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-15, "centered": False, "ams_bound": False}),
    ),
))
