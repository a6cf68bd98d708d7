"""GaLore-AdamW: AdamW's moments kept in a low-rank gradient subspace (Zhao et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import ema_, ema_sq_

#: Which side(s) of an m x n gradient the projection acts on.
PROJ_TYPES = ("std", "reverse_std", "left", "right", "full")


def check_low_rank_groups(groups: list[dict], **choices: tuple[str, ...]) -> None:
    """Check the low-rank options every group carries: ``rank`` (None or >= 1), ``update_proj_gap``
    (>= 1), and each option in ``choices`` against its allowed values (GaLore, Fira, APOLLO)."""
    for group in groups:
        if group["rank"] is not None:
            check_int(group["rank"], "rank")
        check_int(group["update_proj_gap"], "update_proj_gap")
        for name, allowed in choices.items():
            if group[name] not in allowed:
                raise ValueError(f"Invalid {name}: {group[name]!r} (expected one of {', '.join(allowed)})")


def projection_side(shape: torch.Size, proj_type: str) -> str:
    """``left`` (P^T G, P of shape m x r), ``right`` (G Q^T, Q of shape r x n) or ``full`` (both).

    ``std`` projects the smaller dimension: from the left when m < n, from the right otherwise;
    ``reverse_std`` does the opposite (as in the official code).
    """
    m, n = shape
    if proj_type == "std":
        return "right" if m >= n else "left"
    if proj_type == "reverse_std":
        return "left" if m >= n else "right"
    return proj_type


def svd_basis(grad: torch.Tensor, rank: int, side: str) -> tuple[torch.Tensor, ...]:
    """The top-``rank`` singular vectors of ``grad``: U_r (m x r) for ``left``, V_r^T (r x n) for ``right``.

    The SVD runs in float32 for half-precision gradients and in their own precision otherwise;
    the basis is returned in ``grad``'s dtype.
    """
    work = grad if grad.dtype in (torch.float32, torch.float64) else grad.float()
    u, _, vh = torch.linalg.svd(work, full_matrices=False)
    left, right = u[:, :rank].to(grad.dtype), vh[:rank, :].to(grad.dtype)
    return {"left": (left,), "right": (right,), "full": (left, right)}[side]


def project(grad: torch.Tensor, basis: tuple[torch.Tensor, ...], side: str) -> torch.Tensor:
    """The low-rank gradient: P^T G, G Q^T, or P^T G Q^T."""
    if side == "left":
        return basis[0].mT @ grad
    if side == "right":
        return grad @ basis[0].mT
    return basis[0].mT @ grad @ basis[1].mT


def project_back(low: torch.Tensor, basis: tuple[torch.Tensor, ...], side: str) -> torch.Tensor:
    """The full-size update: P N, N Q, or P N Q."""
    if side == "left":
        return basis[0] @ low
    if side == "right":
        return low @ basis[0]
    return basis[0] @ low @ basis[1]


def adamw_hf_step_(param, update_of, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float,
                   eps: float, weight_decay: float, correct_bias: bool) -> None:
    """AdamW as in the official code (Hugging Face's): eps outside the bias correction, decay after the step.

    ``update_of`` maps the direction m / (sqrt(v) + eps) (low-rank for a projected matrix) to the full-size update.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step) if correct_bias else lr
    direction = exp_avg / exp_avg_sq.sqrt().add_(eps)
    param.add_(update_of(direction), alpha=-step_size)
    param.mul_(1 - lr * weight_decay)


def galore_adamw_update(param: torch.Tensor, grad: torch.Tensor, state: dict, *, rank: int | None,
                        update_proj_gap: int, scale: float, proj_type: str, lr: float, beta1: float, beta2: float,
                        eps: float, weight_decay: float, correct_bias: bool) -> None:
    """One GaLore-AdamW step for one tensor, in place; matrices of a group with a rank are projected.

    At steps 1, T + 1, 2T + 1, ... the basis is refreshed from the gradient's SVD (the moments are kept);
    R = project(G);  AdamW's moments and direction N on R;  theta <- theta - step_size * scale * back(N),
    then theta <- (1 - lr wd) theta.
    """
    step = state["step"]
    if rank is None or param.ndim != 2:
        adamw_hf_step_(param, lambda d: d, grad, state["exp_avg"], state["exp_avg_sq"], step=step, lr=lr, beta1=beta1,
                       beta2=beta2, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        return
    side = projection_side(param.shape, proj_type)
    names = ("projector_left", "projector_right") if side == "full" else ("projector",)
    if (step - 1) % update_proj_gap == 0:
        for name, basis in zip(names, svd_basis(grad, rank, side)):
            state[name] = basis.to(state["exp_avg"].dtype)
    basis = tuple(state[name].to(grad.dtype) for name in names)
    adamw_hf_step_(param, lambda d: project_back(d.to(grad.dtype), basis, side).mul_(scale), project(grad, basis, side),
                   state["exp_avg"], state["exp_avg_sq"], step=step, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                   weight_decay=weight_decay, correct_bias=correct_bias)


class GaLoreAdamW(ZijOptimizer):
    r"""GaLore-AdamW: AdamW whose moments live in a low-rank subspace of each weight gradient.

    Every $T$ steps the top-$r$ singular vectors of a matrix's gradient become its
    projection $P$; in between the gradient is projected onto that subspace, AdamW's
    moments and direction are computed there, and the direction is projected back
    and scaled by $\alpha$. A weight matrix of shape $m \times n$ ($m \le n$) keeps
    $2rn + mr$ state values instead of $2mn$. With ``proj_type="std"`` the smaller side is
    projected: from the left when $m < n$ (shown), from the right ($G Q^\top$ with the top
    right singular vectors) otherwise. Only 2-D parameters are projected, and only in
    groups with a ``rank``: a group with ``rank=None``, and every tensor that is not a
    matrix (biases, norms, convolution kernels), takes the plain AdamW step of the same
    code. As in the official code, $\epsilon$ is added before the bias correction and
    decoupled weight decay is applied after the step; the moments are kept when the
    subspace changes.

    $$
    \begin{aligned}
    P_t &= \begin{cases} U_r(g_t) & \text{if } (t-1) \bmod T = 0 \\ P_{t-1} & \text{otherwise} \end{cases} \\
    R_t &= P_t^{\top} g_t \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, R_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, R_t^{2} \\
    N_t &= \frac{m_t}{\sqrt{v_t} + \epsilon} \\
    \theta'_t &= \theta_{t-1} - \eta\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, \alpha\, P_t N_t \\
    \theta_t &= (1 - \eta\lambda)\, \theta'_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups (a group may set its own ``rank``, or ``None``).
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the moments.
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: decoupled weight decay $\lambda$, applied after the step.
        rank: rank $r$ of the projection (``None``: no projection, plain AdamW).
        update_proj_gap: $T$, steps between refreshes of the projection.
        scale: $\alpha$, scale of the projected-back update.
        proj_type: ``"std"`` (project the smaller side), ``"reverse_std"``, ``"left"``, ``"right"`` or ``"full"`` (both sides).
        correct_bias: use Adam's bias correction (the factor $\sqrt{1-\beta_2^t}/(1-\beta_1^t)$).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(16, 8)
        >>> opt = zij.GaLoreAdamW(model.parameters(), lr=1e-3, rank=4, update_proj_gap=200, scale=0.25)
        >>> model(torch.randn(8, 16)).square().mean().backward()
        >>> opt.step()
        >>> state = opt.state[model.weight]
        >>> tuple(state["exp_avg"].shape)  # 4 x 16 moments for an 8 x 16 weight
        (4, 16)

    References:
        Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", ICML 2024.
        https://arxiv.org/abs/2403.03507
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0, *,
                 rank: int | None = 128, update_proj_gap: int = 200, scale: float = 0.25, proj_type: str = "std",
                 correct_bias: bool = True, maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
                                   update_proj_gap=update_proj_gap, scale=scale, proj_type=proj_type,
                                   correct_bias=correct_bias, maximize=maximize, state_dtype=state_dtype)
        super().__init__(params, defaults)
        check_low_rank_groups(self.param_groups, proj_type=PROJ_TYPES)
        for group in self.param_groups:
            check_nonnegative(group["scale"], "scale")

    def init_state(self, p, state, group):
        state["step"] = 0
        shape = p.shape
        if group["rank"] is not None and p.ndim == 2:
            side = projection_side(p.shape, group["proj_type"])
            m, n = p.shape
            r = min(group["rank"], m, n)
            shape = {"left": (r, n), "right": (m, r), "full": (r, r)}[side]
        dtype = group.get("state_dtype") or p.dtype
        state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=p.device)
        state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        galore_adamw_update(p, grad, state, rank=group["rank"], update_proj_gap=group["update_proj_gap"],
                            scale=group["scale"], proj_type=group["proj_type"], lr=group["lr"], beta1=beta1,
                            beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                            correct_bias=group["correct_bias"])


register(OptimizerEntry(
    name="GaLoreAdamW",
    cls=GaLoreAdamW,
    canon_id="galore",
    family="low-rank",
    aliases=("GaLore",),
    recipe={"lr": 0.05, "rank": 2, "update_proj_gap": 10, "scale": 1.0},
    # a rank-1 subspace of the 1 x 2 Rosenbrock parameter (right and full projections) must follow the gradient
    recipes={"rosenbrock": {"lr": 0.01, "update_proj_gap": 1}},
    errors=(*invalid("lr", "betas", "eps", "weight_decay"), ErrorInput({"rank": 0}, "rank"),
            ErrorInput({"update_proj_gap": 0}, "update_proj_gap"), ErrorInput({"scale": -1.0}, "scale"),
            ErrorInput({"proj_type": "diagonal"}, "proj_type")),
    variants={"right": {"proj_type": "right"}, "full": {"proj_type": "full"}, "reverse_std": {"proj_type": "reverse_std"}},
    # Parity with galore-torch needs groups with and without a rank (its rank applies to every
    # tensor of a group): tests/optim/test_galore.py.
))
