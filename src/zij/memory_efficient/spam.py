"""SPAM: Adam with spike clipping, periodic momentum reset and a warm-up after each reset (Huang et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import decoupled_decay_, ema_, ema_sq_


def clip_spikes(grad, exp_avg_sq, threshold: float):
    r"""$\operatorname{sign}(g)\sqrt{\tau v}$ where $g^2 > \tau v$, else $g$ (a new tensor or TensorList)."""
    if isinstance(grad, TensorList):
        return TensorList(clip_spikes(g, v, threshold) for g, v in zip(grad, exp_avg_sq))
    limit = exp_avg_sq * threshold
    return torch.where(grad.square() > limit, grad.sign() * limit.sqrt(), grad)


def spam_warmup(step: int, update_proj_gap: int, warmup_epoch: int) -> float:
    r"""The factor $s_t$: $1 - 0.99 \cdot \tfrac12\bigl(1 + \cos\tfrac{\pi (c_t + 1)}{W + 1}\bigr)$ for
    $c_t = t \bmod \Delta T < W$ after the first reset ($t \ge \Delta T$), else 1."""
    since_reset = step % update_proj_gap
    if step < update_proj_gap or since_reset >= warmup_epoch:
        return 1.0
    return 1.0 - 0.99 * 0.5 * (1.0 + math.cos(math.pi * (since_reset + 1) / (warmup_epoch + 1)))


def spam_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, threshold: float, update_proj_gap: int, warmup_epoch: int,
                grad_accu_steps: int) -> None:
    """One SPAM step for a tensor or a TensorList, in place.

    m, v <- 0 if t mod gap == 0;  g <- sign(g) sqrt(tau v) where g^2 > tau v (once t mod gap >= N_a);
    m, v: Adam's moments;  theta <- theta - lr s_t sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps);
    theta <- (1 - lr wd) theta.
    """
    if step % update_proj_gap == 0:
        exp_avg.zero_()
        exp_avg_sq.zero_()
    if threshold > 0 and step % update_proj_gap >= grad_accu_steps:
        grad = clip_spikes(grad, exp_avg_sq, threshold)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    scale = spam_warmup(step, update_proj_gap, warmup_epoch) * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr * scale)
    decoupled_decay_(param, lr, weight_decay)


class SPAM(ZijOptimizer):
    r"""SPAM: Adam that clips gradient spikes, resets its moments periodically and re-warms after each reset.

    Every ``update_proj_gap`` steps both moments are set to zero, and the step is scaled
    by a cosine warm-up that rises from 0.01 to 1 over ``warmup_epoch`` steps. Once
    ``grad_accu_steps`` steps have passed since the last reset, a gradient entry whose
    square exceeds ``threshold`` times its second moment is clipped to
    $\operatorname{sign}(g)\sqrt{\tau v}$. The bias corrections use the step count $t$,
    which the reset does not restart, and weight decay is applied after the step, as in the
    official code. $t$ counts the steps of each parameter (the official code counts
    optimizer steps: the same when every parameter has a gradient at every step). The
    official sparse-momentum option (``density`` < 1: moments on a random mask redrawn at
    each reset) is not implemented; ``density = 1``, its default, is this rule.

    $$
    \begin{aligned}
    m_{t-1}, v_{t-1} &\leftarrow 0, 0 \quad \text{if } t \equiv 0 \pmod{\Delta T} \\
    \tilde g_t &= \begin{cases} \operatorname{sign}(g_t)\, \sqrt{\tau\, v_{t-1}} & \text{if } g_t^{2} > \tau\, v_{t-1} \text{ and } t \bmod \Delta T \ge N_a \\ g_t & \text{otherwise} \end{cases} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    s_t &= \begin{cases} 1 - 0.99\, \tfrac{1}{2}\big(1 + \cos\tfrac{\pi (c_t + 1)}{W+1}\big) & c_t < W \\ 1 & \text{otherwise} \end{cases} \\
    \theta_t &= \theta_{t-1} - \eta\, s_t\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, \frac{m_t}{\sqrt{v_t} + \epsilon}, \qquad \theta_t \leftarrow (1 - \eta\lambda)\, \theta_t
    \end{aligned}
    $$

    $c_t = t \bmod \Delta T$ once $t \ge \Delta T$ (no warm-up before the first reset).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the moments.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$, applied after the step.
        threshold: spike threshold $\tau$ relative to the second moment (0: no clipping).
        update_proj_gap: reset interval $\Delta T$ in steps.
        warmup_epoch: length $W$ of the cosine warm-up after each reset.
        grad_accu_steps: steps $N_a$ after each reset (and at the start) without clipping.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SPAM(model.parameters(), lr=1e-3, update_proj_gap=500, warmup_epoch=150)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Huang et al., "SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM Training", ICLR 2025.
        https://arxiv.org/abs/2501.06842
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                 threshold: float = 5000, update_proj_gap: int = 500, warmup_epoch: int = 150,
                 grad_accu_steps: int = 20, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, threshold=threshold,
                                   update_proj_gap=update_proj_gap, warmup_epoch=warmup_epoch,
                                   grad_accu_steps=grad_accu_steps, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype)
        check_nonnegative(threshold, "threshold")
        check_int(update_proj_gap, "update_proj_gap", minimum=1)
        check_int(warmup_epoch, "warmup_epoch", minimum=0)
        check_int(grad_accu_steps, "grad_accu_steps", minimum=0)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        spam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"], beta1=beta1,
                    beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"], threshold=group["threshold"],
                    update_proj_gap=group["update_proj_gap"], warmup_epoch=group["warmup_epoch"],
                    grad_accu_steps=group["grad_accu_steps"])


# Small intervals so that 50 steps cover resets, warm-ups and clipping (threshold 2 clips often).
_PARITY = {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "threshold": 2.0, "update_proj_gap": 15,
           "warmup_epoch": 6, "grad_accu_steps": 3}

register(OptimizerEntry(
    name="SPAM",
    cls=SPAM,
    canon_id="spam",
    family="adam-family",
    recipe={"lr": 0.05, "update_proj_gap": 200, "warmup_epoch": 20},
    recipes={"rosenbrock": {"lr": 0.01, "update_proj_gap": 500, "warmup_epoch": 50}},
    variants={"no_clipping": {"threshold": 0.0}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.0)) + (
        ErrorInput({"threshold": -1.0}, "threshold"),
        ErrorInput({"update_proj_gap": 0}, "update_proj_gap"),
        ErrorInput({"warmup_epoch": -1}, "warmup_epoch"),
        ErrorInput({"grad_accu_steps": 1.5}, "grad_accu_steps"),
    ),
    parity=(
        # pytorch_optimizer's SPAM counts optimizer steps (ours: per parameter; equal here), keeps a
        # density-1 mask on matrices (the dense rule) and, like the official code, reads its warm-up
        # one scheduler step ahead (the (c + 1) of the rule).
        Parity("pytorch-optimizer", "pytorch_optimizer:SPAM", _PARITY, {**_PARITY, "eps": 1e-6}),
    ),
))
