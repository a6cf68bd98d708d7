"""D-Adaptation AdaGrad: diagonal AdaGrad dual averaging with a growing distance bound as its step size (Defazio and Mishchenko, 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import l2_into_grad
from ._common import check_growth_rate


def _weighted_sq(s, alpha, eps: float) -> torch.Tensor:
    """sum s^2 / (sqrt(alpha) + eps): the squared norm of s in AdaGrad's metric."""
    return (s * s).div(alpha.sqrt().add_(eps)).sum()


def dadapt_adagrad_statistics_(grad, s, alpha, *, dlr: float, eps: float) -> tuple[torch.Tensor, ...]:
    """Update AdaGrad's sum and s of one tensor in place: alpha <- alpha + g^2,  s <- s + dlr g.

    Returns this tensor's changes of sum s^2 / (sqrt(alpha) + eps) and of ||s||_1, and its
    sum g^2 / (sqrt(alpha) + eps) with the new alpha.
    """
    old_sq, old_l1 = _weighted_sq(s, alpha, eps), s.abs().sum()
    alpha.addcmul_(grad, grad)
    g_sq = (grad * grad).div(alpha.sqrt().add_(eps)).sum()
    s.add_(grad, alpha=dlr)
    return _weighted_sq(s, alpha, eps) - old_sq, s.abs().sum() - old_l1, g_sq


def dadapt_adagrad_step_(param, s, alpha, x0, *, momentum: float, eps: float) -> None:
    """theta <- mu theta + (1 - mu) (theta_0 - s / (sqrt(alpha) + eps))."""
    z = x0 - s.div(alpha.sqrt().add_(eps))
    if momentum != 0:
        param.mul_(momentum).add_(z, alpha=1 - momentum)
    else:
        param.copy_(z)


class DAdaptAdaGrad(ZijOptimizer):
    r"""D-Adaptation AdaGrad: diagonal AdaGrad dual averaging scaled by a never-decreasing distance bound $d$.

    The weighted gradient sum $s$, preconditioned by AdaGrad's accumulated squares, is
    subtracted from the starting point. $d$ is raised whenever the squared size of $s$
    in AdaGrad's metric, less the weighted sum $u$ of squared steps, divided by
    $\lVert s\rVert_1$ exceeds it.

    $$
    \begin{aligned}
    \delta_t &= \eta\, d_t \\
    \alpha_{t+1} &= \alpha_t + g_t^{2} \\
    s_{t+1} &= s_t + \delta_t\, g_t \\
    u_{t+1} &= u_t + \delta_t^{2} \sum \frac{g_t^{2}}{\sqrt{\alpha_{t+1}} + \epsilon} \\
    \hat d_{t+1} &= \frac{\sum s_{t+1}^{2} / (\sqrt{\alpha_{t+1}} + \epsilon) - u_{t+1}}{\lVert s_{t+1}\rVert_1}, \qquad d_{t+1} = \max\bigl(d_t,\ \min(\hat d_{t+1},\ \kappa\, d_t)\bigr) \\
    \theta_{t+1} &= \mu\, \theta_t + (1-\mu) \left(\theta_0 - \frac{s_{t+1}}{\sqrt{\alpha_{t+1}} + \epsilon}\right)
    \end{aligned}
    $$

    This is the official code's DAdaptAdaGrad for dense gradients, with $\alpha_0 = 10^{-6}$
    in every entry. Sums run over all entries of all parameters of all groups; the
    first sum in $\hat d$ and $\lVert s\rVert_1$ are kept as running totals, updated by each
    stepped tensor's change, so a tensor without a gradient keeps its last contribution.
    Weight decay is coupled ($\lambda\theta_t$ added to $g_t$). $d$, $u$, the totals and the
    step count are shared by all groups and kept in every group dict; each group uses
    its own $\eta$, and a group with $\eta = 0$ contributes nothing and does not move (the official code
    applies the first group's learning rate to all groups). A
    step in which every gradient is zero moves nothing and leaves $d$ unchanged.
    Sparse gradients (which the official code also accepts) are refused.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        momentum: $\mu$, weight of the previous iterate in the average.
        weight_decay: L2 weight decay $\lambda$, added to the gradient.
        eps: $\epsilon$, added to the denominator.
        d0: initial lower bound $d_0$.
        growth_rate: $\kappa$, largest factor by which $d$ may grow in one step.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DAdaptAdaGrad(model.parameters(), lr=1.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
        https://arxiv.org/abs/2301.07733
    """

    supports_foreach = True

    #: State kept at the parameter's precision whatever ``state_dtype`` says: the anchor of dual averaging.
    full_precision_state = ("x0",)

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.0, weight_decay: float = 0.0, eps: float = 1e-6,
                 d0: float = 1e-6, growth_rate: float = math.inf, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps, d0=d0,
                                   growth_rate=growth_rate, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, d=d0, gsq_weighted=0.0, sksq_weighted=0.0, skl1=0.0, k=0)
        check_positive(d0, "d0")
        check_growth_rate(growth_rate)
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["alphak"] = self.zeros_like(p, group).fill_(1e-6)
        state["sk"] = self.zeros_like(p, group)
        state["x0"] = p.detach().clone(memory_format=torch.preserve_format)  # the anchor keeps full precision

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        d, k = first["d"], first["k"]
        sq_changes, l1_changes, g_sqs = [], [], []
        for group, params, grads, states in gathered:
            if group["lr"] == 0:
                continue
            dlr = d * group["lr"]
            for p, g, state in zip(params, grads, states):
                g = l2_into_grad(g, p, group["weight_decay"])
                sq, l1, g_sq = dadapt_adagrad_statistics_(g, state["sk"], state["alphak"], dlr=dlr, eps=group["eps"])
                sq_changes.append(sq)
                l1_changes.append(l1)
                g_sqs.append(g_sq * dlr**2)
        if not l1_changes:
            return
        sksq_weighted = first["sksq_weighted"] + float(torch.stack(sq_changes).sum())
        skl1 = first["skl1"] + float(torch.stack(l1_changes).sum())
        if skl1 == 0:  # no gradient seen: nothing is learnt about the distance, and nothing moves
            return
        gsq_weighted = first["gsq_weighted"] + float(torch.stack(g_sqs).sum())
        d_hat = (sksq_weighted - gsq_weighted) / skl1
        new_d = max(d, min(d_hat, d * first["growth_rate"]))
        for group in self.param_groups:
            group.update(d=new_d, gsq_weighted=gsq_weighted, sksq_weighted=sksq_weighted, skl1=skl1, d_hat=d_hat,
                         k=k + 1)
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move and group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        dadapt_adagrad_step_(p, state["sk"], state["alphak"], state["x0"], momentum=group["momentum"], eps=group["eps"])


register(OptimizerEntry(
    name="DAdaptAdaGrad",
    cls=DAdaptAdaGrad,
    canon_id="d-adaptation-adagrad",
    family="parameter-free",
    aliases=("D-Adapt AdaGrad", "D-Adaptation AdaGrad"),
    recipe={"lr": 1.0},
    capabilities=Capabilities(elementwise=False),
    variants={"momentum": {"momentum": 0.9}, "weight_decay": {"weight_decay": 0.001}},
    skips={"param_groups": "d is estimated from the gradients of all groups together, so one DAdaptAdaGrad over two "
                           "groups is not two over one group each (the official code does the same)"},
    errors=invalid("lr", "momentum", "eps", "weight_decay") + (
        ErrorInput({"d0": 0.0}, "d0"),
        ErrorInput({"growth_rate": 0.5}, "growth_rate"),
    ),
    parity=(
        # dadaptation reads the lr of the first group only: the matrix uses one lr.
        # Its weight decay adds to p.grad in place; we compare weights only, which that does not change.
        Parity("dadaptation", "dadaptation:DAdaptAdaGrad", {"lr": 1.0, "weight_decay": 0.01},
               {"lr": 1.0, "weight_decay": 0.01}),
        Parity("dadaptation", "dadaptation:DAdaptAdaGrad",
               {"lr": 0.5, "momentum": 0.9, "eps": 1e-8, "d0": 1e-3, "growth_rate": 1.1},
               {"lr": 0.5, "momentum": 0.9, "eps": 1e-8, "d0": 1e-3, "growth_rate": 1.1}),
    ),
))
