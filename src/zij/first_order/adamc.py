"""AdamC: AdamW whose decay on normalized layers follows the learning-rate schedule (Defazio, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_lr, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, Variant, invalid, register
from ..blocks import adam_direction, decoupled_decay_, ema_, ema_sq_


def adamc_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, max_lr: float, normalized: bool,
                 beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """One AdamC step for a tensor or a TensorList, in place.

    m, v: Adam's moments;  lambda_t = wd lr / max_lr on normalized layers, wd otherwise;
    theta <- (1 - lr lambda_t) theta - lr m_hat / (sqrt(v_hat) + eps).
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    direction = adam_direction(exp_avg, exp_avg_sq, step=step, beta1=beta1, beta2=beta2, eps=eps)
    decay = weight_decay * lr / max_lr if normalized else weight_decay
    decoupled_decay_(param, lr, decay).add_(direction, alpha=-lr)


class AdamC(ZijOptimizer):
    r"""AdamC: AdamW with the weight decay of normalized layers scaled by the learning-rate schedule.

    For a layer followed by normalization, weight decay sets the steady-state ratio of
    gradient norm to weight norm, and that ratio depends on the current learning rate,
    so a decaying schedule makes gradient norms climb near the end of training. AdamC
    multiplies the decay of such layers by $\eta_t / \eta_{\max}$, so the decoupled decay
    step is $\lambda \eta_t^2 / \eta_{\max}$ and the ratio stays constant. Mark the groups of
    normalized layers (weights feeding LayerNorm or BatchNorm, as in the paper) with
    ``normalized=True``; the others get AdamW's decay.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \lambda_t &= \begin{cases} \lambda\, \eta_t / \eta_{\max} & \text{normalized layers} \\ \lambda & \text{other parameters} \end{cases} \\
    \theta_t &= \theta_{t-1} - \eta_t\, \frac{m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} - \eta_t\, \lambda_t\, \theta_{t-1}
    \end{aligned}
    $$

    $\eta_t$ is the group's current learning rate (set by a scheduler) and $\eta_{\max}$ the
    peak of the schedule, by default the learning rate given to the constructor.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta_t$ (a scheduler changes it).
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        eps: $\epsilon$, added to $\sqrt{\hat v_t}$.
        weight_decay: base decoupled weight decay $\lambda$.
        max_lr: $\eta_{\max}$, the schedule's peak learning rate (``None``: ``lr``).
        normalized: the group's parameters feed normalization layers (set per group).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> groups = [{"params": model[0].parameters(), "normalized": True},
        ...           {"params": [*model[1].parameters(), *model[2].parameters()]}]
        >>> opt = zij.AdamC(groups, lr=1e-3, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio, "Why Gradients Rapidly Increase Near the End of Training", arXiv 2025.
        https://arxiv.org/abs/2506.02285
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 max_lr: float | None = None, normalized: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        max_lr = lr if max_lr is None else max_lr
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_lr=max_lr,
                                   normalized=bool(normalized), maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype)
        check_lr(max_lr, "max_lr")
        if max_lr == 0:
            raise ValueError(f"Invalid max_lr: {max_lr!r} (expected a number > 0)")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adamc_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                     max_lr=group["max_lr"], normalized=group["normalized"], beta1=beta1, beta2=beta2,
                     eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdamC",
    cls=AdamC,
    canon_id="adamc",
    family="adam-family",
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={"normalized": Variant({"normalized": True, "weight_decay": 0.01, "max_lr": 0.1})},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (ErrorInput({"max_lr": 0.0}, "max_lr"),),
    parity=(
        # eps = 0: pytorch-optimizer divides (sqrt(v) + eps) by sqrt(1 - beta2^t), zij adds eps to sqrt(v_hat) as
        # AdamW does. Its maximum learning rate is always the constructor's lr, so max_lr is that here.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdamC",
               {"lr": 1e-3, "eps": 0.0, "weight_decay": 0.1, "normalized": True},
               {"lr": 1e-3, "eps": 0.0, "weight_decay": 0.1, "normalized": True}),
    ),
))
