"""Cautious AdamW (C-AdamW): AdamW steps only where they agree with the gradient (Liang et al., 2024)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import adam_direction, cautious_, decoupled_decay_, ema_, ema_sq_


def cautious_adamw_update(
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
    """One C-AdamW step for one tensor, in place.

    u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) with Adam's moments;  phi = 1[u * g > 0];
    theta <- theta - lr * (d / (nnz(phi) + 1) * phi * u + wd * theta), d = number of entries.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    update = adam_direction(exp_avg, exp_avg_sq, step=step, beta1=beta1, beta2=beta2, eps=eps)
    cautious_(update, grad)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)


class CautiousAdamW(TwoMomentOptimizer):
    r"""C-AdamW (Cautious AdamW): AdamW with the coordinates that oppose the gradient masked out.

    The AdamW update $u_t$ is compared with the current gradient: coordinates
    where the two disagree in sign (or either is zero) are not moved, and the
    others are scaled up by $d / (\operatorname{nnz}(\phi_t) + 1)$, about the
    inverse of the fraction kept, so the average step size is preserved.
    Every applied move is then a descent direction for the current
    mini-batch. Weight decay is decoupled and not masked.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    u_t &= \frac{m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} \\
    \phi_t &= \mathbf{1}\bigl[u_t \odot g_t > 0\bigr] \\
    \theta_t &= \theta_{t-1} - \eta \Bigl(\frac{d}{\operatorname{nnz}(\phi_t) + 1}\, \phi_t \odot u_t + \lambda\, \theta_{t-1}\Bigr)
    \end{aligned}
    $$

    $d$ is the number of entries of the tensor and $\operatorname{nnz}(\phi_t)$
    the number kept; the mask and its scale are per parameter tensor. The
    rescaling $d / (\operatorname{nnz} + 1)$ is the one of the paper's
    algorithm listings (and of pytorch-optimizer); the paper's one-line
    listing divides by the mean of the mask plus a small constant and the
    official code by the mean clamped from below, which differ from it by
    about $1/\operatorname{nnz}$ relatively. With every coordinate kept the
    step is AdamW's times $d / (d + 1)$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moments.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.CautiousAdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Liang, Chen, Liu and Liu, "Cautious Optimizers: Improving Training with One Line of Code",
        arXiv 2024. https://arxiv.org/abs/2411.16085
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True
    rule = staticmethod(cautious_adamw_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


# pytorch-optimizer has no cautious AdamW class, but its AdEMAMix with alpha = 0 is AdamW, and its cautious
# option masks the first moment (same sign as u_t) with the same d / (nnz + 1) scaling before the step.
register(OptimizerEntry(
    name="CautiousAdamW",
    cls=CautiousAdamW,
    canon_id="c-adamw",
    family="masked",
    aliases=("C-AdamW",),
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(1.0, 0.999)),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:AdEMAMix",
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.999, 0.9999), "alpha": 0.0, "t_alpha_beta3": None, "eps": 1e-8,
                "weight_decay": 0.1, "weight_decouple": True, "fixed_decay": False, "cautious": True}),
    ),
))
