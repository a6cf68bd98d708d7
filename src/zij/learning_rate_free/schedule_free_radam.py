"""Schedule-Free RAdam: RAdam's rectified steps with iterate averaging in place of warm-up and schedule (Defazio et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register
from ..blocks import ema_sq_
from ._schedule_free import TrainEvalProtocol, averaging_weight_, schedule_free_step_


def radam_rectification(beta2: float, step: int) -> tuple[float, float]:
    """(rho_t, the rectification term r_t of RAdam, or 0.0 where rho_t <= 4 and the variance is intractable)."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2**step / (1 - beta2**step)
    if rho_t <= 4:
        return rho_t, 0.0
    return rho_t, ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def schedule_free_radam_update(y, grad, z, exp_avg_sq, *, step: int, lr_t: float, ckp1: float, adaptive: bool,
                               beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """One step for a tensor or a TensorList; the parameter holds y, where gradients are taken.

    v <- b2 v + (1 - b2) g^2;  u = g / (sqrt(v / (1 - b2^t)) + eps) once rho_t > 4 (``adaptive``), else g;
    u <- u + wd y;  z' = z - lr_t u;  y' = (1 - c) y + c z + lr_t (b1 (1 - c) - 1) u.
    """
    ema_sq_(exp_avg_sq, grad, beta2)
    direction = grad / (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps) if adaptive else grad.clone()
    if weight_decay != 0:
        direction.add_(y, alpha=weight_decay)
    schedule_free_step_(y, z, direction, lr=lr_t, ckp1=ckp1, beta=beta1)


class ScheduleFreeRAdam(TrainEvalProtocol, ZijOptimizer):
    r"""Schedule-Free RAdam: RAdam's rectified Adam steps on a base sequence, averaged, with neither warm-up nor schedule.

    Schedule-Free averaging as in :class:`ScheduleFreeAdamW`, with RAdam's rectification
    $\kappa_t$ in place of warm-up: while the variance of the adaptive step is
    intractable ($\rho_t \le 4$, the first steps) nothing moves (``silent_sgd_phase``)
    or the base sequence takes SGD steps, and the step size is scaled by $\kappa_t$
    after that.

    $$
    \begin{aligned}
    y_t &= (1-\beta_1)\, z_t + \beta_1\, \theta_t \\
    g_t &= \nabla f(y_t, \zeta_t) \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \rho_t &= \rho_\infty - \frac{2 t \beta_2^{t}}{1-\beta_2^{t}}, \qquad \rho_\infty = \frac{2}{1-\beta_2} - 1 \\
    \kappa_t &= \begin{cases} \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}} & \rho_t > 4 \\ 0 \ \text{(or 1 without the silent phase)} & \rho_t \le 4 \end{cases} \\
    u_t &= \begin{cases} g_t \big/ \bigl(\sqrt{v_t / (1-\beta_2^{t})} + \epsilon\bigr) & \rho_t > 4 \\ g_t & \rho_t \le 4 \end{cases} \\
    \eta_t &= \eta\, \kappa_t, \qquad \bar\eta_t = \max_{i \le t} \eta_i \\
    z_{t+1} &= z_t - \eta_t\, (u_t + \lambda\, y_t) \\
    c_{t+1} &= \frac{t^{r}\, \bar\eta_t^{\,p}}{\sum_{i=1}^{t} i^{r}\, \bar\eta_i^{\,p}} \\
    \theta_{t+1} &= (1-c_{t+1})\, \theta_t + c_{t+1}\, z_{t+1}
    \end{aligned}
    $$

    Protocol: the model's parameters hold $y_t$ while training. Call ``opt.train()``
    before training steps and ``opt.eval()`` before evaluating or saving the model:
    ``eval()`` moves the parameters to the average $\theta_t$ and ``train()`` moves them
    back to $y_t$; ``step`` in eval mode raises. A new optimizer starts in train mode
    (the official class starts in eval mode and needs ``train()`` first). As in the
    official code the averaging weights use the largest step size so far $\bar\eta_t$
    ($c_{t+1} = 0$ while all weights are zero), and the weight decay is added at $y_t$
    after the normalization.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: base learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, interpolation coefficient and second-moment decay.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$, applied at $y_t$.
        r: exponent $r$ of the polynomial weight $t^{r}$ in the average.
        weight_lr_power: power $p$ of the step size in the averaging weights.
        silent_sgd_phase: take no step while $\rho_t \le 4$ (else an SGD step with $\eta$).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ScheduleFreeRAdam(model.parameters(), lr=2.5e-3)
        >>> opt.train()
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, "The Road Less Scheduled", NeurIPS 2024.
        https://arxiv.org/abs/2405.15682
    """

    state_names = ("exp_avg_sq",)
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 0.0025, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 r: float = 0.0, weight_lr_power: float = 2.0, silent_sgd_phase: bool = True, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, r=r,
                                   weight_lr_power=weight_lr_power, silent_sgd_phase=silent_sgd_phase,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype, k=0, weight_sum=0.0,
                                   lr_max=0.0, train_mode=True)
        if defaults["betas"][0] == 0:  # y = (1 - b1) z + b1 x needs b1 > 0 to recover x
            raise ValueError(f"Invalid betas[0]: {betas[0]!r} (expected a number in (0, 1))")
        check_nonnegative(r, "r")
        check_nonnegative(weight_lr_power, "weight_lr_power")
        super().__init__(params, defaults)

    def interpolation(self, group):
        return group["betas"][0]

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["z"] = self.copy_like(p, group)

    def group_step(self, group, params, grads, states):
        self.check_train_mode(group)
        t = group["k"] = group["k"] + 1
        rho_t, rect = radam_rectification(group["betas"][1], t)
        group["adaptive"] = rho_t > 4
        if not group["adaptive"] and not group["silent_sgd_phase"]:
            rect = 1.0
        group["lr_t"] = group["lr"] * rect
        group["ckp1"] = averaging_weight_(group, group["lr_t"], t)
        super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        schedule_free_radam_update(p, grad, state["z"], state["exp_avg_sq"], step=group["k"], lr_t=group["lr_t"],
                                   ckp1=group["ckp1"], adaptive=group["adaptive"], beta1=beta1, beta2=beta2,
                                   eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="ScheduleFreeRAdam",
    cls=ScheduleFreeRAdam,
    canon_id="schedule-free-radam",
    family="schedule-free",
    aliases=("RAdamScheduleFree", "Schedule-Free RAdam"),
    # The matrix's recipe takes SGD steps while rho_t <= 4, so that every check sees the weights move in its
    # first steps; Rosenbrock's steep start (gradient about 1e3) needs the silent phase there.
    recipe={"lr": 0.05, "silent_sgd_phase": False, "weight_decay": 1e-4},
    recipes={"rosenbrock": {"silent_sgd_phase": True, "weight_decay": 0.0}},
    variants={"silent": Variant({"silent_sgd_phase": True}, skips={
        "ndims": "the silent phase changes no weight in the first four steps (rho_t <= 4), and the check takes "
                 "three; test_schedule_free_sgd_radam.py checks that those steps leave the weights in place"})},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"betas": (0.0, 0.999)}, r"betas\[0\]"),
        ErrorInput({"r": -1.0}, "r"),
        ErrorInput({"weight_lr_power": -1.0}, "weight_lr_power"),
    ),
))
