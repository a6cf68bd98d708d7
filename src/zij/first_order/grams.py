"""Grams: the gradient's sign with Adam's step magnitude (Cao et al., 2025)."""

from __future__ import annotations

import torch

from .._base import TwoMomentOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import adam_direction, decoupled_decay_, ema_, ema_sq_, grams_


def grams_update(
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
    """One Grams step for one tensor, in place.

    u = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) with Adam's moments;
    theta <- theta - lr * (sign(g) * |u| + wd * theta).
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    update = grams_(adam_direction(exp_avg, exp_avg_sq, step=step, beta1=beta1, beta2=beta2, eps=eps), grad)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)


class Grams(TwoMomentOptimizer):
    r"""Grams: step along the current gradient's sign, with Adam's per-coordinate step size.

    Grams separates the direction of a step from its size: the direction is
    the sign of the current gradient, the size per coordinate is the
    magnitude of Adam's normalized momentum. Momentum thus scales the step
    but never pushes a coordinate against the current gradient, which
    relates Grams to cautious optimizers. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    u_t &= \frac{m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} \\
    \theta_t &= \theta_{t-1} - \eta \bigl(\operatorname{sign}(g_t) \odot \lvert u_t\rvert + \lambda\, \theta_{t-1}\bigr)
    \end{aligned}
    $$

    The official package adds $\epsilon$ to $\sqrt{v_t}$ before bias
    correction (folding the corrections into the step size), which is the
    same rule with $\epsilon$ replaced by $\epsilon / \sqrt{1-\beta_2^{t}}$;
    the default $\epsilon$ is the official package's.

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
        >>> opt = zij.Grams(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Cao, Li and Song, "Grams: Gradient Descent with Adaptive Momentum Scaling", ICLR 2025 Workshop
        (SCOPE). https://arxiv.org/abs/2412.17107
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True
    rule = staticmethod(grams_update)

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))


# The official package (grams-pytorch) is compared in tests/optim/test_grams.py: its step() runs the closure
# without enabling gradients, so the matrix's closure-driven parity test cannot drive it.
register(OptimizerEntry(
    name="Grams",
    cls=Grams,
    canon_id="grams",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "weight_decay", betas=(1.0, 0.999), eps=-1e-6),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Grams",
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1, "weight_decouple": True}),
    ),
))
