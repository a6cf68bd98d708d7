"""SGDW: SGD with momentum and decoupled weight decay (Loshchilov and Hutter, 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register


def sgdw_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    schedule: float,
    momentum: float,
    weight_decay: float,
) -> None:
    """One SGDW step for one tensor, in place.

    m <- momentum * m + lr * g;  theta <- theta - m - schedule * weight_decay * theta,
    where ``lr`` is the scheduled learning rate s_t * alpha and ``schedule`` the multiplier s_t.
    """
    momentum_buffer.mul_(momentum).add_(grad, alpha=lr)
    param.mul_(1 - schedule * weight_decay).sub_(momentum_buffer)


class SGDW(ZijOptimizer):
    r"""SGDW: SGD with momentum whose weight decay is decoupled from the gradient step.

    The decay $\lambda\theta$ is not added to the gradient (which would pass it
    through the momentum) but subtracted from the weights directly, scaled by
    the schedule multiplier $s_t$ alone, so the best $\lambda$ no longer
    depends on the learning rate $\alpha$. The learning rate enters the
    momentum buffer, as in the paper.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + s_t\, \alpha\, g_t \\
    \theta_t &= \theta_{t-1} - m_t - s_t\, \lambda\, \theta_{t-1}
    \end{aligned}
    $$

    The group's ``lr`` is the scheduled rate $s_t \alpha$; $\alpha$ is the
    group's ``initial_lr``, which a torch learning-rate scheduler records when
    it is created and the class otherwise records at the first step, so
    $s_t = \mathrm{lr} / \mathrm{initial\_lr}$ (1 without a scheduler). Note
    that $\lambda$ is therefore not multiplied by the learning rate, unlike
    torch's AdamW convention: the paper's $\lambda$ is the per-step fraction
    of the weights removed.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $s_t \alpha$ (a scheduler may change it).
        momentum: momentum coefficient $\beta_1$ in [0, 1).
        weight_decay: decoupled weight decay $\lambda$, removed per step at $s_t = 1$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SGDW(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
        https://arxiv.org/abs/1711.05101
    """

    state_names = ("momentum_buffer",)
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def group_step(self, group, params, grads, states):
        group.setdefault("initial_lr", group["lr"])
        super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        initial = float(group["initial_lr"])
        schedule = float(group["lr"]) / initial if initial > 0 else 0.0
        sgdw_update(p, grad, state["momentum_buffer"], lr=group["lr"], schedule=schedule, momentum=group["momentum"],
                    weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="SGDW",
    cls=SGDW,
    canon_id="sgdw",
    family="sgd-family",
    recipe={"lr": 0.05, "momentum": 0.9},
    recipes={"rosenbrock": {"lr": 1e-3, "momentum": 0.9}},
    errors=invalid("lr", "momentum", "weight_decay"),
    parity=(
        # pytorch-optimizer keeps lr outside the buffer (m = beta m + g, theta -= lr m) and decays by lr * lambda:
        # with a constant lr the first is the same rule, and its weight_decay = ours / lr gives the same decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:SGDW", {"lr": 1e-2, "momentum": 0.9, "weight_decay": 1e-3},
               {"lr": 1e-2, "momentum": 0.9, "weight_decay": 0.1, "weight_decouple": True, "dampening": 0.0,
                "nesterov": False}),
    ),
))
