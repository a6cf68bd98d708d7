"""MADGRAD: momentumized, adaptive, dual-averaged gradient method (Defazio and Jelassi, 2022)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import ema_, zeros_to_inf_


def madgrad_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    grad_sum: torch.Tensor,
    grad_sq_sum: torch.Tensor,
    initial: torch.Tensor,
    *,
    step: int,
    lr: float,
    momentum: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One MADGRAD step for one tensor, in place; ``initial`` holds theta_0.

    g <- g + weight_decay * theta;  a = lr sqrt(t);  s <- s + a g;  nu <- nu + a g^2;
    z = theta_0 - s / (cbrt(nu) + eps);  theta <- momentum * theta + (1 - momentum) * z.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    weight = lr * math.sqrt(step)
    grad_sq_sum.addcmul_(grad, grad, value=weight)
    grad_sum.add_(grad, alpha=weight)
    denominator = grad_sq_sum.pow(1 / 3).add_(eps)
    if eps == 0:  # coordinates that never had a gradient stay at theta_0
        zeros_to_inf_(denominator)
    dual_point = initial.addcdiv(grad_sum, denominator, value=-1)
    ema_(param, dual_point, momentum)
class MADGRAD(ZijOptimizer):
    r"""MADGRAD: dual averaging with AdaGrad-style cube-root scaling and momentum by averaging.

    Weighted sums of the gradients and of their squares are accumulated with
    weights $a_t = \eta \sqrt{t}$ that grow with the step count; the dual
    point $z_t$ moves away from the initial parameters by the gradient sum
    divided by the cube root of the squared sum, and the iterate follows $z_t$
    by an exponential average with weight $c = 1 - \text{momentum}$. An
    optional L2 term is added to the gradient, as in the authors' code
    (whose step also uses $\eta + \epsilon$ in place of $\eta$; this class
    uses $\eta$ as in the paper).

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1}, \qquad a_t = \eta\, \sqrt{t} \\
    s_t &= s_{t-1} + a_t\, \tilde g_t, \qquad \nu_t = \nu_{t-1} + a_t\, \tilde g_t^{2} \\
    z_t &= \theta_0 - \frac{s_t}{\sqrt[3]{\nu_t} + \epsilon} \\
    \theta_t &= (1 - c)\, \theta_{t-1} + c\, z_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: momentum in $[0, 1)$; the averaging weight is $c = 1 - \text{momentum}$.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        eps: $\epsilon$, added to the cube root; with 0, coordinates whose squared sum is 0 stay at $\theta_0$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.MADGRAD(model.parameters(), lr=1e-2, momentum=0.9)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Jelassi, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual
        Averaged Gradient Method for Stochastic Optimization", JMLR 2022.
        https://arxiv.org/abs/2101.11075
    """

    state_names = ("grad_sum", "grad_sq_sum")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 0.0, eps: float = 1e-6,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["initial"] = self.copy_like(p, group)

    def update(self, p, grad, state, group):
        madgrad_update(p, grad, state["grad_sum"], state["grad_sq_sum"], state["initial"], step=state["step"],
                       lr=group["lr"], momentum=group["momentum"], eps=group["eps"],
                       weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="MADGRAD",
    cls=MADGRAD,
    canon_id="madgrad",
    family="adaptive",
    recipe={"lr": 0.05, "momentum": 0.9},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "momentum", "weight_decay", eps=-1e-6),
    # Both references step with lr + eps: they get lr - eps so that all three use the same lr.
    parity=(
        Parity("madgrad", "madgrad:MADGRAD",
               {"lr": 1e-2, "momentum": 0.9, "weight_decay": 0.01, "eps": 1e-6},
               {"lr": 1e-2 - 1e-6, "momentum": 0.9, "weight_decay": 0.01, "eps": 1e-6, "decouple_decay": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:MADGRAD",
               {"lr": 1e-2, "momentum": 0.9, "weight_decay": 0.01, "eps": 1e-6},
               {"lr": 1e-2 - 1e-6, "momentum": 0.9, "weight_decay": 0.01, "eps": 1e-6, "weight_decouple": False}),
    ),
))
