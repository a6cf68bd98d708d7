"""EXAdam: Adam with cross-moment bias corrections and a gradient acceleration term (Adly, 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_


def exadam_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float, eps: float,
                  weight_decay: float) -> None:
    """One EXAdam step for a tensor or a TensorList, in place.

    theta <- (1 - lr wd) theta;  m, v: Adam's moments;  d1 = 1 + b2^t v / (v + eps),  d2 = 1 + b1^t m^2 / (m^2 + eps);
    m~ = d1 m / (1 - b1^t),  g~ = d1 g / (1 - b1^t),  v~ = d2 v / (1 - b2^t);
    theta <- theta - lr (m~ + g~) / (sqrt(v~) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    bc1, bc2 = bias_correction(beta1, step), bias_correction(beta2, step)
    d1 = (exp_avg_sq / (exp_avg_sq + eps)).mul_(beta2**step).add_(1.0)
    m_sq = exp_avg * exp_avg
    d2 = (m_sq / (m_sq + eps)).mul_(beta1**step).add_(1.0)
    numerator = (exp_avg / bc1).mul_(d1).add_((grad / bc1).mul_(d1))
    denominator = (exp_avg_sq / bc2).mul_(d2).sqrt_().add_(eps)
    param.add_(numerator.div_(denominator), alpha=-lr)


class EXAdam(ZijOptimizer):
    r"""EXAdam: Adam whose two bias corrections each depend on the other moment, plus a gradient term.

    Each moment's bias correction is enlarged by a factor that depends on the other
    moment: $d_1$ grows with the second moment and multiplies the first, $d_2$ grows
    with the squared first moment and multiplies the second. Both factors fade as
    $\beta^{t} \to 0$, so late in training the step is Adam's with one difference that
    stays: a bias-corrected copy of the current gradient is added to the numerator, so
    the step reacts faster to the present slope. Weight decay is decoupled and applied
    first.

    $$
    \begin{aligned}
    \theta' &= (1 - \eta\lambda)\, \theta_{t-1} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    d_{1,t} &= 1 + \beta_2^{t}\, \frac{v_t}{v_t + \epsilon}, \qquad d_{2,t} = 1 + \beta_1^{t}\, \frac{m_t^{2}}{m_t^{2} + \epsilon} \\
    \tilde m_t &= \frac{d_{1,t}\, m_t}{1-\beta_1^{t}}, \qquad \tilde v_t = \frac{d_{2,t}\, v_t}{1-\beta_2^{t}}, \qquad \tilde g_t = \frac{d_{1,t}\, g_t}{1-\beta_1^{t}} \\
    \theta_t &= \theta' - \eta\, \frac{\tilde m_t + \tilde g_t}{\sqrt{\tilde v_t} + \epsilon}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moments.
        eps: $\epsilon$, in the correction factors and the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.EXAdam(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Adly, "EXAdam: The Power of Adaptive Cross-Moments", arXiv 2024. https://arxiv.org/abs/2412.20302
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        exadam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"], beta1=beta1,
                      beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="EXAdam",
    cls=EXAdam,
    canon_id="exadam",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        # pytorch-optimizer's EXAdam with its defaults (decoupled weight decay scaled by lr) is this rule.
        Parity("pytorch-optimizer", "pytorch_optimizer:EXAdam", {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1}),
    ),
))
