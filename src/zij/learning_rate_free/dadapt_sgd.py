"""D-Adaptation SGD: dual averaging whose step size is a growing lower bound on the distance to a solution (Defazio and Mishchenko, 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import l2_into_grad
from ._common import check_growth_rate


def dadapt_sgd_statistics_(grad, s, *, dlr: float) -> tuple[torch.Tensor, torch.Tensor]:
    """s <- s + dlr g in place; return this tensor's terms dlr <g, s> (s before the step) and ||s||^2 (after)."""
    dot = torch.dot(grad.flatten(), s.flatten().to(grad.dtype)) * dlr
    s.add_(grad, alpha=dlr)
    return dot, (s * s).sum()


def dadapt_sgd_step_(param, s, x0, *, momentum: float) -> None:
    """theta <- mu theta + (1 - mu) (theta_0 - s): the dual-averaging point, averaged with momentum mu."""
    param.mul_(momentum).add_(x0 - s, alpha=1 - momentum)


class DAdaptSGD(ZijOptimizer):
    r"""D-Adaptation SGD: dual averaging with a step size set by a never-decreasing distance bound $d$.

    The weighted sum of gradients $s$ is subtracted from the starting point; its
    weights $\delta_t$ are $d_t$ over the first gradient's norm, and $d$ is raised
    whenever $2 r / \lVert s\rVert$, a lower bound on the distance to a solution, exceeds it.
    Momentum averages the dual-averaging points (primal averaging).

    $$
    \begin{aligned}
    \delta_t &= \frac{\eta\, d_t}{\lVert g_0\rVert} \\
    r_{t+1} &= r_t + \delta_t\, \langle g_t,\ s_t \rangle \\
    s_{t+1} &= s_t + \delta_t\, g_t \\
    \hat d_{t+1} &= \frac{2\, r_{t+1}}{\lVert s_{t+1}\rVert}, \qquad d_{t+1} = \max\bigl(d_t,\ \min(\hat d_{t+1},\ \kappa\, d_t)\bigr) \\
    \theta_{t+1} &= \mu\, \theta_t + (1-\mu)\, (\theta_0 - s_{t+1})
    \end{aligned}
    $$

    This is the official code's DAdaptSGD. Inner products and norms run over all
    parameters of all groups; weight decay is coupled ($\lambda\theta_t$ added to $g_t$),
    but $\lVert g_0\rVert$ is the norm of the first raw gradient, as upstream. $d$, $r$,
    $\lVert g_0\rVert$ and the step count are shared by all groups and kept in every
    group dict; each group uses its own $\eta$ and weight decay, and a group with
    $\eta = 0$ contributes nothing and does not move (the official code accepts only one
    learning rate, or 0, across groups). A step in which every gradient is
    zero changes nothing.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        momentum: $\mu$, weight of the previous iterate in the average.
        weight_decay: L2 weight decay $\lambda$, added to the gradient.
        d0: initial lower bound $d_0$.
        growth_rate: $\kappa$, largest factor by which $d$ may grow in one step.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DAdaptSGD(model.parameters(), lr=1.0, momentum=0.9)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
        https://arxiv.org/abs/2301.07733
    """

    state_names = ("s",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.0, weight_decay: float = 0.0, d0: float = 1e-6,
                 growth_rate: float = math.inf, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, d0=d0,
                                   growth_rate=growth_rate, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, d=d0, numerator_weighted=0.0, g0_norm=0.0, k=0)
        check_positive(d0, "d0")
        check_growth_rate(growth_rate)
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["x0"] = self.copy_like(p, group)

    def global_step(self, gathered):
        self._move = False
        first = self.param_groups[0]
        d, k = first["d"], first["k"]
        active = [(group, params, grads, states) for group, params, grads, states in gathered if group["lr"] != 0]
        g0_norm = first["g0_norm"]
        if k == 0:
            squares = [(g * g).sum() for _, _, grads, _ in active for g in grads]
            g0_norm = math.sqrt(float(torch.stack(squares).sum())) if squares else 0.0
            if g0_norm == 0:  # nothing to scale the first step by yet
                return
        dots, squares = [], []
        for group, params, grads, states in active:
            dlr = d * group["lr"] / g0_norm
            for p, g, state in zip(params, grads, states):
                g = l2_into_grad(g, p, group["weight_decay"])
                dot, sq = dadapt_sgd_statistics_(g, state["s"], dlr=dlr)
                dots.append(dot)
                squares.append(sq)
        s_sq = float(torch.stack(squares).sum()) if squares else 0.0
        if s_sq == 0:  # no gradient seen: nothing is learnt about the distance, and nothing moves
            return
        numerator = first["numerator_weighted"] + float(torch.stack(dots).sum())
        d_hat = 2 * numerator / math.sqrt(s_sq)
        new_d = max(d, min(d_hat, d * first["growth_rate"]))
        for group in self.param_groups:
            group.update(d=new_d, numerator_weighted=numerator, d_hat=d_hat, g0_norm=g0_norm, k=k + 1)
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move and group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        dadapt_sgd_step_(p, state["s"], state["x0"], momentum=group["momentum"])


register(OptimizerEntry(
    name="DAdaptSGD",
    cls=DAdaptSGD,
    canon_id="d-adaptation-sgd",
    family="parameter-free",
    aliases=("D-Adapt SGD", "D-Adaptation SGD"),
    recipe={"lr": 1.0, "momentum": 0.9},
    capabilities=Capabilities(elementwise=False),
    variants={"weight_decay": {"weight_decay": 0.001}},
    skips={"param_groups": "d and the first gradient's norm are taken over all groups together, so one DAdaptSGD "
                           "over two groups is not two over one group each (the official code does the same)"},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"d0": 0.0}, "d0"),
        ErrorInput({"growth_rate": 0.5}, "growth_rate"),
    ),
    parity=(
        # dadaptation takes the largest lr of all groups and refuses different ones: the matrix uses one lr.
        # Its weight decay adds to p.grad in place; we compare weights only, which that does not change.
        Parity("dadaptation", "dadaptation:DAdaptSGD", {"lr": 1.0, "momentum": 0.9, "weight_decay": 0.01},
               {"lr": 1.0, "momentum": 0.9, "weight_decay": 0.01}),
        Parity("dadaptation", "dadaptation:DAdaptSGD", {"lr": 0.5, "d0": 1e-3, "growth_rate": 1.1},
               {"lr": 0.5, "d0": 1e-3, "growth_rate": 1.1}),
    ),
))
