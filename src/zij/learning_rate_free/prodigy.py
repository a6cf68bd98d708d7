"""Prodigy: Adam whose step size is a growing estimate of the distance to a solution (Mishchenko and Defazio, 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, l2_into_grad
from ._common import check_growth_rate


def prodigy_statistics_(param, grad, p0, s, exp_avg, exp_avg_sq, *, d: float, d0: float, dlr: float, beta1: float,
                        beta2: float, beta3: float, safeguard_warmup: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The moments and the estimate's statistics of one tensor, updated in place with the current d.

    Returns this tensor's terms of the estimate: (d/d0) dlr <g, theta0 - theta> and ||s||_1 after
    m <- b1 m + (1 - b1) d g,  v <- b2 v + (1 - b2) d^2 g^2,  s <- b3 s + (d/d0) dlr g (d in place of
    dlr with ``safeguard_warmup``). The factor d/d0 cancels in r/||s||_1; it keeps both away from underflow.
    """
    dot = torch.dot(grad.flatten(), (p0 - param).flatten()) * ((d / d0) * dlr)
    if exp_avg is not None:
        exp_avg.mul_(beta1).add_(grad, alpha=d * (1 - beta1))
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=d * d * (1 - beta2))
    s.mul_(beta3).add_(grad, alpha=(d / d0) * (d if safeguard_warmup else dlr))
    return dot, s.abs().sum()


def prodigy_step_(param, grad, exp_avg, exp_avg_sq, *, d: float, dlr: float, eps: float, weight_decay: float) -> None:
    """theta <- (1 - dlr wd) theta - dlr m / (sqrt(v) + d eps), with d the updated estimate (d g for m when beta1 = 0)."""
    denom = exp_avg_sq.sqrt().add_(d * eps)
    if weight_decay != 0:
        decoupled_decay_(param, dlr, weight_decay)
    if exp_avg is not None:
        param.addcdiv_(exp_avg, denom, value=-dlr)
    else:
        param.addcdiv_(grad, denom, value=-dlr * d)


class Prodigy(ZijOptimizer):
    r"""Prodigy: Adam with its step size set by a never-decreasing estimate of the distance to a solution.

    The estimate $d_t$ starts tiny ($d_0$) and is raised whenever the gradients seen so
    far prove, through the weighted correlation $r$ of gradients with the distance
    travelled from $\theta_0$, that the solution is further away. Adam's moments are
    taken of $d_t g_t$, so the learning rate stays a multiplier, normally 1.

    $$
    \begin{aligned}
    \delta_t &= \eta\, d_t\, \rho_t \\
    r_{t+1} &= \beta_3\, r_t + \frac{d_t}{d_0}\, \delta_t\, \langle g_t,\ \theta_0 - \theta_t \rangle \\
    m_{t+1} &= \beta_1 m_t + (1-\beta_1)\, d_t\, g_t \\
    v_{t+1} &= \beta_2 v_t + (1-\beta_2)\, d_t^{2}\, g_t^{2} \\
    s_{t+1} &= \beta_3\, s_t + \frac{d_t}{d_0}\, \delta_t\, g_t \\
    \hat d_{t+1} &= c\, \frac{r_{t+1}}{\lVert s_{t+1}\rVert_1}, \qquad d_{t+1} = \max(d_t,\ \hat d_{t+1}) \\
    \theta_{t+1} &= (1 - \delta_t \lambda)\, \theta_t - \delta_t\, \frac{m_{t+1}}{\sqrt{v_{t+1}} + d_{t+1}\, \epsilon}
    \end{aligned}
    $$

    This is the official code's arithmetic: $\rho_t = \sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})$
    with ``use_bias_correction`` (else 1), $\beta_3 = \sqrt{\beta_2}$ by default, the
    paper's $(1-\beta_3)$ factors dropped (they cancel in $\hat d$), $c$ = ``d_coef``, and the
    updated $d_{t+1}$ in the denominator. ``growth_rate`` $\kappa$ caps the growth:
    $d_{t+1} = \min(\max(d_0, \hat d_1, \dots, \hat d_{t+1}),\ \kappa\, d_t)$ (at $d_t = d_0$
    first raised to $\hat d_{t+1}$, as upstream). With ``decouple=False`` the weight decay
    is added to the gradient instead; with ``safeguard_warmup`` $s$ is weighted by
    $d_t^2 / d_0$ without the learning rate. With $\beta_1 = 0$ there is no $m$ and the
    step uses $d_t g_t$. $d$, $r$ and the step count are shared by all groups and kept in
    every group dict; each group steps with its own $\eta$, and a group with $\eta = 0$
    contributes nothing to the estimate and does not move (the official code accepts only one
    learning rate, or 0, across groups). A step in which every
    gradient is zero leaves $d$, $r$ and the weights unchanged.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        beta3: $\beta_3$, decay of $r$ and $s$ (``None``: $\sqrt{\beta_2}$).
        eps: $\epsilon$, scaled by $d$ in the denominator.
        weight_decay: weight decay $\lambda$.
        decouple: AdamW-style decoupled decay (else L2 added to the gradient).
        use_bias_correction: multiply the step by Adam's bias correction $\rho_t$.
        safeguard_warmup: leave the learning rate out of $s$, for use with warm-up.
        d0: initial estimate $d_0$.
        d_coef: $c$, multiplies the new estimate (the knob to tune).
        growth_rate: $\kappa$, largest factor by which $d$ may grow in one step.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Prodigy(model.parameters(), lr=1.0, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.param_groups[0].get("d") >= 1e-6
        True

    References:
        Mishchenko and Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner", ICML 2024.
        https://arxiv.org/abs/2306.06101
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, betas=(0.9, 0.999), beta3: float | None = None, eps: float = 1e-8,
                 weight_decay: float = 0.0, decouple: bool = True, use_bias_correction: bool = False,
                 safeguard_warmup: bool = False, d0: float = 1e-6, d_coef: float = 1.0,
                 growth_rate: float = math.inf, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, beta3=beta3, eps=eps, weight_decay=weight_decay,
                                   decouple=decouple, use_bias_correction=use_bias_correction,
                                   safeguard_warmup=safeguard_warmup, d0=d0, d_coef=d_coef, growth_rate=growth_rate,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype,
                                   d=d0, d_max=d0, d_numerator=0.0, k=0)
        if beta3 is not None:
            check_unit(beta3, "beta3")
        check_positive(d0, "d0")
        check_positive(d_coef, "d_coef")
        check_growth_rate(growth_rate)
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["p0"] = self.copy_like(p, group)
        state["s"] = self.zeros_like(p, group)
        if group["betas"][0] > 0:
            state["exp_avg"] = self.zeros_like(p, group)
        state["exp_avg_sq"] = self.zeros_like(p, group)

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        beta3 = first["beta3"] if first["beta3"] is not None else beta2**0.5
        d, k = first["d"], first["k"]
        rho = (1 - beta2 ** (k + 1)) ** 0.5 / (1 - beta1 ** (k + 1)) if first["use_bias_correction"] else 1.0
        numerator, denominator = [], []
        for group, params, grads, states in gathered:
            if group["lr"] == 0:
                continue
            dlr = d * group["lr"] * rho
            for p, g, state in zip(params, grads, states):
                if not group["decouple"]:
                    g = l2_into_grad(g, p, group["weight_decay"])
                dot, l1 = prodigy_statistics_(p, g, state["p0"], state["s"], state.get("exp_avg"),
                                              state["exp_avg_sq"], d=d, d0=first["d0"], dlr=dlr, beta1=beta1,
                                              beta2=beta2, beta3=beta3, safeguard_warmup=first["safeguard_warmup"])
                numerator.append(dot)
                denominator.append(l1)
        d_denom = float(torch.stack(denominator).sum()) if denominator else 0.0
        if d_denom == 0:  # no gradient seen: nothing is learnt about the distance, and nothing moves
            return
        d_numerator = first["d_numerator"] * beta3 + float(torch.stack(numerator).sum())
        d_hat = first["d_coef"] * d_numerator / d_denom
        d_max = max(first["d_max"], d_hat)
        new_d = min(d_max, (max(d, d_hat) if d == first["d0"] else d) * first["growth_rate"])
        for group in self.param_groups:
            group.update(d=new_d, d_max=d_max, d_numerator=d_numerator, d_hat=d_hat, k=k + 1,
                         dlr=d * group["lr"] * rho)
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move and group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        decay = group["weight_decay"]
        if not group["decouple"]:
            grad, decay = l2_into_grad(grad, p, decay), 0.0
        prodigy_step_(p, grad, state["exp_avg"] if "exp_avg" in state else None, state["exp_avg_sq"], d=group["d"],
                      dlr=group["dlr"], eps=group["eps"], weight_decay=decay)


register(OptimizerEntry(
    name="Prodigy",
    cls=Prodigy,
    canon_id="prodigy",
    family="parameter-free",
    aliases=("prodigyopt",),
    recipe={"lr": 1.0},
    recipes={"rosenbrock": {"lr": 0.2}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "bias_correction": {"use_bias_correction": True},
        "coupled_decay": {"weight_decay": 0.01, "decouple": False},
        "no_momentum": {"betas": (0.0, 0.999)},
    },
    skips={"param_groups": "d is estimated from the gradients of all groups together, so one Prodigy over two groups "
                           "is not two Prodigys over one group each (the official code does the same)"},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"beta3": 1.0}, "beta3"),
        ErrorInput({"d0": 0.0}, "d0"),
        ErrorInput({"d_coef": -1.0}, "d_coef"),
        ErrorInput({"growth_rate": 0.5}, "growth_rate"),
    ),
    parity=(
        # prodigyopt takes the largest lr of all groups and refuses different ones: the matrix uses one lr.
        # Its coupled decay adds to p.grad in place; we compare weights only, which that does not change.
        Parity("prodigyopt", "prodigyopt:Prodigy", {"lr": 1.0, "weight_decay": 0.01},
               {"lr": 1.0, "weight_decay": 0.01}),
        Parity("prodigyopt", "prodigyopt:Prodigy",
               {"lr": 0.5, "betas": (0.9, 0.99), "beta3": 0.95, "weight_decay": 0.05, "decouple": False,
                "use_bias_correction": True, "d_coef": 0.7, "growth_rate": 1.1},
               {"lr": 0.5, "betas": (0.9, 0.99), "beta3": 0.95, "weight_decay": 0.05, "decouple": False,
                "use_bias_correction": True, "d_coef": 0.7, "growth_rate": 1.1}),
        Parity("prodigyopt", "prodigyopt:Prodigy", {"betas": (0.0, 0.999), "safeguard_warmup": True, "d0": 1e-4},
               {"betas": (0.0, 0.999), "safeguard_warmup": True, "d0": 1e-4}),
    ),
))
