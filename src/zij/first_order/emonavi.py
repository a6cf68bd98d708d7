"""EmoNavi: an Adam-style step scaled by an "emotion" read from short and long averages of the loss (muooon, 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def loss_averages(previous: list[float] | None, loss: float) -> list[float]:
    """[a_t, b_t]: the short (0.7) and long (0.99) moving averages of the loss, both started at the first loss."""
    short, long = previous if previous is not None else (loss, loss)
    return [0.3 * loss + 0.7 * short, 0.01 * loss + 0.99 * long]


def emotion_drive(short: float, long: float) -> float:
    """rho_t from s = tanh((b - a) / max(b, 1e-5)) and tau = sign(s) (1 - |s|)."""
    s = math.tanh((long - short) / max(long, 1e-5))
    trust = math.copysign(1.0 - abs(s), s)
    if 0.25 < abs(s) < 0.5:
        return 8.0 * abs(trust) * (1.0 + 0.1 * trust)
    if abs(s) > 0.75:
        return 1.0 - abs(s)
    return 1.0


def emonavi_update(param, grad, exp_avg, exp_avg_sq, *, lr: float, drive: float, beta1: float, beta2: float,
                   eps: float, weight_decay: float) -> None:
    """One EmoNavi step for a tensor or a TensorList, in place.

    m, v: moving averages of g and g^2 (no bias correction);  theta <- (1 - lr wd) theta - lr rho m / (sqrt(v) + eps).
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    decoupled_decay_(param, lr, weight_decay).addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr * drive)


class EmoNavi(ZijOptimizer):
    r"""EmoNavi: Adam without bias correction, its step scaled by a bounded signal read from the loss.

    Each step the closure's loss updates a short and a long moving average; their
    normalized difference, squashed by tanh, is the "emotion" $s_t$. When it is moderate
    ($0.25 < |s_t| < 0.5$) the step is scaled up by the drive $\rho_t$ (between about 3.8
    and 6.3); when it is extreme ($|s_t| > 0.75$, a loss spike or plunge) the step is
    damped to $1 - |s_t|$; otherwise the step is plain. Weight decay is decoupled.

    $$
    \begin{aligned}
    a_t &= 0.7\, a_{t-1} + 0.3\, \ell_t, \qquad b_t = 0.99\, b_{t-1} + 0.01\, \ell_t \qquad (a_0 = b_0 = \ell_1) \\
    s_t &= \tanh\!\Big(\frac{b_t - a_t}{\max(b_t, 10^{-5})}\Big), \qquad \tau_t = \operatorname{sign}(s_t)\,(1 - \lvert s_t\rvert) \\
    \rho_t &= \begin{cases} 8\lvert\tau_t\rvert\,(1 + 0.1\,\tau_t) & 0.25 < \lvert s_t\rvert < 0.5 \\ 1 - \lvert s_t\rvert & \lvert s_t\rvert > 0.75 \\ 1 & \text{otherwise} \end{cases} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \rho_t\, \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    Protocol: pass the loss through ``step(closure)``; without a closure the loss counts as
    0 (as in the official code). The loss averages are kept in each parameter group (they
    are saved with ``state_dict``); with ``maximize`` the negated closure value is the loss.
    The official code's shadow weights (``use_shadow``, off by default) and its stop flag
    are not included.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the moment averages.
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.EmoNavi(model.parameters(), lr=1e-3)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        muooon, "EmoNavi: An emotion-driven optimizer that feels loss and navigates accordingly", software, 2025.
        https://github.com/muooon/EmoNavi
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.995), eps: float = 1e-8, weight_decay: float = 0.01, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype,
                                                 loss_ema=None))

    def step(self, closure=None):
        """One step; the closure's loss (required for the loss signal) updates the loss averages first."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        value = 0.0 if loss is None else float(loss.detach() if isinstance(loss, torch.Tensor) else loss)
        for group in self.param_groups:
            group["loss_ema"] = loss_averages(group["loss_ema"], -value if group["maximize"] else value)
        return super().step(None if closure is None else (lambda: loss))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        emonavi_update(p, grad, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"],
                       drive=emotion_drive(*group["loss_ema"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                       weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="EmoNavi",
    cls=EmoNavi,
    canon_id="emonavi",
    family="adam-family",
    recipe={"lr": 0.01, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        # One parameter group: pytorch-optimizer updates its (optimizer-wide) loss averages once per group.
        Parity("pytorch-optimizer", "pytorch_optimizer:EmoNavi",
               {"lr": 1e-3, "betas": (0.9, 0.995), "weight_decay": 0.01},
               {"lr": 1e-3, "betas": (0.9, 0.995), "weight_decay": 0.01}),
    ),
))
