"""Fira: GaLore plus the scaled residual of the gradient outside the subspace (Chen et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import ema_, ema_sq_
from .galore import adamw_hf_step_, check_low_rank_groups, project, project_back, projection_side, svd_basis

PROJ_TYPES = ("std", "reverse_std", "left", "right")


def fira_update(param: torch.Tensor, grad: torch.Tensor, state: dict, *, rank: int | None, update_proj_gap: int,
                alpha: float, proj_type: str, gamma: float, lr: float, beta1: float, beta2: float, eps: float,
                weight_decay: float, correct_bias: bool) -> None:
    """One Fira step for one tensor, in place; matrices of a group with a rank are projected, others take AdamW.

    P from the gradient's SVD at steps 1, T + 1, ...;  R = P^T G;  AdamW's moments and psi = m / (sqrt(v) + eps);
    phi = ||psi|| / (||R|| + 1e-8) per column (left projection) or row (right);
    S = (G - alpha P R) phi, limited to gamma times the last residual update's norm;
    theta <- theta - step_size (alpha P psi + S), then theta <- (1 - lr wd) theta.
    """
    step = state["step"]
    if rank is None or param.ndim != 2:
        adamw_hf_step_(param, lambda d: d, grad, state["exp_avg"], state["exp_avg_sq"], step=step, lr=lr, beta1=beta1,
                       beta2=beta2, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        return
    side = projection_side(param.shape, proj_type)
    if (step - 1) % update_proj_gap == 0:
        state["projector"] = svd_basis(grad, rank, side)[0].to(state["exp_avg"].dtype)
    basis = (state["projector"].to(grad.dtype),)
    low = project(grad, basis, side)
    ema_(state["exp_avg"], low, beta1)
    ema_sq_(state["exp_avg_sq"], low, beta2)
    direction = (state["exp_avg"] / state["exp_avg_sq"].sqrt().add_(eps)).to(grad.dtype)
    dim = 0 if side == "left" else 1  # one factor per column of G (left projection) or per row (right)
    factor = torch.linalg.vector_norm(direction, dim=dim, keepdim=True) / (
        torch.linalg.vector_norm(low, dim=dim, keepdim=True) + 1e-8)
    residual = (grad - project_back(low, basis, side).mul_(alpha)).mul_(factor)
    norm = torch.linalg.vector_norm(residual)
    if "last_norm" in state:  # the norm-growth limiter
        limiter = torch.clamp(norm / (state["last_norm"] + 1e-8), min=gamma) / gamma
        residual.div_(limiter)
        norm = norm / limiter
    state["last_norm"] = norm
    update = project_back(direction, basis, side).mul_(alpha).add_(residual)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step) if correct_bias else lr
    param.add_(update, alpha=-step_size)
    param.mul_(1 - lr * weight_decay)


class Fira(ZijOptimizer):
    r"""Fira: GaLore's low-rank AdamW plus the residual outside the subspace, scaled like Adam would.

    Like GaLore, Fira keeps AdamW's moments only for the projection $R_t = P_t^\top G_t$ of
    each weight gradient onto its top-$r$ singular subspace (refreshed by SVD every $T$
    steps). It adds back what GaLore drops: the residual $G_t - \alpha P_t R_t$, scaled per
    channel by the ratio $\phi$ of the norms of Adam's direction and of the projected
    gradient. A norm-growth limiter keeps the residual update's norm from growing by more
    than $\gamma$ per step. The update is thus full-rank with GaLore's memory: for an
    $m \times n$ matrix ($m < n$, shown) $2rn$ moments, an $m \times r$ basis and one norm.
    With ``proj_type="std"`` the smaller side is projected; a tall matrix is projected from
    the right and scaled per row. Only 2-D parameters in groups with a ``rank`` are
    projected; a group with ``rank=None`` and every tensor that is not a matrix take the
    official code's plain AdamW step ($\epsilon$ before the bias correction, decoupled decay
    after the step).

    $$
    \begin{aligned}
    R_t &= P_t^{\top} G_t \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, R_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, R_t \odot R_t, \qquad \psi_t = \frac{m_t}{\sqrt{v_t} + \epsilon} \\
    \phi_j &= \frac{\lVert \psi_t[:, j]\rVert_2}{\lVert R_t[:, j]\rVert_2 + 10^{-8}}, \qquad S_t = (G_t - \alpha P_t R_t) \operatorname{diag}(\phi) \\
    S_t &\leftarrow \frac{S_t}{\max\!\left(1,\ \lVert S_t \rVert / \big(\gamma\, (n_{t-1} + 10^{-8})\big)\right)}, \qquad n_t = \lVert S_t \rVert \\
    \theta'_t &= \theta_{t-1} - \eta\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}} \left( \alpha P_t\, \psi_t + S_t \right) \\
    \theta_t &= (1 - \eta\lambda)\, \theta'_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups (a group may set its own ``rank``, or ``None``).
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the low-rank moments.
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: decoupled weight decay $\lambda$, applied after the step.
        rank: rank $r$ of the projection (``None``: no projection, plain AdamW).
        update_proj_gap: $T$, steps between SVD refreshes of the projection.
        alpha: $\alpha$, scale of the projected-back update (and of the part removed from the residual).
        proj_type: ``"std"`` (project the smaller side), ``"reverse_std"``, ``"left"`` or ``"right"``.
        gamma: $\gamma$, the largest growth factor of the residual update's norm per step.
        correct_bias: use Adam's bias correction (the factor $\sqrt{1-\beta_2^t}/(1-\beta_1^t)$).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(16, 8)
        >>> opt = zij.Fira(model.parameters(), lr=1e-3, rank=4)
        >>> model(torch.randn(8, 16)).square().mean().backward()
        >>> opt.step()
        >>> state = opt.state[model.weight]
        >>> tuple(state["exp_avg"].shape)  # 4 x 16 moments for an 8 x 16 weight
        (4, 16)

    References:
        Chen et al., "Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank Constraint?", NeurIPS 2025.
        https://arxiv.org/abs/2410.01623
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0, *,
                 rank: int | None = 8, update_proj_gap: int = 200, alpha: float = 1.0, proj_type: str = "std",
                 gamma: float = 1.01, correct_bias: bool = True, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma >= 1):
            raise ValueError(f"Invalid gamma: {gamma!r} (expected a finite number >= 1)")
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
                                   update_proj_gap=update_proj_gap, alpha=alpha, proj_type=proj_type, gamma=gamma,
                                   correct_bias=correct_bias, maximize=maximize, state_dtype=state_dtype)
        super().__init__(params, defaults)
        check_low_rank_groups(self.param_groups, proj_type=PROJ_TYPES)
        for group in self.param_groups:
            check_nonnegative(group["alpha"], "alpha")

    def init_state(self, p, state, group):
        state["step"] = 0
        shape = p.shape
        if group["rank"] is not None and p.ndim == 2:
            m, n = p.shape
            r = min(group["rank"], m, n)
            shape = (r, n) if projection_side(p.shape, group["proj_type"]) == "left" else (m, r)
        dtype = group.get("state_dtype") or p.dtype
        state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=p.device)
        state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        fira_update(p, grad, state, rank=group["rank"], update_proj_gap=group["update_proj_gap"], alpha=group["alpha"],
                    proj_type=group["proj_type"], gamma=group["gamma"], lr=group["lr"], beta1=beta1, beta2=beta2,
                    eps=group["eps"], weight_decay=group["weight_decay"], correct_bias=group["correct_bias"])


register(OptimizerEntry(
    name="Fira",
    cls=Fira,
    canon_id="fira",
    family="low-rank",
    aliases=("FiraAdamW",),
    recipe={"lr": 0.05, "rank": 2, "update_proj_gap": 10},
    # a rank-1 subspace of the 1 x 2 Rosenbrock parameter (right projection) must follow the gradient
    recipes={"rosenbrock": {"lr": 0.01, "update_proj_gap": 1}},
    errors=(*invalid("lr", "betas", "eps", "weight_decay"), ErrorInput({"rank": 0}, "rank"),
            ErrorInput({"update_proj_gap": 0}, "update_proj_gap"), ErrorInput({"alpha": -1.0}, "alpha"),
            ErrorInput({"proj_type": "full"}, "proj_type"), ErrorInput({"gamma": 0.5}, "gamma")),
    variants={"right": {"proj_type": "right"}, "alpha": {"alpha": 0.25}},
    # Parity with fira (the official package) needs groups with and without a rank: tests/optim/test_fira.py.
))
