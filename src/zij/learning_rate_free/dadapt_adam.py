"""D-Adaptation Adam: Adam whose step size is a growing lower bound on the distance to a solution (Defazio and Mishchenko, 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, l2_into_grad
from ._common import check_growth_rate


def dadapt_adam_statistics_(grad, s, exp_avg, exp_avg_sq, *, dlr: float, beta1: float, beta2: float,
                            eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Update the moments and s of one tensor in place; return its terms of the estimate.

    Returns (dlr <g, s / (sqrt(v) + eps)>, with s and v before this step, and ||s||_1 after
    m <- b1 m + (1 - b1) dlr g,  v <- b2 v + (1 - b2) g^2,  s <- sqrt(b2) s + (1 - sqrt(b2)) dlr g).
    """
    root = beta2**0.5
    dot = torch.dot(grad.flatten(), (s / exp_avg_sq.sqrt().add_(eps)).flatten().to(grad.dtype)) * dlr
    exp_avg.mul_(beta1).add_(grad, alpha=dlr * (1 - beta1))
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    s.mul_(root).add_(grad, alpha=dlr * (1 - root))
    return dot, s.abs().sum()


def dadapt_adam_step_(param, exp_avg, exp_avg_sq, *, dlr: float, eps: float, weight_decay: float) -> None:
    """theta <- (1 - dlr wd) theta - m / (sqrt(v) + eps): m already carries the step size dlr."""
    denom = exp_avg_sq.sqrt().add_(eps)
    if weight_decay != 0:
        decoupled_decay_(param, dlr, weight_decay)
    param.addcdiv_(exp_avg, denom, value=-1)


class DAdaptAdam(ZijOptimizer):
    r"""D-Adaptation Adam: Adam scaled by a never-decreasing lower bound $d$ on the distance to a solution.

    The step size $\delta_t = \eta\, d_t\, \rho_t$ enters the first moment; $d$ is raised
    whenever the weighted sum $r$ of the correlations $\langle g, s / (\sqrt{v} + \epsilon)\rangle$
    shows that the iterates must travel further than $d$, and it never decreases.

    $$
    \begin{aligned}
    \delta_t &= \eta\, d_t\, \rho_t \\
    a_t &= \delta_t \left\langle g_t,\ \frac{s_t}{\sqrt{v_t} + \epsilon} \right\rangle \\
    m_{t+1} &= \beta_1 m_t + (1-\beta_1)\, \delta_t\, g_t \\
    v_{t+1} &= \beta_2 v_t + (1-\beta_2)\, g_t^{2} \\
    s_{t+1} &= \sqrt{\beta_2}\, s_t + (1-\sqrt{\beta_2})\, \delta_t\, g_t \\
    r_{t+1} &= \sqrt{\beta_2}\, r_t + (1-\sqrt{\beta_2})\, a_t \\
    \hat d_{t+1} &= \frac{r_{t+1}}{(1-\sqrt{\beta_2})\, \lVert s_{t+1}\rVert_1}, \qquad d_{t+1} = \max\bigl(d_t,\ \min(\hat d_{t+1},\ \kappa\, d_t)\bigr) \\
    \theta_{t+1} &= (1 - \delta_t \lambda)\, \theta_t - \frac{m_{t+1}}{\sqrt{v_{t+1}} + \epsilon}
    \end{aligned}
    $$

    This is the official code's DAdaptAdam: $\rho_t = \sqrt{1-\beta_2^{t+1}} / (1-\beta_1^{t+1})$
    with ``use_bias_correction`` (else 1); inner products and norms run over all
    parameters of all groups. Weight decay is coupled by default (``decouple=False``:
    $\lambda\theta_t$ is added to $g_t$ before everything else and the decay factor in the
    last line is 1), decoupled as shown with ``decouple=True``. $d$, $r$ and the step count
    are shared by all groups and kept in every group dict; each group uses its own
    $\eta$, and a group with $\eta = 0$ contributes nothing and does not move (the official code accepts only one
    learning rate, or 0, across groups). A step in
    which every gradient is zero moves nothing and leaves $d$ and $r$ unchanged.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        eps: $\epsilon$, added to the denominator.
        weight_decay: weight decay $\lambda$.
        decouple: AdamW-style decoupled decay (else L2 added to the gradient).
        use_bias_correction: multiply the step by Adam's bias correction $\rho_t$.
        d0: initial lower bound $d_0$.
        growth_rate: $\kappa$, largest factor by which $d$ may grow in one step.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DAdaptAdam(model.parameters(), lr=1.0, weight_decay=0.01, decouple=True)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
        https://arxiv.org/abs/2301.07733
    """

    state_names = ("s", "exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decouple: bool = False, use_bias_correction: bool = False, d0: float = 1e-6,
                 growth_rate: float = math.inf, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decouple=decouple,
                                   use_bias_correction=use_bias_correction, d0=d0, growth_rate=growth_rate,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype,
                                   d=d0, numerator_weighted=0.0, k=0)
        check_positive(d0, "d0")
        check_growth_rate(growth_rate)
        super().__init__(params, defaults)

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        beta1, beta2 = first["betas"]
        root = beta2**0.5
        d, k = first["d"], first["k"]
        rho = (1 - beta2 ** (k + 1)) ** 0.5 / (1 - beta1 ** (k + 1)) if first["use_bias_correction"] else 1.0
        dots, norms = [], []
        for group, params, grads, states in gathered:
            if group["lr"] == 0:
                continue
            dlr = d * group["lr"] * rho
            for p, g, state in zip(params, grads, states):
                if not group["decouple"]:
                    g = l2_into_grad(g, p, group["weight_decay"])
                dot, l1 = dadapt_adam_statistics_(g, state["s"], state["exp_avg"], state["exp_avg_sq"], dlr=dlr,
                                                  beta1=beta1, beta2=beta2, eps=group["eps"])
                dots.append(dot)
                norms.append(l1)
        s_l1 = float(torch.stack(norms).sum()) if norms else 0.0
        if s_l1 == 0:  # no gradient seen: nothing is learnt about the distance, and nothing moves
            return
        numerator = root * first["numerator_weighted"] + (1 - root) * float(torch.stack(dots).sum())
        d_hat = numerator / ((1 - root) * s_l1)
        new_d = max(d, min(d_hat, d * first["growth_rate"]))
        for group in self.param_groups:
            group.update(d=new_d, numerator_weighted=numerator, d_hat=d_hat, k=k + 1, dlr=d * group["lr"] * rho)
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move and group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        dadapt_adam_step_(p, state["exp_avg"], state["exp_avg_sq"], dlr=group["dlr"], eps=group["eps"],
                          weight_decay=group["weight_decay"] if group["decouple"] else 0.0)


register(OptimizerEntry(
    name="DAdaptAdam",
    cls=DAdaptAdam,
    canon_id="d-adaptation-adam",
    family="parameter-free",
    aliases=("D-Adapt Adam", "D-Adaptation Adam"),
    recipe={"lr": 1.0},
    capabilities=Capabilities(elementwise=False),
    variants={
        "bias_correction": {"use_bias_correction": True},
        "decoupled": {"weight_decay": 0.001, "decouple": True},
    },
    skips={"param_groups": "d is estimated from the gradients of all groups together, so one DAdaptAdam over two "
                           "groups is not two over one group each (the official code does the same)"},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"d0": 0.0}, "d0"),
        ErrorInput({"growth_rate": 0.5}, "growth_rate"),
    ),
    parity=(
        # dadaptation takes the largest lr of all groups and refuses different ones: the matrix uses one lr.
        # Its coupled decay adds to p.grad in place; we compare weights only, which that does not change.
        Parity("dadaptation", "dadaptation:DAdaptAdam", {"lr": 1.0, "weight_decay": 0.01},
               {"lr": 1.0, "weight_decay": 0.01}),
        Parity("dadaptation", "dadaptation:DAdaptAdam",
               {"lr": 0.5, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "decouple": True,
                "use_bias_correction": True, "d0": 1e-4, "growth_rate": 1.2},
               {"lr": 0.5, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "decouple": True,
                "use_bias_correction": True, "d0": 1e-4, "growth_rate": 1.2}),
    ),
))
