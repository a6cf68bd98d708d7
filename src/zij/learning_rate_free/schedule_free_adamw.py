"""Schedule-Free AdamW: iterate averaging in place of a learning-rate schedule (Defazio et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from .._sharded import local
from .._tensorlist import TensorList
from ..blocks import ema_sq_


def schedule_free_adamw_update(y, grad, z, exp_avg_sq, *, lr_t: float, ckp1: float, beta1: float, beta2: float,
                               eps: float, weight_decay: float) -> None:
    """One step for a tensor or a TensorList; the parameter holds y, the point where gradients are taken.

    v <- b2 v + (1 - b2) g^2;  d = g / (sqrt(v) + eps) + wd y;  z' = z - lr_t d;
    x' = (1 - c) x + c z' and y' = (1 - b1) z' + b1 x', which with x = (y - (1 - b1) z) / b1 is
    y' = (1 - c) y + c z + lr_t (b1 (1 - c) - 1) d.
    """
    ema_sq_(exp_avg_sq, grad, beta2)
    direction = grad / exp_avg_sq.sqrt().add_(eps)
    if weight_decay != 0:
        direction.add_(y, alpha=weight_decay)
    dtype = (y[0] if isinstance(y, TensorList) else y).dtype
    y.lerp_(z.to(dtype), ckp1).add_(direction, alpha=lr_t * (beta1 * (1 - ckp1) - 1))  # .to: no copy unless state_dtype
    z.sub_(direction, alpha=lr_t)


class ScheduleFreeAdamW(ZijOptimizer):
    r"""Schedule-Free AdamW: AdamW steps on a base sequence, an average of it for evaluation, no schedule.

    The base sequence $z_t$ takes AdamW-normalized steps; the weights to evaluate,
    $\theta_t$, are a running average of it weighted by the squared step sizes; and
    gradients are taken at $y_t$, between the two. No decay schedule is needed: the
    averaging plays its role. Only warm-up and the bias correction enter $\eta_t$.

    $$
    \begin{aligned}
    y_t &= (1-\beta_1)\, z_t + \beta_1\, \theta_t \\
    g_t &= \nabla f(y_t, \zeta_t) \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \eta_t &= \eta\, \sqrt{1-\beta_2^{t}}\, \min\!\left(1,\ \frac{t}{T_{\text{warmup}}}\right) \\
    z_{t+1} &= z_t - \eta_t\, \frac{g_t}{\sqrt{v_t} + \epsilon} - \eta_t \lambda\, y_t \\
    c_{t+1} &= \frac{\eta_t^{2}}{\sum_{i=1}^{t} \eta_i^{2}} \\
    \theta_{t+1} &= (1-c_{t+1})\, \theta_t + c_{t+1}\, z_{t+1}
    \end{aligned}
    $$

    Protocol: the model's parameters hold $y_t$ while training. Call ``opt.train()``
    before training steps and ``opt.eval()`` before evaluating or saving the model:
    ``eval()`` moves the parameters to the average $\theta_t$ and ``train()`` moves
    them back to $y_t$; ``step`` in eval mode raises. The averaging weights are
    $t^{r}\,\eta_t^{p}$ with $p$ = ``weight_lr_power`` ($r = 0$, $p = 2$ give the rule
    above); the official code uses the largest $\eta_i$ so far in place of $\eta_t$, the
    same unless a scheduler lowers the learning rate.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: base learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, interpolation coefficient and second-moment decay.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$, applied at $y_t$.
        warmup_steps: $T_{\text{warmup}}$, steps of linear warm-up.
        r: exponent of an extra polynomial weight $t^{r}$ in the average.
        weight_lr_power: power $p$ of the step size in the averaging weights.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ScheduleFreeAdamW(model.parameters(), lr=2.5e-3, warmup_steps=100)
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
                 warmup_steps: int = 0, r: float = 0.0, weight_lr_power: float = 2.0, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, warmup_steps=warmup_steps,
                                   r=r, weight_lr_power=weight_lr_power, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, k=0, weight_sum=0.0, train_mode=True)
        check_int(warmup_steps, "warmup_steps", minimum=0)
        check_nonnegative(r, "r")
        check_nonnegative(weight_lr_power, "weight_lr_power")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["z"] = self.copy_like(p, group)

    def group_step(self, group, params, grads, states):
        if not group["train_mode"]:
            raise RuntimeError("ScheduleFreeAdamW.step() was called in eval mode: call opt.train() before training")
        beta2 = group["betas"][1]
        t = group["k"] = group["k"] + 1
        warmup = min(1.0, t / group["warmup_steps"]) if group["warmup_steps"] else 1.0
        group["lr_t"] = group["lr"] * (1 - beta2**t) ** 0.5 * warmup
        weight = t ** group["r"] * group["lr_t"] ** group["weight_lr_power"]
        group["weight_sum"] += weight
        group["ckp1"] = weight / group["weight_sum"] if group["weight_sum"] > 0 else 0.0
        super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        schedule_free_adamw_update(p, grad, state["z"], state["exp_avg_sq"], lr_t=group["lr_t"], ckp1=group["ckp1"],
                                   beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])

    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters to the average theta (x), where the model is evaluated."""
        self._switch(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters back to y, where training gradients are taken."""
        self._switch(train=True)

    def _switch(self, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            beta1 = group["betas"][0]
            for p in group["params"]:
                if "z" in self.state.get(p, {}):
                    z = self.state[p]["z"].to(p.dtype)
                    local(p).lerp_(z, 1 - beta1 if train else 1 - 1 / beta1)  # FSDP2: the shard's state
            group["train_mode"] = train


register(OptimizerEntry(
    name="ScheduleFreeAdamW",
    cls=ScheduleFreeAdamW,
    canon_id="schedule-free-adamw",
    family="schedule-free",
    aliases=("AdamWScheduleFree", "Schedule-Free AdamW"),
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"warmup_steps": -1}, "warmup_steps"),
        ErrorInput({"r": -1.0}, "r"),
    ),
))
