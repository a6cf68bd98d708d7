"""Lion: sign of an interpolated momentum (Chen et al., 2023)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, sign_direction


def lion_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
) -> None:
    """One Lion step for one tensor, in place.

    c = beta1 * m + (1 - beta1) * g;  theta <- theta - lr * (sign(c) + weight_decay * theta);
    m <- beta2 * m + (1 - beta2) * g.
    """
    direction = sign_direction(exp_avg * beta1 + grad * (1 - beta1))
    decoupled_decay_(param, lr, weight_decay).add_(direction, alpha=-lr)
    ema_(exp_avg, grad, beta2)
class Lion(ZijOptimizer):
    r"""Lion (EvoLved Sign Momentum): step along the sign of an interpolated momentum.

    Every coordinate moves by exactly the learning rate; the momentum that
    decides the sign is updated with a slower rate $\beta_2$ than the one
    used for the interpolation $\beta_1$. Weight decay is decoupled.

    $$
    \begin{aligned}
    c_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    \theta_t &= \theta_{t-1} - \eta_t \bigl(\operatorname{sign}(c_t) + \lambda\, \theta_{t-1}\bigr) \\
    m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, g_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta_t$ (a scheduler may change it); typically 3-10 times smaller than AdamW's.
        betas: $(\beta_1, \beta_2)$, interpolation and momentum coefficients.
        weight_decay: decoupled weight decay $\lambda$; typically 3-10 times larger than AdamW's.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Lion(model.parameters(), lr=1e-4, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023.
        https://arxiv.org/abs/2302.06675
    """

    state_names = ("exp_avg",)
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize,
                                                 foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lion_update(p, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Lion",
    cls=Lion,
    canon_id="lion",
    family="sign-based",
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=invalid("lr", "betas", "weight_decay"),
    parity=(
        Parity("lion-pytorch", "lion_pytorch:Lion", {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1},
               {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Lion", {"lr": 1e-3, "betas": (0.95, 0.98), "weight_decay": 0.1},
               {"lr": 1e-3, "betas": (0.95, 0.98), "weight_decay": 0.1}),
    ),
))
