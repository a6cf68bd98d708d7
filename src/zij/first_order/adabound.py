"""AdaBound: Adam's step sizes clipped by bounds that close in on SGD's (Luo et al., 2019)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_lr, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_, per_tensor


def adabound_bounds(step: int, *, final_lr: float, gamma: float) -> tuple[float, float]:
    """(lower, upper) step-size bounds at step t: final_lr * (1 -+ 1 / (gamma * t [+ 1]))."""
    return final_lr * (1 - 1 / (gamma * step + 1)), final_lr * (1 + 1 / (gamma * step))


def adabound_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    final_lr: float,
    beta1: float,
    beta2: float,
    gamma: float,
    weight_decay: float,
) -> None:
    """One AdaBound step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  m, v: Adam's moments without bias correction;
    eta_hat = clip(lr / sqrt(v), lower(t), upper(t));  theta <- theta - eta_hat / sqrt(t) * m.
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    lower, upper = adabound_bounds(step, final_lr=final_lr, gamma=gamma)
    root = exp_avg_sq.sqrt()
    # lr / sqrt(v) is +inf where v = 0 (there m = 0 too); written with where so that lr = 0 gives no 0/0.
    step_size = per_tensor(lambda r: torch.where(r > 0, lr / r, math.inf).clamp_(lower, upper), root)
    param.addcmul_(step_size, exp_avg, value=-1 / math.sqrt(step))


class AdaBound(ZijOptimizer):
    r"""AdaBound: Adam whose per-coordinate step sizes are clipped to bounds that converge to SGD's.

    Adam's step size $\eta / \sqrt{v_t}$ is clipped between a lower bound
    that starts at 0 and an upper bound that starts near infinity; both
    approach the final learning rate $\eta^{*}$ at a speed set by $\gamma$,
    so training moves smoothly from Adam-like to SGD-like steps. As in the
    paper's algorithm, the moments are not bias-corrected and the clipped
    step size decays as $1/\sqrt{t}$. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \eta_l(t) &= \eta^{*}\Bigl(1 - \frac{1}{\gamma t + 1}\Bigr), \qquad \eta_u(t) = \eta^{*}\Bigl(1 + \frac{1}{\gamma t}\Bigr) \\
    \hat\eta_t &= \operatorname{clip}\Bigl(\frac{\eta}{\sqrt{v_t}},\ \eta_l(t),\ \eta_u(t)\Bigr) \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \frac{\hat\eta_t}{\sqrt{t}}\, m_t
    \end{aligned}
    $$

    This follows Algorithm 2 of the paper (constant $\beta_1$, no
    projection), with the bound functions of its experiments, written with
    $\gamma$ in place of $1-\beta_2$; $\lambda = 0$ gives the paper's rule.
    The official code differs: it bias-corrects the moments, adds $\epsilon$
    to $\sqrt{v_t}$, drops the $1/\sqrt{t}$ decay and scales $\eta^{*}$ with
    the learning-rate schedule. Here $\eta^{*}$ is its own group entry
    (``final_lr``), untouched by schedulers that change ``lr``.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: Adam-phase learning rate $\eta$.
        final_lr: final (SGD) learning rate $\eta^{*}$ that both bounds approach.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        gamma: convergence speed $\gamma$ of the bounds (the paper uses $1 - \beta_2$).
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaBound(model.parameters(), lr=1e-3, final_lr=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Luo, Xiong, Liu and Sun, "Adaptive Gradient Methods with Dynamic Bound of Learning Rate",
        ICLR 2019. https://arxiv.org/abs/1902.09843
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, final_lr: float = 0.1, betas=(0.9, 0.999), gamma: float = 1e-3,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, final_lr=final_lr, betas=betas, gamma=gamma, weight_decay=weight_decay,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_lr(final_lr, "final_lr")
        check_positive(gamma, "gamma")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adabound_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                        final_lr=group["final_lr"], beta1=beta1, beta2=beta2, gamma=group["gamma"],
                        weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaBound",
    cls=AdaBound,
    canon_id="adabound",
    family="bounded",
    recipe={"lr": 0.05, "final_lr": 0.1},
    errors=invalid("lr", "betas", "weight_decay") + (
        ErrorInput({"final_lr": -0.1}, "final_lr"),
        ErrorInput({"gamma": 0.0}, "gamma"),
    ),
))
