"""Ranger: RAdam inside Lookahead (Wright, 2019)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_
from .lookahead import lookahead_sync


def radam_rectification(step: int, beta2: float) -> tuple[float, float]:
    """(rho_t, r_t): the length of the approximated simple moving average and the variance rectification
    term of RAdam (r_t is NaN where rho_t <= 4, where it is undefined)."""
    rho_inf = 2 / (1 - beta2) - 1
    beta2_t = beta2**step
    rho_t = rho_inf - 2 * step * beta2_t / (1 - beta2_t)
    if rho_t <= 4:
        return rho_t, math.nan
    return rho_t, math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


def ranger_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    slow: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    n_sma_threshold: float,
    k: int,
    alpha: float,
) -> None:
    """One Ranger step for one tensor, in place: a RAdam step, then every k steps a Lookahead synchronization.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  theta <- (1 - lr wd) theta;
    theta <- theta - lr r_t sqrt(1 - b2^t) / (sqrt(v) + eps) * m / (1 - b1^t)  if rho_t > threshold,
    theta <- theta - lr * m / (1 - b1^t)                                      otherwise;
    if t mod k = 0:  phi <- phi + alpha (theta - phi);  theta <- phi.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    decoupled_decay_(param, lr, weight_decay)
    bias_correction1 = 1 - beta1**step
    rho_t, rect = radam_rectification(step, beta2)
    if rho_t > n_sma_threshold:
        adaptive = exp_avg_sq.sqrt().add_(eps).reciprocal_().mul_(math.sqrt(1 - beta2**step))
        param.addcmul_(exp_avg, adaptive, value=-lr * rect / bias_correction1)
    else:
        param.add_(exp_avg, alpha=-lr / bias_correction1)
    if step % k == 0:
        lookahead_sync(param, slow, alpha=alpha)


class Ranger(ZijOptimizer):
    r"""Ranger: RAdam as the fast optimizer of Lookahead, in one class.

    Each step is a RAdam step: Adam whose step is multiplied by a
    rectification factor $r_t$ that evens out the variance of the adaptive
    learning rate, and which takes plain (bias-corrected) momentum steps
    while that variance is not yet tractable ($\rho_t$ at most the
    threshold). Every $k$ steps, Lookahead moves the slow weights $\phi$ a
    fraction $\alpha$ of the way to the fast weights and restarts the fast
    weights there. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}, \qquad \hat m_t = \frac{m_t}{1-\beta_1^{t}} \\
    \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad \rho_t = \rho_\infty - \frac{2 t\, \beta_2^{t}}{1-\beta_2^{t}} \\
    r_t &= \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\, \rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\, \rho_t}}, \qquad l_t = \frac{\sqrt{1-\beta_2^{t}}}{\sqrt{v_t} + \epsilon} \\
    \theta_t &= \begin{cases} (1 - \eta\lambda)\, \theta_{t-1} - \eta\, r_t\, l_t\, \hat m_t & \text{if } \rho_t > \rho_{\text{thr}} \\ (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \hat m_t & \text{otherwise} \end{cases} \\
    \text{if } t \bmod k = 0:&\quad \phi \leftarrow \phi + \alpha\, (\theta_t - \phi), \qquad \theta_t \leftarrow \phi
    \end{aligned}
    $$

    The slow weights $\phi$ start at the parameter's value before its first
    step. This is the original Ranger (2019) code's rule: RAdam with the
    threshold $\rho_{\text{thr}} = 5$ (the RAdam paper uses 4), $\epsilon$
    added to $\sqrt{v_t}$ before bias correction, as in torch.optim.RAdam,
    and decoupled weight decay; with ``alpha=1`` it is
    ``torch.optim.RAdam(..., decoupled_weight_decay=True)``. Gradient
    centralization, added to Ranger in 2020, is not part of this class.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moments.
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        k: number of steps between Lookahead synchronizations.
        alpha: $\alpha$, slow-weight step size in $[0, 1]$.
        n_sma_threshold: $\rho_{\text{thr}}$, the length of the approximated moving average above which
            the rectified adaptive step is taken; at least 4.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Ranger(model.parameters(), lr=1e-3, k=6, alpha=0.5)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Wright, "Ranger-Deep-Learning-Optimizer", GitHub 2019.
        https://github.com/lessw2020/Ranger-Deep-Learning-Optimizer ;
        Liu et al., "On the Variance of the Adaptive Learning Rate and Beyond", ICLR 2020.
        https://arxiv.org/abs/1908.03265 ;
        Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps forward, 1 step back", NeurIPS 2019.
        https://arxiv.org/abs/1907.08610
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.95, 0.999), eps: float = 1e-5, weight_decay: float = 0.0,
                 k: int = 6, alpha: float = 0.5, n_sma_threshold: float = 5.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, k=k, alpha=alpha,
                                   n_sma_threshold=n_sma_threshold, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_int(k, "k")
        check_unit(alpha, "alpha", closed=True)
        if not isinstance(n_sma_threshold, (int, float)) or not math.isfinite(n_sma_threshold) or n_sma_threshold < 4:
            raise ValueError(f"Invalid n_sma_threshold: {n_sma_threshold!r} (expected a finite number >= 4)")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["slow"] = self.copy_like(p, group)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        ranger_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["slow"], step=state["step"],
                      lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                      n_sma_threshold=group["n_sma_threshold"], k=group["k"], alpha=group["alpha"])


register(OptimizerEntry(
    name="Ranger",
    cls=Ranger,
    canon_id="ranger",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01, "betas": (0.9, 0.99)}},
    errors=invalid("lr", "weight_decay", betas=(0.95, 1.0), eps=-1e-5) + (
        ErrorInput({"k": 0}, "k"),
        ErrorInput({"alpha": 1.5}, "alpha"),
        ErrorInput({"n_sma_threshold": 3.0}, "n_sma_threshold"),
    ),
    parity=(
        # degenerated_to_sgd=True is the original's momentum step below the threshold (pytorch-optimizer's
        # default steps the other way there); use_gc=False is the original Ranger without gradient centralization.
        Parity("pytorch-optimizer", "pytorch_optimizer:Ranger",
               {"lr": 1e-2, "betas": (0.95, 0.999), "eps": 1e-5, "weight_decay": 0.1, "k": 6, "alpha": 0.5},
               {"lr": 1e-2, "betas": (0.95, 0.999), "eps": 1e-5, "weight_decay": 0.1, "k": 6, "alpha": 0.5,
                "n_sma_threshold": 5, "degenerated_to_sgd": True, "use_gc": False, "weight_decouple": True,
                "fixed_decay": False}),
    ),
))
