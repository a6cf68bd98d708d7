"""D-Adaptation Adan: Adan scaled by a growing lower bound on the distance to a solution (Defazio and Mishchenko)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ._common import check_growth_rate


def dadapt_adan_statistics_(grad, pre_grad, exp_avg, exp_avg_diff, exp_avg_sq, s, *, dlr: float, beta1: float,
                            beta2: float, beta3: float, eps: float) -> tuple[float, float, float]:
    """Update the moments and s of one tensor in place; return its terms of the estimate.

    dg = g - g_prev;  m <- b1 m + (1 - b1) dlr g;  n <- b2 n + (1 - b2) dlr dg;
    v <- b3 v + (1 - b3) (g + b2 dg)^2;  s <- b3 s + (1 - b3) dlr g.
    Returns (<g, g / D>, <s, s / D>, ||s||_1) with D = sqrt(v) + eps after this step's update.
    """
    diff = grad - pre_grad.to(grad.dtype)
    update = grad + beta2 * diff
    exp_avg.mul_(beta1).add_(grad, alpha=dlr * (1 - beta1))
    exp_avg_diff.mul_(beta2).add_(diff, alpha=dlr * (1 - beta2))
    exp_avg_sq.mul_(beta3).addcmul_(update, update, value=1 - beta3)
    denom = exp_avg_sq.sqrt().add_(eps)
    g_sq = float((grad * grad / denom).sum())
    s.mul_(beta3).add_(grad, alpha=dlr * (1 - beta3))
    return g_sq, float((s * s / denom).sum()), float(s.abs().sum())


def dadapt_adan_step_(param, grad, pre_grad, exp_avg, exp_avg_diff, exp_avg_sq, *, dlr: float, beta2: float,
                      eps: float, weight_decay: float, no_prox: bool) -> None:
    """theta <- (theta - (m + b2 n) / D) / (1 + dlr wd), or (1 - dlr wd) theta - (m + b2 n) / D with no_prox;
    then remember g for the next difference. m and n already carry the step size dlr."""
    update = (exp_avg + exp_avg_diff * beta2).div_(exp_avg_sq.sqrt().add_(eps))
    if no_prox:
        param.mul_(1 - dlr * weight_decay).sub_(update)
    else:
        param.sub_(update).div_(1 + dlr * weight_decay)
    pre_grad.copy_(grad)


class DAdaptAdan(ZijOptimizer):
    r"""D-Adaptation Adan: Adan scaled by a never-decreasing lower bound $d$ on the distance to a solution.

    The step size $\delta_t = \eta\, d_t$ enters Adan's two first-order averages (of the
    gradients and of their differences); $d$ is raised whenever the weighted sums of
    gradients, measured in Adan's metric $D$, show that the iterates must travel further.
    Weight decay is proximal by default, as in Adan.

    $$
    \begin{aligned}
    \delta_t &= \eta\, d_t, \qquad \Delta g_t = g_t - g_{t-1}\ \ (g_{-1} := g_0) \\
    m_{t+1} &= \beta_1 m_t + (1-\beta_1)\, \delta_t\, g_t \\
    n_{t+1} &= \beta_2 n_t + (1-\beta_2)\, \delta_t\, \Delta g_t \\
    v_{t+1} &= \beta_3 v_t + (1-\beta_3)\, (g_t + \beta_2 \Delta g_t)^{2}, \qquad D_{t+1} = \sqrt{v_{t+1}} + \epsilon \\
    s_{t+1} &= \beta_3 s_t + (1-\beta_3)\, \delta_t\, g_t \\
    G_{t+1} &= \beta_3 G_t + (1-\beta_3)\, \delta_t^{2} \left\langle g_t, \frac{g_t}{D_{t+1}} \right\rangle \\
    \hat d_{t+1} &= \frac{\langle s_{t+1}, s_{t+1} / D_{t+1} \rangle / (1-\beta_3) - G_{t+1}}{\lVert s_{t+1}\rVert_1}, \qquad d_{t+1} = \max\bigl(d_t,\ \min(\hat d_{t+1},\ \kappa\, d_t)\bigr) \\
    \theta_{t+1} &= \frac{\theta_t - (m_{t+1} + \beta_2 n_{t+1}) / D_{t+1}}{1 + \delta_t \lambda}
    \end{aligned}
    $$

    This is the official code's DAdaptAdan (dadaptation 3.2). With ``no_prox`` the last
    line is $\theta_{t+1} = (1 - \delta_t\lambda)\,\theta_t - (m_{t+1} + \beta_2 n_{t+1})/D_{t+1}$.
    Inner products and norms run over all parameters of all groups; $d$, $G$ and the step
    count are shared by all groups and kept in every group dict; each group uses its own
    $\eta$, and a group with $\eta = 0$ neither moves nor contributes (the official code
    uses the first group's learning rate for all). A step in which every gradient so far
    is zero moves nothing and leaves $d$ and $G$ unchanged.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        betas: $(\beta_1, \beta_2, \beta_3)$, decay rates of the gradient, difference and second-moment averages.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$ (proximal by default; the official default is 0.02).
        no_prox: decoupled decay $(1 - \delta_t\lambda)\,\theta_t$ instead of the proximal division.
        d0: initial lower bound $d_0$.
        growth_rate: $\kappa$, largest factor by which $d$ may grow in one step.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DAdaptAdan(model.parameters(), lr=1.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023 (the Adan
        version is in the official code). https://github.com/facebookresearch/dadaptation
    """

    state_names = ("s", "exp_avg", "exp_avg_diff", "exp_avg_sq", "pre_grad")
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, betas=(0.98, 0.92, 0.99), eps: float = 1e-8,
                 weight_decay: float = 0.02, no_prox: bool = False, d0: float = 1e-6, growth_rate: float = math.inf,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(n_betas=3, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                   no_prox=no_prox, d0=d0, growth_rate=growth_rate, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype, d=d0, gsq_weighted=0.0, k=0)
        check_positive(d0, "d0")
        check_growth_rate(growth_rate)
        super().__init__(params, defaults)

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        beta1, beta2, beta3 = first["betas"]
        d = first["d"]
        g_sq = sksq = l1 = 0.0
        for group, params, grads, states in gathered:
            if group["lr"] == 0:
                continue
            dlr = d * group["lr"]
            group_g_sq = 0.0
            for g, state in zip(grads, states):
                if state["step"] == 0:
                    state["pre_grad"].copy_(g)
                a, b, c = dadapt_adan_statistics_(g, state["pre_grad"], state["exp_avg"], state["exp_avg_diff"],
                                                  state["exp_avg_sq"], state["s"], dlr=dlr, beta1=beta1,
                                                  beta2=beta2, beta3=beta3, eps=group["eps"])
                group_g_sq += a
                sksq += b
                l1 += c
            g_sq += group_g_sq * dlr**2
        gsq_weighted = beta3 * first["gsq_weighted"] + g_sq * (1 - beta3)
        if l1 == 0:  # no gradient seen yet: nothing is learnt about the distance, and nothing moves
            return
        new_d = d
        if any(group["lr"] > 0 for group in self.param_groups):
            d_hat = (sksq / (1 - beta3) - gsq_weighted) / l1
            new_d = max(d, min(d_hat, d * first["growth_rate"]))
        for group in self.param_groups:
            group.update(d=new_d, gsq_weighted=gsq_weighted, k=group["k"] + 1, dlr=d * group["lr"])
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move and group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        dadapt_adan_step_(p, grad, state["pre_grad"], state["exp_avg"], state["exp_avg_diff"], state["exp_avg_sq"],
                          dlr=group["dlr"], beta2=group["betas"][1], eps=group["eps"],
                          weight_decay=group["weight_decay"], no_prox=group["no_prox"])


register(OptimizerEntry(
    name="DAdaptAdan",
    cls=DAdaptAdan,
    canon_id="d-adaptation-adan",
    family="parameter-free",
    aliases=("D-Adapt Adan", "D-Adaptation Adan"),
    recipe={"lr": 1.0, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.1, "weight_decay": 0.0}},
    capabilities=Capabilities(elementwise=False),
    variants={"no_prox": {"no_prox": True}, "growth_rate": {"growth_rate": 1.05}},
    skips={"param_groups": "d is estimated from the gradients of all groups together, so one DAdaptAdan over two "
                           "groups is not two over one group each (the official code does the same)"},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.98, 0.92, 1.0)) + (
        ErrorInput({"betas": (0.9, 0.99)}, "betas"),
        ErrorInput({"d0": 0.0}, "d0"),
        ErrorInput({"growth_rate": 0.5}, "growth_rate"),
    ),
    # parity with dadaptation's DAdaptAdan: tests/optim/test_dadapt_adan_lion.py (its step calls the closure
    # under no_grad, so gradients are computed before step())
))
