"""AdamS: the momentum as its own normalizer, with no second-moment state (Zhang, Wang and Chen, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_


def adams_update(param, grad, exp_avg, *, lr: float, beta1: float, beta2: float, eps: float,
                 weight_decay: float) -> None:
    """One AdamS step for a tensor or a TensorList, in place.

    v = b2 m_{t-1}^2 + (1 - b2) g^2 (not stored);  m <- b1 m + (1 - b1) g;
    theta <- theta - lr (m / (sqrt(v) + eps) + wd theta).
    """
    normalizer = (exp_avg * exp_avg).mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    ema_(exp_avg, grad, beta1)
    decoupled_decay_(param, lr, weight_decay)
    param.addcdiv_(exp_avg, normalizer.sqrt_().add_(eps), value=-lr)


class AdamS(ZijOptimizer):
    r"""AdamS: normalize the momentum by the root of a blend of the old momentum and the new gradient, squared.

    AdamS keeps one state tensor, the momentum, as SGD with momentum does. Adam's
    second moment is replaced by a normalizer computed on the fly from the squared
    previous momentum and the squared current gradient; the authors motivate it by
    the observation that in transformers the local smoothness follows the gradient's
    size, which the momentum estimates well. There is no bias correction, and AdamW's
    hyperparameters carry over. Weight decay is decoupled.

    This is the AdamS of Zhang, Wang and Chen (2025), not the AdamS of Xie et al.
    (Adam with stable weight decay), which pytorch-optimizer ships under that name.

    $$
    \begin{aligned}
    v_t &= \beta_2\, m_{t-1}^{2} + (1-\beta_2)\, g_t^{2} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    \theta_t &= \theta_{t-1} - \eta \left( \frac{m_t}{\sqrt{v_t} + \epsilon} + \lambda\, \theta_{t-1} \right)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, momentum decay and the normalizer's weight on the old momentum.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdamS(model.parameters(), lr=1e-3, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhang, Wang and Chen, "AdamS: Momentum Itself Can Be A Normalizer for LLM Pretraining and Post-training",
        EMNLP 2025. https://arxiv.org/abs/2505.16363
    """

    state_names = ("exp_avg",)
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adams_update(p, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                     weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdamS",
    cls=AdamS,
    canon_id="adams",
    family="adam-family",
    recipe={"lr": 0.02},
    recipes={"rosenbrock": {"lr": 0.005}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    # No parity: the paper's code is not packaged, and pytorch-optimizer's AdamS is Xie et al.'s stable weight
    # decay (record scheduled-weight-decay). tests/optim/test_adams.py checks hand-computed steps and identities.
))
