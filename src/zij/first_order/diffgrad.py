"""diffGrad: Adam damped by a friction from the change of the gradient (Dubey et al., 2020)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def diffgrad_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    previous_grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One diffGrad step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  m, v: Adam's moments;  xi = sigmoid(|g_prev - g|);
    theta <- theta - lr * xi * m_hat / (sqrt(v_hat) + eps);  g_prev <- g.
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    friction = (previous_grad - grad).abs_().sigmoid_()
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    denom = (exp_avg_sq / bias_correction2).sqrt_().add_(eps)
    param.addcdiv_(friction.mul_(exp_avg), denom, value=-lr / bias_correction1)
    previous_grad.copy_(grad)


class DiffGrad(ZijOptimizer):
    r"""diffGrad: Adam whose step is scaled by a friction coefficient from the gradient's change.

    Each coordinate's Adam step is multiplied by $\xi_t$, a sigmoid of the
    absolute difference between the previous and the current gradient. It
    lies between $1/2$ and $1$: where the gradient barely changes, as near a
    flat optimum, the step is damped toward half; where it changes fast, the
    full Adam step is taken. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    \xi_t &= \frac{1}{1 + e^{-\lvert g_{t-1} - g_t\rvert}} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, \xi_t\, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}
    \end{aligned}
    $$

    With $\lambda = 0$ this is the paper's rule, with $g_0 = 0$. The official
    code adds $\epsilon$ to $\sqrt{v_t}$ before the bias correction rather
    than to $\sqrt{\hat v_t}$, and uses coupled (L2) weight decay.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DiffGrad(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Dubey, Chakraborty, Roy, Mukherjee, Singh and Chaudhuri, "diffGrad: An Optimization Method for
        Convolutional Neural Networks", IEEE Transactions on Neural Networks and Learning Systems 2020.
        https://arxiv.org/abs/1909.11015
    """

    state_names = ("exp_avg", "exp_avg_sq", "previous_grad")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        diffgrad_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["previous_grad"], step=state["step"],
                        lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="DiffGrad",
    cls=DiffGrad,
    canon_id="diffgrad",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        # pytorch-optimizer adds eps to sqrt(v) before the bias correction (as the official code does);
        # a tiny eps makes the placement immaterial.
        Parity("pytorch-optimizer", "pytorch_optimizer:DiffGrad",
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-12, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-12, "weight_decay": 0.1, "weight_decouple": True,
                "fixed_decay": False, "rectify": False, "ams_bound": False}),
    ),
))
