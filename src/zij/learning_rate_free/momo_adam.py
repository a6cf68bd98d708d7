"""MoMo-Adam: the MoMo model-based step with Adam's preconditioner (Schaipp et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import bias_correction, ema_, ema_sq_
from ._polyak import LossStepMixin
from .momo import momo_step_size


def momo_adam_update(param, grad_avg, grad_avg_sq, *, tau: float, step: int, beta2: float, eps: float, lr: float,
                     weight_decay: float, divide: bool) -> None:
    """theta <- (theta - tau d / D) / (1 + lr wd), or (1 - lr wd) theta - tau d / D without divide,
    with D = sqrt(v / (1 - b2^t)) + eps, for a tensor or a TensorList, in place."""
    denom = (grad_avg_sq / bias_correction(beta2, step)).sqrt_().add_(eps)
    if weight_decay > 0 and not divide:
        param.mul_(1 - weight_decay * lr)
    param.addcdiv_(grad_avg, denom, value=-tau)
    if weight_decay > 0 and divide:
        param.div_(1 + weight_decay * lr)


class MomoAdam(LossStepMixin, ZijOptimizer):
    r"""MoMo-Adam: Adam whose step is a truncated Polyak step on a momentum model of the loss, in Adam's metric.

    The MoMo model of the loss (moving averages of losses, gradients and the products
    $\langle g, \theta\rangle$) is measured in the norm of Adam's preconditioner $D_t$; its
    Polyak step, truncated at $\eta / \rho_t$ and using a lower bound $f_*$ of the loss,
    scales Adam's direction $d_t / D_t$. All averages start at zero.

    $$
    \begin{aligned}
    d_t &= \beta_1 d_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}, \qquad D_t = \sqrt{v_t / (1-\beta_2^{t})} + \epsilon \\
    \bar f_t &= \beta_1 \bar f_{t-1} + (1-\beta_1)\, f_t(\theta_t) \\
    \gamma_t &= \beta_1 \gamma_{t-1} + (1-\beta_1)\, \langle g_t, \theta_t \rangle \\
    \rho_t &= 1 - \beta_1^{t} \\
    \tau_t &= \min\left\{ \frac{\eta}{\rho_t},\ \frac{\big( (1+\eta\lambda)(\bar f_t - \rho_t f_*) + \langle d_t, \theta_t \rangle - (1+\eta\lambda)\,\gamma_t \big)_+}{\langle d_t, d_t / D_t \rangle} \right\} \\
    \theta_{t+1} &= \frac{\theta_t - \tau_t\, d_t / D_t}{1 + \eta\lambda}
    \end{aligned}
    $$

    With ``divide=False`` the last line is AdamW's form
    $\theta_{t+1} = (1-\eta\lambda)\,\theta_t - \tau_t d_t / D_t$. Inner products run over all
    parameters of all groups and $\bar f$ is shared, averaged with the first group's
    $\beta_1$ (the official code uses the last group's); each group uses its own $\eta$,
    $\lambda$ and $\epsilon$. The official code's online estimate of $f_*$ (``use_fstar``) is
    not included.

    Protocol: ``step`` needs the loss, so it must be given a closure that returns it
    (the closure may compute the gradients, or be ``lambda: loss`` after ``loss.backward()``).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: user learning rate $\eta$, the cap of the adaptive step (times $1/\rho_t$).
        betas: $(\beta_1, \beta_2)$, decay rates of the first-order averages and of $v$.
        eps: $\epsilon$, added to the denominator $D_t$.
        weight_decay: weight decay $\lambda$.
        lb: lower bound $f_*$ of the loss.
        divide: proximal decay (divide by $1 + \eta\lambda$) instead of AdamW's multiplication.
        maximize: maximize the objective instead of minimizing it (the model uses the negated loss).
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.MomoAdam(model.parameters(), lr=1e-2)
        >>> loss = model(torch.randn(8, 4)).square().mean()
        >>> loss.backward()
        >>> _ = opt.step(lambda: loss)

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, "MoMo: Momentum Models for Adaptive Learning
        Rates", ICML 2024. https://arxiv.org/abs/2305.07583
    """

    state_names = ("grad_avg", "grad_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-2, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 lb: float = 0.0, divide: bool = True, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, lb=lb, divide=divide,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype, k=0, loss_avg=0.0)
        if not isinstance(lb, (int, float)) or not math.isfinite(lb):
            raise ValueError(f"Invalid lb: {lb!r} (expected a finite number)")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["grad_dot_w"] = torch.zeros((), dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        k = first["k"] + 1
        dot = gamma = norm = 0.0
        for group, params, grads, states in gathered:
            beta1, beta2 = group["betas"]
            for p, g, state in zip(params, grads, states):
                d, v = state["grad_avg"], state["grad_avg_sq"]
                ema_(d, g, beta1)
                ema_sq_(v, g, beta2)
                state["grad_dot_w"].mul_(beta1).add_(torch.dot(p.flatten(), g.flatten()), alpha=1 - beta1)
                denom = (v / bias_correction(beta2, state["step"] + 1)).sqrt_().add_(group["eps"])
                dot += float(torch.dot(p.flatten(), d.flatten().to(p.dtype)))
                gamma += float(state["grad_dot_w"])
                norm += float((d * d / denom).sum())
        beta1 = first["betas"][0]
        loss_avg = (1 - beta1) * self.loss_value + beta1 * first["loss_avg"]
        for group in self.param_groups:
            group.update(k=k, loss_avg=loss_avg)
            group["tau"] = momo_step_size(loss_avg=loss_avg, dot=dot, gamma=gamma, norm=norm,
                                          rho=bias_correction(group["betas"][0], k), lr=group["lr"],
                                          weight_decay=group["weight_decay"], lb=group["lb"])
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        momo_adam_update(p, state["grad_avg"], state["grad_avg_sq"], tau=group["tau"], step=state["step"],
                         beta2=group["betas"][1], eps=group["eps"], lr=group["lr"],
                         weight_decay=group["weight_decay"], divide=group["divide"])


register(OptimizerEntry(
    name="MomoAdam",
    cls=MomoAdam,
    canon_id="momo-adam",
    family="parameter-free",
    aliases=("MoMo-Adam",),
    recipe={"lr": 0.1},
    recipes={"rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(needs_closure=True, elementwise=False),
    variants={"decay": {"weight_decay": 0.001}, "adamw_decay": {"weight_decay": 0.001, "divide": False}},
    skips={"param_groups": "the model's inner products and the loss average are shared by all groups, so one "
                           "MomoAdam over two groups is not two over one group each (as in the official code)",
           "ndims": "the shared check's loss sum(p^2 + p) is exactly 0 at its 0-d starting point, where a Polyak "
                    "step with lower bound 0 does not move by design; test_momo.py steps 0-d to 4-d tensors"},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (ErrorInput({"lb": math.nan}, "lb"),),
    # parity with the official momo-opt: tests/optim/test_momo.py
))
