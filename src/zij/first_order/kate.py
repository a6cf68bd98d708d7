"""KATE: a scale-invariant AdaGrad without the square root (Choudhury et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import l2_into_grad


def kate_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    b_sq: torch.Tensor,
    m_sq: torch.Tensor,
    *,
    lr: float,
    delta: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One KATE step for one tensor, in place.

    g <- g + wd theta;  b^2 <- b^2 + g^2;  m^2 <- m^2 + delta g^2 + g^2 / (b^2 + eps);
    theta <- theta - lr * m g / (b^2 + eps).
    """
    grad = l2_into_grad(grad, param, weight_decay)
    grad_sq = grad * grad
    b_sq.add_(grad_sq)
    denom = b_sq + eps
    m_sq.add_(grad_sq, alpha=delta).add_(grad_sq / denom)
    param.addcdiv_(m_sq.sqrt().mul_(grad), denom, value=-lr)


class KATE(ZijOptimizer):
    r"""KATE: AdaGrad's accumulator without the square root, balanced by a growing numerator.

    Dividing by the accumulated squared gradients $b_t^2$ (not their square
    root) makes the step invariant to a rescaling of the gradients' scale, as
    in generalized linear models; the numerator $m_t$, built from the same
    gradients, keeps the step from vanishing. Every operation is per
    coordinate.

    $$
    \begin{aligned}
    g_t &\leftarrow g_t + \lambda\, \theta_{t-1} \\
    b_t^{2} &= b_{t-1}^{2} + g_t^{2} \\
    m_t^{2} &= m_{t-1}^{2} + \kappa\, g_t^{2} + \frac{g_t^{2}}{b_t^{2} + \epsilon} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t}{b_t^{2} + \epsilon}\, g_t
    \end{aligned}
    $$

    The state keeps $b_t^2$ and $m_t^2$ (both from 0). With $\epsilon = 0$ a
    coordinate whose gradients have all been zero gives 0/0: keep $\epsilon > 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: step size $\eta$ (the paper's $\beta$).
        delta: weight $\kappa \ge 0$ of the squared gradient in the numerator (the paper's $\eta$).
        eps: $\epsilon$, added to $b_t^2$ in both denominators.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.KATE(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Choudhury, Tupitsa, Loizou, Horváth, Takáč and Gorbunov, "Remove that Square Root: A New Efficient
        Scale-Invariant Version of AdaGrad", NeurIPS 2024.
        https://arxiv.org/abs/2403.02648
    """

    state_names = ("b_sq", "m_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, delta: float = 0.0, eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, delta=delta, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(delta, "delta")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        kate_update(p, grad, state["b_sq"], state["m_sq"], lr=group["lr"], delta=group["delta"], eps=group["eps"],
                    weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="KATE",
    cls=KATE,
    canon_id="kate",
    family="adaptive",
    # KATE's step shrinks like 1/t with delta = 0 (AdaGrad-like, 1/sqrt(t), with delta > 0): large steps.
    recipe={"lr": 1.0, "delta": 0.1},
    errors=invalid("lr", "eps", "weight_decay") + (ErrorInput({"delta": -1.0}, "delta"),),
    parity=(
        # pytorch-optimizer adds eps to the stored b^2 at every step (the official code only in the denominators)
        # and decays decoupled by default: compared with eps = 0 and L2 decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:Kate", {"lr": 1e-2, "delta": 0.1, "eps": 0.0, "weight_decay": 0.01},
               {"lr": 1e-2, "delta": 0.1, "eps": 0.0, "weight_decay": 0.01, "weight_decouple": False}),
    ),
))
