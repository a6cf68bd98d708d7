"""TAM: momentum whose intake is damped where the gradient opposes it (Malviya et al., 2024)."""

from __future__ import annotations

import torch
from torch.nn.functional import normalize

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, per_tensor


def _unit(x: torch.Tensor) -> torch.Tensor:
    """``x`` divided by its norm along the first dimension (floored at 1e-12); a 0-dim tensor by its magnitude."""
    if x.dim() == 0:
        return x / x.abs().clamp_min(1e-12)
    return normalize(x, p=2.0, dim=0)


def alignment(momentum, grad):
    r"""The alignment $\hat m \odot \hat g$ of momentum and gradient, each normalized along the first dimension
    (a new tensor, or a TensorList computed per tensor)."""
    return per_tensor(lambda m, g: _unit(m).mul_(_unit(g)), momentum, grad)


def damped_grad_(smoothed, momentum, grad, *, decay_rate: float, eps: float):
    """Update the smoothed alignment in place and return the damped gradient ((1 + s) / 2 + eps) * g (a new tensor).

    s <- decay_rate s + (1 - decay_rate) (m_hat * g_hat).
    """
    ema_(smoothed, alignment(momentum, grad), decay_rate)
    return smoothed.add(1.0).div_(2.0).add_(eps).mul_(grad)


def tam_update(param, grad, smoothed, momentum_buffer, *, lr: float, momentum: float, decay_rate: float, eps: float,
               weight_decay: float) -> None:
    """One TAM step for a tensor or a TensorList, in place.

    s <- gamma s + (1 - gamma) m_hat * g_hat;  m <- beta m + ((1 + s) / 2 + eps) g;
    theta <- (1 - lr wd) theta - lr m.
    """
    damped = damped_grad_(smoothed, momentum_buffer, grad, decay_rate=decay_rate, eps=eps)
    momentum_buffer.mul_(momentum).add_(damped)
    decoupled_decay_(param, lr, weight_decay)
    param.add_(momentum_buffer, alpha=-lr)


class TAM(ZijOptimizer):
    r"""TAM (Torque-Aware Momentum): SGD momentum that takes in less of gradients opposing it.

    Before a gradient enters the momentum it is multiplied by a damping factor
    $d_t = (1 + \bar s_t)/2$ in $[0, 1]$, where $\bar s_t$ is a running average
    of the alignment between the gradient and the momentum it would join: a
    gradient pulling against the accumulated direction moves it less, which
    damps oscillations. As in pytorch-optimizer's implementation, the
    alignment is taken per entry, as the product of the momentum and the
    gradient each normalized along the tensor's first dimension, and the
    momentum starts at the first gradient. Weight decay is decoupled.

    $$
    \begin{aligned}
    s_t &= \frac{m_{t-1}}{\lVert m_{t-1}\rVert_{(0)}} \odot \frac{g_t}{\lVert g_t\rVert_{(0)}}, \qquad \bar s_t = \gamma\, \bar s_{t-1} + (1-\gamma)\, s_t \\
    m_t &= \beta\, m_{t-1} + \Bigl(\frac{1 + \bar s_t}{2} + \epsilon\Bigr) g_t \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, m_t
    \end{aligned}
    $$

    $\lVert\cdot\rVert_{(0)}$ is the norm along the first dimension (floored at $10^{-12}$), broadcast back;
    $m_0 = g_1$ and $\bar s_0 = 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: $\beta$, the momentum coefficient.
        decay_rate: $\gamma$, the decay of the running alignment.
        weight_decay: decoupled weight decay $\lambda$.
        eps: $\epsilon$, the floor of the damping factor (gradients are never dropped entirely).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.TAM(model.parameters(), lr=1e-2, momentum=0.9)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Malviya et al., "Torque-Aware Momentum", arXiv 2024. https://arxiv.org/abs/2412.18790
    """

    state_names = ("smoothed", "momentum_buffer")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, decay_rate: float = 0.9,
                 weight_decay: float = 0.0, eps: float = 1e-8, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, decay_rate=decay_rate, weight_decay=weight_decay,
                                   eps=eps, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(decay_rate, "decay_rate")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        if state["step"] == 1:  # the momentum starts at the first gradient
            state["momentum_buffer"].copy_(grad)
        tam_update(p, grad, state["smoothed"], state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                   decay_rate=group["decay_rate"], eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="TAM",
    cls=TAM,
    canon_id="tam",
    family="momentum",
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 5e-4}},
    errors=invalid("lr", "momentum", "eps", "weight_decay") + (ErrorInput({"decay_rate": 1.0}, "decay_rate"),),
    parity=(
        # weight_decouple=True is pytorch-optimizer's default and our (only) decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:TAM",
               {"lr": 1e-2, "momentum": 0.9, "decay_rate": 0.8, "weight_decay": 0.1, "eps": 1e-8},
               {"lr": 1e-2, "momentum": 0.9, "decay_rate": 0.8, "weight_decay": 0.1, "eps": 1e-8}),
    ),
))
