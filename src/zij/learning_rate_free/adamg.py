"""AdamG: Adam with the golden step size of AdaGrad-Norm carried into the first moment (Pang et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_sq_, l2_into_grad


def adamg_update(param, grad, exp_avg, exp_avg_sq, numerator, *, step: int, lr: float, beta1: float, beta2: float,
                 beta3: float, p: float, q: float, eps: float, weight_decay: float, decouple: bool) -> None:
    """One AdamG step for a tensor or a TensorList, in place.

    v <- b2 v + (1 - b2) g^2;  r <- b3 r + (1 - b3) p v^q;  m <- b1 m + (1 - b1) r g;
    theta <- theta - min(lr, 1/sqrt(t)) (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    Weight decay: added to g (coupled) or theta <- (1 - lr wd) theta first (decoupled).
    """
    if decouple:
        decoupled_decay_(param, lr, weight_decay)
    else:
        grad = l2_into_grad(grad, param, weight_decay)
    ema_sq_(exp_avg_sq, grad, beta2)
    numerator.lerp_(exp_avg_sq.pow(q).mul_(p), 1 - beta3)
    exp_avg.mul_(beta1).addcmul_(numerator, grad, value=1 - beta1)
    step_size = min(lr, 1 / math.sqrt(step))
    denom = (exp_avg_sq / bias_correction(beta2, step)).sqrt_().add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size / bias_correction(beta1, step))


class AdamG(ZijOptimizer):
    r"""AdamG: Adam whose first moment carries a growing "golden" numerator, so no learning rate is tuned.

    The numerator $r$ is a moving average of $p\, v^{q}$, a fractional power of the
    second moment, which stands in for the distance to a solution that a parameter-free
    step needs; it multiplies the gradient before the first moment averages it. The
    step size is $\min(\eta, 1/\sqrt{t})$, so $\eta$ (1 by default) is only a cap.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \ \text{(coupled decay; decoupled: } \tilde g_t = g_t,\ \theta_{t-1} \leftarrow (1-\eta\lambda)\,\theta_{t-1}) \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    r_t &= \beta_3 r_{t-1} + (1-\beta_3)\, p\, v_t^{q} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, r_t\, \tilde g_t \\
    \alpha_t &= \min\left(\eta, \tfrac{1}{\sqrt{t}}\right) \\
    \theta_t &= \theta_{t-1} - \alpha_t\, \frac{m_t/(1-\beta_1^{t})}{\sqrt{v_t/(1-\beta_2^{t})} + \epsilon}
    \end{aligned}
    $$

    All operations are elementwise. This is pytorch_optimizer's AdamG (its
    ``fixed_decay`` option is left out); the decoupled decay uses $\eta$, not $\alpha_t$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: $\eta$, a cap on the step size $1/\sqrt{t}$ (a scheduler may change it).
        betas: $(\beta_1, \beta_2, \beta_3)$, decay rates of the first moment, the second moment and the numerator.
        p: coefficient $p$ of the numerator function $p\, v^{q}$.
        q: exponent $q$ of the numerator function.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$.
        decouple: decoupled (AdamW-style) decay instead of adding $\lambda\theta$ to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdamG(model.parameters())
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Pang, Yu, Hoang and Zhou, "Towards Stability of Parameter-free Optimization", 2024.
        https://arxiv.org/abs/2405.04376
    """

    state_names = ("exp_avg", "exp_avg_sq", "numerator")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, betas=(0.95, 0.999, 0.95), p: float = 0.2, q: float = 0.24,
                 eps: float = 1e-8, weight_decay: float = 0.0, decouple: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(n_betas=3, lr=lr, betas=betas, p=p, q=q, eps=eps, weight_decay=weight_decay,
                                   decouple=decouple, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(p, "p")
        check_positive(q, "q")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2, beta3 = group["betas"]
        adamg_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["numerator"], step=state["step"],
                     lr=group["lr"], beta1=beta1, beta2=beta2, beta3=beta3, p=group["p"], q=group["q"],
                     eps=group["eps"], weight_decay=group["weight_decay"], decouple=group["decouple"])


register(OptimizerEntry(
    name="AdamG",
    cls=AdamG,
    canon_id="adamg",
    family="parameter-free",
    recipe={"lr": 1.0},
    variants={"decoupled": {"weight_decay": 0.001, "decouple": True}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 0.999, 1.0)) + (
        ErrorInput({"betas": (0.9, 0.999)}, "betas"),
        ErrorInput({"p": 0.0}, "p"),
        ErrorInput({"q": -0.1}, "q"),
    ),
    parity=(
        # pytorch_optimizer adds the coupled decay to p.grad in place; only the weights are compared.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdamG", {"weight_decay": 0.01},
               {"weight_decay": 0.01, "foreach": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:AdamG",
               {"lr": 0.3, "betas": (0.9, 0.99, 0.9), "p": 0.3, "q": 0.2, "eps": 1e-6, "weight_decay": 0.05,
                "decouple": True},
               {"lr": 0.3, "betas": (0.9, 0.99, 0.9), "p": 0.3, "q": 0.2, "eps": 1e-6, "weight_decay": 0.05,
                "weight_decouple": True, "foreach": False}),
    ),
))
