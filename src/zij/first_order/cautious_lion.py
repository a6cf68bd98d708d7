"""Cautious Lion (C-Lion): Lion steps only where they agree with the gradient (Liang et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import cautious_, decoupled_decay_, ema_, sign_direction


def cautious_lion_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
) -> None:
    """One C-Lion step for one tensor, in place.

    u = sign(b1 m + (1 - b1) g);  phi = 1[u * g > 0];
    theta <- theta - lr * (d / (nnz(phi) + 1) * phi * u + wd * theta), d = number of entries;
    m <- b2 m + (1 - b2) g.
    """
    update = sign_direction(exp_avg * beta1 + grad * (1 - beta1))
    cautious_(update, grad)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)
    ema_(exp_avg, grad, beta2)
class CautiousLion(ZijOptimizer):
    r"""C-Lion (Cautious Lion): Lion with the coordinates that oppose the gradient masked out.

    Lion moves every coordinate by the learning rate along the sign of an
    interpolated momentum. The cautious variant keeps only the coordinates
    where that sign agrees with the current gradient's and scales them up by
    $d / (\operatorname{nnz}(\phi_t) + 1)$, about the inverse of the fraction
    kept. Decoupled weight decay is applied to all coordinates.

    $$
    \begin{aligned}
    u_t &= \operatorname{sign}\bigl(\beta_1 m_{t-1} + (1-\beta_1)\, g_t\bigr) \\
    \phi_t &= \mathbf{1}\bigl[u_t \odot g_t > 0\bigr] \\
    \theta_t &= \theta_{t-1} - \eta \Bigl(\frac{d}{\operatorname{nnz}(\phi_t) + 1}\, \phi_t \odot u_t + \lambda\, \theta_{t-1}\Bigr) \\
    m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, g_t
    \end{aligned}
    $$

    $d$ is the number of entries of the tensor and $\operatorname{nnz}(\phi_t)$
    the number kept; the mask and its scale are per parameter tensor. The
    rescaling is the one of the paper's algorithm listings (and of
    pytorch-optimizer); the paper's one-line listing and the official code
    divide by the mean of the mask instead (plus or clamped by a small
    constant). Not to be confused with CLion (arXiv 2604.14587), a different
    "cautious Lion" that switches between the sign and the raw direction.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, interpolation and momentum coefficients.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.CautiousLion(model.parameters(), lr=1e-4, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Liang, Chen, Liu and Liu, "Cautious Optimizers: Improving Training with One Line of Code",
        arXiv 2024. https://arxiv.org/abs/2411.16085
    """

    state_names = ("exp_avg",)
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        cautious_lion_update(p, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2,
                             weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="CautiousLion",
    cls=CautiousLion,
    canon_id="c-lion",
    family="masked",
    aliases=("C-Lion",),
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=invalid("lr", "betas", "weight_decay"),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Lion",
               {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1},
               {"lr": 1e-3, "betas": (0.9, 0.99), "weight_decay": 0.1, "weight_decouple": True,
                "fixed_decay": False, "cautious": True}),
    ),
))
