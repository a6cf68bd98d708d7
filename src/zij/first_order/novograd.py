"""NovoGrad: momentum on layer-normalized gradients (Ginsburg et al., 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import ema_


def novograd_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    grad_norm_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One NovoGrad step for one tensor (one layer), in place; ``grad_norm_sq`` is a 0-d tensor.

    v <- ||g||^2 at the first step, else beta2 v + (1 - beta2) ||g||^2;
    m <- beta1 m + g / (sqrt(v) + eps) + weight_decay * theta;  theta <- theta - lr * m.
    """
    norm_sq = grad.square().sum()
    if step == 1:
        grad_norm_sq.copy_(norm_sq)
    else:
        ema_(grad_norm_sq, norm_sq, beta2)
    direction = grad / (grad_norm_sq.sqrt() + eps)
    if weight_decay != 0:
        direction.add_(param, alpha=weight_decay)
    exp_avg.mul_(beta1).add_(direction)
    param.add_(exp_avg, alpha=-lr)


class NovoGrad(ZijOptimizer):
    r"""NovoGrad: momentum on gradients normalized by a per-layer second moment.

    Each parameter tensor (a "layer") keeps one scalar second moment, the
    moving average of its squared gradient norm; the gradient divided by its
    square root, plus weight decay, enters a momentum buffer, and the step
    follows that buffer. Both moments start from the first gradient
    ($v_1 = \lVert g_1\rVert^2$, $m_0 = 0$), so no bias correction is needed.

    $$
    \begin{aligned}
    v_t &= \begin{cases} \lVert g_1\rVert^{2} & t = 1 \\ \beta_2 v_{t-1} + (1-\beta_2)\, \lVert g_t\rVert^{2} & t > 1 \end{cases} \\
    m_t &= \beta_1 m_{t-1} + \frac{g_t}{\sqrt{v_t} + \epsilon} + \lambda\, \theta_{t-1}, \qquad m_0 = 0 \\
    \theta_t &= \theta_{t-1} - \eta\, m_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; every tensor is one layer.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, momentum and second-moment decay rates.
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: weight decay $\lambda$, added to the normalized gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.NovoGrad(model.parameters(), lr=1e-2, betas=(0.95, 0.98), weight_decay=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang and Cohen,
        "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep Networks",
        arXiv 2019. https://arxiv.org/abs/1905.11286
    """

    state_names = ("exp_avg",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.95, 0.98), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["grad_norm_sq"] = torch.zeros((), dtype=p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        novograd_update(p, grad, state["exp_avg"], state["grad_norm_sq"], step=state["step"], lr=group["lr"],
                        beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="NovoGrad",
    cls=NovoGrad,
    canon_id="novograd",
    family="adaptive",
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 1e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:NovoGrad",
               {"lr": 1e-2, "betas": (0.95, 0.98), "eps": 1e-8, "weight_decay": 0.01},
               {"lr": 1e-2, "betas": (0.95, 0.98), "eps": 1e-8, "weight_decay": 0.01, "weight_decouple": False,
                "grad_averaging": False}),
    ),
))
