"""Schedule-Free SGD: iterate averaging in place of a learning-rate schedule (Defazio et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import l2_into_grad
from ._schedule_free import TrainEvalProtocol, averaging_weight_, schedule_free_step_


def schedule_free_sgd_update(y, grad, z, *, lr_t: float, ckp1: float, momentum: float, weight_decay: float) -> None:
    """One step for a tensor or a TensorList; the parameter holds y, where gradients are taken.

    u = g + wd y;  z' = z - lr_t u;  y' = (1 - c) y + c z + lr_t (beta (1 - c) - 1) u  (beta = momentum).
    """
    schedule_free_step_(y, z, l2_into_grad(grad, y, weight_decay), lr=lr_t, ckp1=ckp1, beta=momentum)


class ScheduleFreeSGD(TrainEvalProtocol, ZijOptimizer):
    r"""Schedule-Free SGD: SGD steps on a base sequence, an average of it for evaluation, no schedule.

    The base sequence $z_t$ takes plain gradient steps; the weights to evaluate,
    $\theta_t$, are a running average of it; gradients are taken at $y_t$, between the
    two, and the interpolation $\beta$ plays the role of momentum. No decay schedule is
    needed: the averaging does its work. Only linear warm-up enters $\eta_t$.

    $$
    \begin{aligned}
    y_t &= (1-\beta)\, z_t + \beta\, \theta_t \\
    g_t &= \nabla f(y_t, \zeta_t) + \lambda\, y_t \\
    \eta_t &= \eta\, \min\!\left(1,\ \frac{t}{T_{\text{warmup}}}\right) \\
    z_{t+1} &= z_t - \eta_t\, g_t \\
    c_{t+1} &= \frac{t^{r}\, \bar\eta_t^{\,p}}{\sum_{i=1}^{t} i^{r}\, \bar\eta_i^{\,p}}, \qquad \bar\eta_t = \max_{i \le t} \eta_i \\
    \theta_{t+1} &= (1-c_{t+1})\, \theta_t + c_{t+1}\, z_{t+1}
    \end{aligned}
    $$

    Protocol: the model's parameters hold $y_t$ while training. Call ``opt.train()``
    before training steps and ``opt.eval()`` before evaluating or saving the model:
    ``eval()`` moves the parameters to the average $\theta_t$ and ``train()`` moves them
    back to $y_t$; ``step`` in eval mode raises. A new optimizer starts in train mode
    (the official class starts in eval mode and needs ``train()`` first). As in the
    official code the averaging weights use the largest step size so far, $\bar\eta_t$,
    and the weight decay is added to the gradient at $y_t$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: base learning rate $\eta$ (larger than usual for SGD: 1 to 10 times).
        momentum: $\beta$, interpolation between the average and the base sequence, in (0, 1).
        weight_decay: weight decay $\lambda$, added to the gradient at $y_t$.
        warmup_steps: $T_{\text{warmup}}$, steps of linear warm-up.
        r: exponent $r$ of the polynomial weight $t^{r}$ in the average.
        weight_lr_power: power $p$ of the step size in the averaging weights.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ScheduleFreeSGD(model.parameters(), lr=1.0, warmup_steps=100)
        >>> opt.train()
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, "The Road Less Scheduled", NeurIPS 2024.
        https://arxiv.org/abs/2405.15682
    """

    supports_foreach = True
    per_element = True

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, warmup_steps=warmup_steps,
                                   r=r, weight_lr_power=weight_lr_power, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, k=0, weight_sum=0.0, lr_max=0.0, train_mode=True)
        if momentum == 0:  # y = (1 - beta) z + beta x needs beta > 0 to recover x
            check_unit(-1.0, "momentum")
        check_int(warmup_steps, "warmup_steps", minimum=0)
        check_nonnegative(r, "r")
        check_nonnegative(weight_lr_power, "weight_lr_power")
        super().__init__(params, defaults)

    def interpolation(self, group):
        return group["momentum"]

    def init_state(self, p, state, group):
        state["step"] = 0
        state["z"] = self.copy_like(p, group)

    def group_step(self, group, params, grads, states):
        self.check_train_mode(group)
        t = group["k"] = group["k"] + 1
        warmup = min(1.0, t / group["warmup_steps"]) if group["warmup_steps"] else 1.0
        group["lr_t"] = group["lr"] * warmup
        group["ckp1"] = averaging_weight_(group, group["lr_t"], t)
        super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        schedule_free_sgd_update(p, grad, state["z"], lr_t=group["lr_t"], ckp1=group["ckp1"],
                                 momentum=group["momentum"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="ScheduleFreeSGD",
    cls=ScheduleFreeSGD,
    canon_id="schedule-free-sgd",
    family="schedule-free",
    aliases=("SGDScheduleFree", "Schedule-Free SGD"),
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 2e-3}},
    variants={"warmup": {"warmup_steps": 20, "weight_decay": 1e-4}},
    errors=invalid("lr", "weight_decay", momentum=1.0) + (
        ErrorInput({"momentum": 0.0}, "momentum"),
        ErrorInput({"warmup_steps": -1}, "warmup_steps"),
        ErrorInput({"r": -1.0}, "r"),
        ErrorInput({"weight_lr_power": -1.0}, "weight_lr_power"),
    ),
))
