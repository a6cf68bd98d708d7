"""LAMB: Adam directions rescaled by a layer-wise trust ratio (You et al., 2020)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import ema_, ema_sq_, trust_ratio


def lamb_update(
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
    """One LAMB step for one tensor (one layer), in place.

    m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2;
    u = m_hat / (sqrt(v_hat) + eps) + weight_decay * theta;
    theta <- theta - lr * (||theta|| / ||u||) * u   (ratio 1 if either norm is 0).
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    update = m_hat.div_(v_hat.sqrt_().add_(eps))
    if weight_decay != 0:
        update.add_(param, alpha=weight_decay)
    param.sub_(update.mul_(trust_ratio(param, update) * lr))


class LAMB(TwoMomentOptimizer):
    r"""LAMB: Adam's direction plus weight decay, rescaled per layer by a trust ratio.

    Each parameter tensor (a "layer") forms the bias-corrected Adam direction
    plus decoupled weight decay, then takes a step whose norm is the learning
    rate times the tensor's weight norm: the direction is multiplied by the
    trust ratio $\lVert\theta\rVert / \lVert u\rVert$. The scaling function
    $\phi$ of the paper is the identity (no clipping of the weight norm), and
    the ratio is 1 when either norm is zero (the paper leaves that case open).
    No global gradient-norm clipping is applied.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    u_t &= \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\, \theta_{t-1} \\
    r_t &= \begin{cases} \lVert \theta_{t-1}\rVert / \lVert u_t\rVert & \text{if } \lVert \theta_{t-1}\rVert > 0 \text{ and } \lVert u_t\rVert > 0 \\ 1 & \text{otherwise} \end{cases} \\
    \theta_t &= \theta_{t-1} - \eta\, r_t\, u_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; every tensor is one layer.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moment estimates.
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$.
        weight_decay: decoupled weight decay $\lambda$, added to the direction before the trust ratio.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.LAMB(model.parameters(), lr=1e-3, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer and Hsieh,
        "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020.
        https://arxiv.org/abs/1904.00962
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True
    rule = staticmethod(lamb_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


register(OptimizerEntry(
    name="LAMB",
    cls=LAMB,
    canon_id="lamb",
    family="layer-wise",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "weight_decay", eps=-1e-6),
    # pytorch-optimizer's Lamb leaves v un-corrected and adds eps to the trust ratio's denominator: with
    # adam_debias=True, no weight decay and a tiny eps the trust ratio cancels the remaining bias
    # corrections, so both compute the paper's step. Its weight-norm clip (10) is not reached here.
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Lamb",
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-12, "weight_decay": 0.0},
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-12, "weight_decay": 0.0, "weight_decouple": False,
                "adam_debias": True, "pre_norm": False, "grad_averaging": True, "rectify": False, "adam": False}),
    ),
))
