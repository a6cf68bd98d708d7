"""Yogi: Adam with an additive, sign-controlled second-moment update (Zaheer et al., 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_


def yogi_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One Yogi step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  m <- beta1 * m + (1 - beta1) * g;
    v <- v - (1 - beta2) * sign(v - g^2) * g^2;  theta <- theta - lr * m / (sqrt(v) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    grad_sq = grad * grad
    exp_avg_sq.addcmul_((exp_avg_sq - grad_sq).sign_(), grad_sq, value=-(1 - beta2))
    param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr)


class Yogi(ZijOptimizer):
    r"""Yogi: Adam whose second moment moves additively toward the squared gradient.

    Adam's second moment $v_t$ is a multiplicative moving average, which can
    forget a large past magnitude within a few steps and let the effective
    step size jump. Yogi changes $v_t$ by $\pm(1-\beta_2)\, g_t^2$ only,
    toward $g_t^2$, so it moves at a rate set by the current gradient.
    Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= v_{t-1} - (1-\beta_2)\, \operatorname{sign}\bigl(v_{t-1} - g_t^{2}\bigr)\, g_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    With $\lambda = 0$ and $v_0 = 0$ this is Algorithm 2 of the paper: no bias
    correction, $m_0 = v_0 = 0$. ``initial_accumulator`` sets $v_0$ (common
    implementations start it at $10^{-6}$ and also bias-correct both moments,
    which this class does not). $v_t$ never becomes negative.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (the paper suggests $10^{-2}$).
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and of the $v_t$ update.
        eps: $\epsilon$, added to $\sqrt{v_t}$ (the paper suggests $10^{-3}$, larger than Adam's).
        weight_decay: decoupled weight decay $\lambda$.
        initial_accumulator: initial value $v_0 \ge 0$ of every second-moment entry.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Yogi(model.parameters(), lr=1e-2, eps=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zaheer, Reddi, Sachan, Kale and Kumar, "Adaptive Methods for Nonconvex Optimization",
        NeurIPS 2018.
        https://papers.nips.cc/paper_files/paper/2018/hash/90365351ccc7437a1309dc64e4db32a3-Abstract.html
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-2, betas=(0.9, 0.999), eps: float = 1e-3, weight_decay: float = 0.0,
                 initial_accumulator: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                   initial_accumulator=initial_accumulator, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(initial_accumulator, "initial_accumulator")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["exp_avg_sq"].fill_(group["initial_accumulator"])

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        yogi_update(p, grad, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"], beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Yogi",
    cls=Yogi,
    canon_id="yogi",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "weight_decay", betas=(0.9, -0.5), eps=-1e-3) + (
        ErrorInput({"initial_accumulator": -1e-6}, "initial_accumulator"),
    ),
))
