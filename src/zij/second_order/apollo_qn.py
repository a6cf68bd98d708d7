"""Apollo (the quasi-Newton method): a diagonal Hessian corrected by a weak secant condition (Ma, 2020)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_lr, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import per_tensor

REBOUNDS = ("constant", "belief")
DECAYS = ("L2", "decoupled", "stable")
#: The constant rebound r: the floor of the rectified diagonal.
CONSTANT_REBOUND = 0.01


def _norm(x, ord: float):
    """The ``ord``-norm of all entries of a tensor (0-dim), or of each tensor of a TensorList."""
    if isinstance(x, TensorList):
        return TensorList(torch._foreach_norm(x.tensors, ord))
    return torch.linalg.vector_norm(x, ord=ord)


def _rectify(hessian, floor):
    """max(|B|, floor) as a new tensor; ``floor`` is a number or, per tensor, a 0-dim tensor."""
    denom = hessian.abs()
    if isinstance(denom, TensorList):
        return denom.clamp_min_(floor)
    return denom.clamp_(min=floor)


def apollo_update(param, grad, exp_avg_grad, approx_hessian, update, *, step: int, lr_t: float, beta: float,
                  eps: float, rebound: str, weight_decay: float, weight_decay_type: str) -> None:
    """One Apollo step for one tensor (or a TensorList of them), in place (``update`` holds the previous
    direction d). The norms, sums and ``delta`` are per tensor.

    g <- g + wd theta (L2);  alpha = (1 - b) / (1 - b^t);  D = g - m;  m <- m + alpha D;
    c = ||d||_4 + eps';  d_hat = d / c;  v = d_hat^2;  delta = -(alpha / c) sum(D d_hat) - sum(B v);  B <- B + delta v;
    den = max(|B|, r) (constant, eps' = eps / r) or max(|B|, ||D||_inf) + eps / alpha (belief, eps' = eps);
    d = m / den (+ wd theta, or wd theta / mean(den) for stable, when decay is not L2);  theta <- theta - lr_t d.
    """
    if weight_decay != 0 and weight_decay_type == "L2":
        grad = grad.add(param, alpha=weight_decay)
    alpha = (1 - beta) / (1 - beta**step)
    delta_grad = grad - exp_avg_grad
    floor = _norm(delta_grad, float("inf")) if rebound == "belief" else CONSTANT_REBOUND
    exp_avg_grad.add_(delta_grad, alpha=alpha)
    eps_prime = eps if rebound == "belief" else eps / CONSTANT_REBOUND
    scale = _norm(update, 4).add_(eps_prime)
    update.div_(scale)
    v_sq = update * update
    correction = delta_grad.div_(scale).mul_(update).sum().mul(-alpha) - (approx_hessian * v_sq).sum()
    approx_hessian.addcmul_(v_sq, correction)
    denom = _rectify(approx_hessian, floor)
    if rebound == "belief":
        denom.add_(eps / alpha)
    update.copy_(exp_avg_grad / denom)
    if weight_decay != 0 and weight_decay_type == "stable":  # lambda / mean(D), one number per tensor
        per_tensor(lambda u, p, d: u.add_(p, alpha=weight_decay / d.mean().item()), update, param, denom)
    elif weight_decay != 0 and weight_decay_type == "decoupled":
        update.add_(param, alpha=weight_decay)
    param.add_(update, alpha=-lr_t)


class ApolloDQN(ZijOptimizer):
    r"""Apollo: a parameter-wise diagonal quasi-Newton method, rectified so its step stays a descent direction.

    A diagonal approximation $B_t$ of the Hessian is corrected every step by the smallest
    change (one scalar per tensor) that satisfies a weak secant condition, summed over the
    tensor, built from the change of a bias-corrected gradient average along the previous
    direction. The step divides that average by $\lvert B_t\rvert$ floored at a constant
    (rectification), so it needs only Adam's memory and time. The learning rate warms up
    linearly from $\eta_0$ over $w$ steps.

    $$
    \begin{aligned}
    \alpha_t &= \frac{1-\beta}{1-\beta^{t}}, \qquad \Delta_t = g_t - m_{t-1}, \qquad m_t = m_{t-1} + \alpha_t \Delta_t \\
    c_t &= \lVert d_{t-1}\rVert_4 + \epsilon', \qquad \hat d = d_{t-1} / c_t, \qquad v = \hat d \odot \hat d \\
    \delta_t &= -\frac{\alpha_t}{c_t} \textstyle\sum \left(\Delta_t \odot \hat d\right) - \sum \left(B_{t-1} \odot v\right), \qquad B_t = B_{t-1} + \delta_t\, v \\
    D_t &= \max\!\left(\lvert B_t\rvert,\ r\right) \\
    d_t &= m_t \oslash D_t \\
    \theta_t &= \theta_{t-1} - \eta_t\, d_t, \qquad \eta_t = \eta_0 + (\eta - \eta_0) \min\!\left(\tfrac{t-1}{w}, 1\right)
    \end{aligned}
    $$

    The rule shown is the default (constant rebound $r = 0.01$, $\epsilon' = \epsilon / r$, L2
    weight decay: $g_t$ includes $\lambda\theta_{t-1}$). With ``rebound="belief"`` the floor is
    $\lVert \Delta_t\rVert_\infty$ plus $\epsilon / \alpha_t$ after the maximum and
    $\epsilon' = \epsilon$, and the default decay becomes decoupled: $\lambda\theta_{t-1}$ is added
    to $d_t$ (and stored with it); ``"stable"`` divides $\lambda$ by the mean of $D_t$.
    ``warmup=0`` uses $\eta$ from the first step. Named ``ApolloDQN`` (as in pytorch_optimizer)
    to keep it apart from APOLLO, the unrelated memory-efficient optimizer.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: peak learning rate $\eta$, reached after the warm-up.
        beta: $\beta$, decay of the gradient average.
        eps: $\epsilon$, stability constant.
        rebound: ``"constant"`` or ``"belief"``, the rectification floor.
        warmup: $w$, steps of linear warm-up.
        init_lr: $\eta_0$, the learning rate at step 1 (``None``: $\eta / 1000$).
        weight_decay: $\lambda$.
        weight_decay_type: ``"L2"``, ``"decoupled"`` or ``"stable"`` (``None``: L2 with the constant rebound,
            decoupled with belief).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ApolloDQN(model.parameters(), lr=0.01, warmup=100)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ma, "Apollo: An Adaptive Parameter-wise Diagonal Quasi-Newton Method for Nonconvex Stochastic
        Optimization", arXiv 2020. https://arxiv.org/abs/2009.13586
    """

    state_names = ("exp_avg_grad", "approx_hessian", "update")
    supports_foreach = True

    def __init__(self, params, lr: float = 0.01, beta: float = 0.9, eps: float = 1e-4, rebound: str = "constant",
                 warmup: int = 500, init_lr: float | None = None, weight_decay: float = 0,
                 weight_decay_type: str | None = None, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        if rebound not in REBOUNDS:
            raise ValueError(f"Invalid rebound: {rebound!r} (expected one of {REBOUNDS})")
        if weight_decay_type is None:
            weight_decay_type = "L2" if rebound == "constant" else "decoupled"
        if weight_decay_type not in DECAYS:
            raise ValueError(f"Invalid weight_decay_type: {weight_decay_type!r} (expected one of {DECAYS})")
        check_unit(beta, "beta")
        check_int(warmup, "warmup", minimum=0)
        if init_lr is None:
            check_lr(lr)
            init_lr = lr / 1000
        check_lr(init_lr, "init_lr")
        super().__init__(params, hyperparameters(lr=lr, beta=beta, eps=eps, rebound=rebound, warmup=warmup,
                                                 init_lr=init_lr, weight_decay=weight_decay,
                                                 weight_decay_type=weight_decay_type, maximize=maximize,
                                                 foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        t, warmup = state["step"], group["warmup"]
        lr_t = group["lr"] if t - 1 >= warmup else group["init_lr"] + (group["lr"] - group["init_lr"]) * (t - 1) / warmup
        apollo_update(p, grad, state["exp_avg_grad"], state["approx_hessian"], state["update"], step=t, lr_t=lr_t,
                      beta=group["beta"], eps=group["eps"], rebound=group["rebound"],
                      weight_decay=group["weight_decay"], weight_decay_type=group["weight_decay_type"])


register(OptimizerEntry(
    name="ApolloDQN",
    cls=ApolloDQN,
    canon_id="apollo-quasi-newton",
    family="curvature",
    recipe={"lr": 1e-3, "warmup": 0},
    recipes={"rosenbrock": {"lr": 1e-4}},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"beta": 1.0}, "beta"),
        ErrorInput({"rebound": "linear"}, "rebound"),
        ErrorInput({"warmup": -1}, "warmup"),
        ErrorInput({"init_lr": -1.0}, "init_lr"),
        ErrorInput({"weight_decay_type": "l1"}, "weight_decay_type"),
    ),
    variants={"belief": {"rebound": "belief", "lr": 1e-3}},
    parity=(
        # pytorch_optimizer's ApolloDQN warms up with t / w where the official code (and zij) uses
        # (t - 1) / w: compared with warmup 0 (the peak rate from the start). Its default decay is
        # L2 for both rebounds, so weight_decay_type is given explicitly.
        Parity("pytorch-optimizer", "pytorch_optimizer:ApolloDQN",
               {"lr": 0.01, "warmup": 0, "weight_decay": 1e-3, "weight_decay_type": "L2"},
               {"lr": 0.01, "warmup_steps": 0, "weight_decay": 1e-3, "weight_decay_type": "l2", "foreach": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:ApolloDQN",
               {"lr": 0.01, "warmup": 0, "rebound": "belief", "weight_decay": 1e-3, "weight_decay_type": "stable"},
               {"lr": 0.01, "warmup_steps": 0, "rebound": "belief", "weight_decay": 1e-3,
                "weight_decay_type": "stable", "foreach": False}),
    ),
))
