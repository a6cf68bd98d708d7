"""AdaMod: Adam's step sizes capped by their own moving average (Ding et al., 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_, minimum_


def adamod_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    exp_avg_lr: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    beta3: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One AdaMod step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  m, v: Adam's moments;
    eta = lr / (sqrt(v_hat) + eps);  s <- beta3 * s + (1 - beta3) * eta;  theta <- theta - min(eta, s) * m_hat.
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = (exp_avg_sq / bias_correction2).sqrt_().add_(eps).reciprocal_().mul_(lr)
    ema_(exp_avg_lr, step_size, beta3)
    minimum_(step_size, exp_avg_lr)
    param.addcmul_(step_size, exp_avg, value=-1 / bias_correction1)


class AdaMod(ZijOptimizer):
    r"""AdaMod: Adam with each step size capped by an exponential moving average of its past values.

    Adam's per-coordinate step sizes $\eta_t = \eta / (\sqrt{\hat v_t} + \epsilon)$
    are averaged over time with rate $\beta_3$, and each step uses the smaller
    of the current value and the average. Large step sizes early in
    training, when $\hat v_t$ is still small, are smoothed away, which acts
    like a built-in warm-up. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    \eta_t &= \frac{\eta}{\sqrt{\hat v_t} + \epsilon}, \qquad s_t = \beta_3 s_{t-1} + (1-\beta_3)\, \eta_t \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \min(\eta_t, s_t)\, \hat m_t
    \end{aligned}
    $$

    With $\lambda = 0$ this is Algorithm 1 of the paper. The official code
    differs slightly: it folds both bias corrections into the step size
    before averaging it (so $s_t$ averages $\eta_t / (1-\beta_1^t)$) and adds
    $\epsilon$ to $\sqrt{v_t}$ rather than $\sqrt{\hat v_t}$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        beta3: $\beta_3$, decay rate of the step-size average $s_t$ (its memory is about $1/(1-\beta_3)$ steps).
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaMod(model.parameters(), lr=1e-3, beta3=0.999)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ding, Ren, Luo and Sun, "An Adaptive and Momental Bound Method for Stochastic Learning",
        arXiv 2019. https://arxiv.org/abs/1910.12249
    """

    state_names = ("exp_avg", "exp_avg_sq", "exp_avg_lr")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), beta3: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(beta3, "beta3")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adamod_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["exp_avg_lr"], step=state["step"],
                      lr=group["lr"], beta1=beta1, beta2=beta2, beta3=group["beta3"], eps=group["eps"],
                      weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaMod",
    cls=AdaMod,
    canon_id="adamod",
    family="bounded",
    recipe={"lr": 0.05, "beta3": 0.9},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.5)) + (
        ErrorInput({"beta3": 1.0}, "beta3"),
    ),
))
