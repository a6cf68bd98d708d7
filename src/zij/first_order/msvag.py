"""M-SVAG: momentum with a variance-adapted shrinkage factor per coordinate (Balles and Hennig, 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, ema_, ema_sq_
from ._ops import nan_to_zero_


def msvag_rho(beta: float, step: int) -> float:
    """The variance factor of a bias-corrected moving average after ``step`` steps, capped at 0.9999."""
    power = beta**step
    return min((1 - beta) * (1 + power) / ((1 + beta) * (1 - power)), 0.9999)


def msvag_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta: float,
) -> None:
    """One M-SVAG step for one tensor, in place.

    m, v: moving averages of g and g^2 (bias-corrected: m_hat, v_hat);  s = (v_hat - m_hat^2) / (1 - rho);
    gamma = clip(m_hat^2 / (m_hat^2 + rho s), 0, 1) (0 where 0/0);  theta <- theta - lr * gamma * m_hat.
    """
    ema_(exp_avg, grad, beta)
    ema_sq_(exp_avg_sq, grad, beta)
    correction = bias_correction(beta, step)
    rho = msvag_rho(beta, step)
    m_hat = exp_avg / correction
    m_hat_sq = m_hat * m_hat
    variance = (exp_avg_sq / correction).sub_(m_hat_sq).div_(1 - rho)
    factor = nan_to_zero_(m_hat_sq / variance.mul_(rho).add_(m_hat_sq)).clamp_(0.0, 1.0)
    param.addcmul_(m_hat, factor, value=-lr)


class MSVAG(ZijOptimizer):
    r"""M-SVAG: momentum SGD whose step is shrunk per coordinate by its estimated relative variance.

    Each coordinate of the bias-corrected momentum $\hat m_t$ is multiplied by
    $\gamma_t$, the optimal shrinkage of a noisy estimate under a Gaussian
    noise model: near 1 where the mean gradient dominates its variance,
    near 0 where the gradient is mostly noise. $\rho_t$ is the variance
    reduction of the moving average itself.

    $$
    \begin{aligned}
    m_t &= \beta m_{t-1} + (1-\beta)\, g_t, \qquad v_t = \beta v_{t-1} + (1-\beta)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta^{t}}, \qquad \hat v_t = \frac{v_t}{1-\beta^{t}} \\
    \rho_t &= \min\Big(\frac{(1-\beta)(1+\beta^{t})}{(1+\beta)(1-\beta^{t})},\ 0.9999\Big), \qquad s_t = \frac{\hat v_t - \hat m_t^{2}}{1-\rho_t} \\
    \gamma_t &= \operatorname{clip}_{[0,1]}\Big(\frac{\hat m_t^{2}}{\hat m_t^{2} + \rho_t\, s_t}\Big) \quad (0 \text{ where undefined}) \\
    \theta_t &= \theta_{t-1} - \eta\, \gamma_t\, \hat m_t
    \end{aligned}
    $$

    This is the authors' (TensorFlow) code; at the first step $\rho_1 = 1$ is
    capped, so $\gamma_1 = 1$ wherever $g_1 \ne 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (``learning_rate`` in the official code).
        beta: $\beta$, decay rate of both moving averages.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.MSVAG(model.parameters(), lr=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Balles and Hennig, "Dissecting Adam: The Sign, Magnitude and Variance of Stochastic Gradients",
        ICML 2018.
        https://arxiv.org/abs/1705.07774
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-2, beta: float = 0.9, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(beta, "beta")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        msvag_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                     beta=group["beta"])


register(OptimizerEntry(
    name="MSVAG",
    cls=MSVAG,
    canon_id="msvag",
    family="momentum",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 1e-3}},
    errors=invalid("lr") + (ErrorInput({"beta": 1.0}, "beta"),),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:MSVAG", {"lr": 0.05, "beta": 0.9}, {"lr": 0.05, "beta": 0.9}),
    ),
))
