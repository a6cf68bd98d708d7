"""PID: SGD as a proportional-integral-derivative controller (An et al., 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register


def pid_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    integral_buffer: torch.Tensor,
    derivative_buffer: torch.Tensor,
    previous_grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    momentum: float,
    integral: float,
    derivative: float,
    weight_decay: float,
) -> None:
    """One PID step for one tensor, in place.

    g <- g + weight_decay * theta;  I <- momentum * I + g;
    D <- momentum * D + (1 - momentum) * (g - g_prev)   (no difference at the first step);
    theta <- theta - lr * (g + integral * I + derivative * D);  g_prev <- g.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    if step == 1:
        previous_grad.copy_(grad)
    integral_buffer.mul_(momentum).add_(grad)
    derivative_buffer.mul_(momentum).add_(grad - previous_grad, alpha=1 - momentum)
    previous_grad.copy_(grad)
    control = grad.add(integral_buffer, alpha=integral).add_(derivative_buffer, alpha=derivative)
    param.add_(control, alpha=-lr)


class PID(ZijOptimizer):
    r"""PID: SGD with proportional, integral and derivative terms of the gradient.

    Momentum SGD is read as a proportional-integral controller acting on the
    gradient; PID adds a derivative term, a moving average of the change of
    the gradient between steps, which reacts to the gradient's trend and
    damps the overshoot of momentum. This class follows the authors' PyTorch
    code, where the three terms have separate gains and are all scaled by the
    learning rate (the paper writes the proportional and integral parts as one
    momentum term and adds the derivative term with its own gain). The
    gradient of the step before the first is taken equal to the first, so
    $D_1 = 0$. An optional L2 term is added to the gradient.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    I_t &= \beta\, I_{t-1} + \tilde g_t \\
    D_t &= \beta\, D_{t-1} + (1-\beta)\,(\tilde g_t - \tilde g_{t-1}), \qquad \tilde g_0 := \tilde g_1 \\
    \theta_t &= \theta_{t-1} - \eta \left( \tilde g_t + K_i\, I_t + K_d\, D_t \right)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: momentum and smoothing coefficient $\beta$ in $[0, 1)$.
        integral: integral gain $K_i$ (the authors' code calls it ``I``).
        derivative: derivative gain $K_d$ (the authors' code calls it ``D``).
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.PID(model.parameters(), lr=0.01, momentum=0.9, integral=5.0, derivative=10.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        An, Wang, Sun, Xu, Dai and Zhang, "A PID Controller Approach for Stochastic Optimization
        of Deep Networks", CVPR 2018.
        https://openaccess.thecvf.com/content_cvpr_2018/html/An_A_PID_Controller_CVPR_2018_paper.html
    """

    state_names = ("integral_buffer", "derivative_buffer", "previous_grad")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, integral: float = 5.0,
                 derivative: float = 10.0, weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, integral=integral, derivative=derivative,
                                   weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(integral, "integral")
        check_nonnegative(derivative, "derivative")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        pid_update(p, grad, state["integral_buffer"], state["derivative_buffer"], state["previous_grad"],
                   step=state["step"], lr=group["lr"], momentum=group["momentum"], integral=group["integral"],
                   derivative=group["derivative"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="PID",
    cls=PID,
    canon_id="pid",
    family="momentum",
    recipe={"lr": 1e-3, "momentum": 0.9, "integral": 5.0, "derivative": 10.0},
    recipes={"rosenbrock": {"lr": 5e-5}},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"integral": -1.0}, "integral"),
        ErrorInput({"derivative": -1.0}, "derivative"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:PID",
               {"lr": 0.01, "momentum": 0.9, "integral": 5.0, "derivative": 10.0, "weight_decay": 0.01},
               {"lr": 0.01, "momentum": 0.9, "integral": 5.0, "derivative": 10.0, "weight_decay": 0.01,
                "dampening": 0.0, "weight_decouple": False}),
    ),
))
