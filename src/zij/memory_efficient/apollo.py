"""APOLLO and APOLLO-Mini: AdamW's per-channel scaling estimated in a random low-rank space (Zhu et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import ema_, ema_sq_
from .galore import adamw_hf_step_, check_low_rank_groups

SCALE_TYPES = ("channel", "tensor")
#: Fira's norm-growth limit: the update's norm may grow by at most this factor per step.
GROWTH_LIMIT = 1.01


def next_seed(seed: int) -> int:
    """The seed of the next projection: the 15th 63-bit integer drawn from a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return int(torch.randint(0, torch.iinfo(torch.int64).max, (15,), generator=generator)[-1])


def random_projection(shape: tuple[int, int], rank: int, seed: int) -> torch.Tensor:
    """A float32 Gaussian matrix of ``shape`` with entries of variance 1/rank, drawn on the CPU from ``seed``
    (so every device gets the same matrix)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=torch.float32) / math.sqrt(rank)


def norm_growth_limit_(update: torch.Tensor, state: dict, key: str = "last_norm") -> torch.Tensor:
    """Fira's limiter in place: scale ``update`` so its norm is at most 1.01 times the last one (none at first)."""
    norm = torch.linalg.vector_norm(update)
    if key in state:
        limiter = torch.clamp(norm / (state[key] + 1e-8), min=GROWTH_LIMIT) / GROWTH_LIMIT
        update.div_(limiter)
        norm = norm / limiter
    state[key] = norm
    return update


def apollo_update(param: torch.Tensor, grad: torch.Tensor, state: dict, *, rank: int | None, update_proj_gap: int,
                  scale: float, scale_type: str, scale_front: bool, disable_nl: bool, lr: float, beta1: float,
                  beta2: float, eps: float, weight_decay: float, correct_bias: bool) -> None:
    """One APOLLO step for one tensor, in place; matrices of a group with a rank are scaled, others take AdamW.

    R = P G (m < n: P is r x m, scaling per column) or G P (scaling per row), P Gaussian from a seed
    that advances every T steps;  AdamW's moments on R, N = m / (sqrt(v) + eps);
    s = ||N|| / (||R|| + 1e-8) per channel (or for the whole tensor);  S = G s, limited to 1.01 times
    the last update's norm;  theta <- theta - step_size sqrt(scale) S, then theta <- (1 - lr wd) theta.
    """
    step = state["step"]
    if rank is None or param.ndim != 2:
        adamw_hf_step_(param, lambda d: d, grad, state["exp_avg"], state["exp_avg_sq"], step=step, lr=lr, beta1=beta1,
                       beta2=beta2, eps=eps, weight_decay=weight_decay, correct_bias=correct_bias)
        return
    m, n = param.shape
    left = m < n  # project the smaller side, as the official "std" projection does
    if (step - 1) % update_proj_gap == 0:
        if step > 1:
            state["seed"] = next_seed(state["seed"])
        proj = random_projection((m, rank) if left else (rank, n), rank, state["seed"])
        state["projection"] = proj.to(grad.device, state["exp_avg"].dtype)
    proj = state["projection"].to(grad.dtype)
    low = proj.mT @ grad if left else grad @ proj.mT
    ema_(state["exp_avg"], low, beta1)
    ema_sq_(state["exp_avg_sq"], low, beta2)
    direction = state["exp_avg"] / state["exp_avg_sq"].sqrt().add_(eps)
    if scale_type == "channel":
        dim = 0 if left else 1
        factor = torch.linalg.vector_norm(direction, dim=dim, keepdim=True) / (
            torch.linalg.vector_norm(low, dim=dim, keepdim=True) + 1e-8)
    else:
        factor = torch.linalg.vector_norm(direction) / (torch.linalg.vector_norm(low) + 1e-8)
    update = grad * factor.to(grad.dtype)
    if scale_front:
        update.mul_(math.sqrt(scale))
    if not disable_nl:
        norm_growth_limit_(update, state)
    if not scale_front:
        update.mul_(math.sqrt(scale))
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step) if correct_bias else lr
    param.add_(update, alpha=-step_size)
    param.mul_(1 - lr * weight_decay)


class APOLLO(ZijOptimizer):
    r"""APOLLO: SGD-like memory, AdamW-like steps from channel scales estimated in a random subspace.

    Each weight matrix's gradient is projected by a random Gaussian matrix of rank
    $r$ (drawn from a seed that advances every $T$ steps); AdamW's moments run only
    in that small space. How much
    AdamW would rescale each channel there, the ratio of the norms of its direction
    and of the projected gradient, scales the channels of the raw full-rank gradient,
    Fira's norm-growth limiter keeps the update's norm from growing faster than
    1.01 per step, and $\sqrt{\alpha}$ rescales it. The smaller side of an $m \times n$ matrix
    is projected: for $m < n$ (shown) the moments are $r \times n$ and the scales per column;
    otherwise $m \times r$ and per row. APOLLO-Mini is ``rank=1, scale=128,
    scale_type="tensor"`` (one scale for the whole matrix; the registry's
    ``APOLLO[mini]`` case). Only 2-D parameters are scaled, and only in groups with a
    ``rank``: a group with ``rank=None``, and every tensor that is not a matrix, takes
    the plain AdamW step of the official code (eps before the bias correction, decoupled
    decay after the step). The projection is drawn on the CPU and kept on the
    parameter's device until the next draw, so every device draws the same matrices
    (the official code draws them on the parameter's device: the same on the CPU).

    $$
    \begin{aligned}
    R_t &= P_t\, G_t, \qquad (P_t)_{ij} \sim \mathcal{N}(0, 1/r), \ \text{redrawn from a new seed every } T \text{ steps} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, R_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, R_t \odot R_t \\
    N_t &= \frac{m_t}{\sqrt{v_t} + \epsilon} \\
    s_j &= \frac{\lVert N_t[:, j]\rVert_2}{\lVert R_t[:, j]\rVert_2 + 10^{-8}}, \qquad S_t = G_t \operatorname{diag}(s) \\
    S_t &\leftarrow \frac{S_t}{\max\!\left(1,\ \lVert S_t \rVert / \big(\gamma\, (n_{t-1} + 10^{-8})\big)\right)}, \qquad n_t = \lVert S_t \rVert \\
    \theta'_t &= \theta_{t-1} - \eta\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, \sqrt{\alpha}\, S_t \\
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
        rank: rank $r$ of the random projection (``None``: no projection, plain AdamW); 1 for APOLLO-Mini.
        scale: $\alpha$, whose square root multiplies the update; 128 for APOLLO-Mini.
        update_proj_gap: $T$, steps between new projections.
        scale_type: ``"channel"`` (one scale per column or row) or ``"tensor"`` (one per matrix, APOLLO-Mini).
        scale_front: apply $\sqrt{\alpha}$ before the norm-growth limiter instead of after it.
        disable_nl: turn off the norm-growth limiter.
        correct_bias: use Adam's bias correction (the factor $\sqrt{1-\beta_2^t}/(1-\beta_1^t)$).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(16, 8)
        >>> opt = zij.APOLLO(model.parameters(), lr=1e-3, rank=2, update_proj_gap=200)
        >>> mini = zij.APOLLO(model.parameters(), lr=1e-3, rank=1, scale=128, scale_type="tensor")  # APOLLO-Mini
        >>> model(torch.randn(8, 16)).square().mean().backward()
        >>> opt.step()
        >>> state = opt.state[model.weight]
        >>> tuple(state["exp_avg"].shape)  # 2 x 16 moments for an 8 x 16 weight
        (2, 16)

    References:
        Zhu et al., "APOLLO: SGD-like Memory, AdamW-level Performance", MLSys 2025.
        https://arxiv.org/abs/2412.05270
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0, *,
                 rank: int | None = 256, scale: float = 1.0, update_proj_gap: int = 200, scale_type: str = "channel",
                 scale_front: bool = False, disable_nl: bool = False, correct_bias: bool = True,
                 maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank, scale=scale,
                                   update_proj_gap=update_proj_gap, scale_type=scale_type, scale_front=scale_front,
                                   disable_nl=disable_nl, correct_bias=correct_bias, maximize=maximize,
                                   state_dtype=state_dtype)
        super().__init__(params, defaults)
        check_low_rank_groups(self.param_groups, scale_type=SCALE_TYPES)
        for group in self.param_groups:
            check_nonnegative(group["scale"], "scale")

    def init_state(self, p, state, group):
        state["step"] = 0
        shape = p.shape
        if group["rank"] is not None and p.ndim == 2:
            m, n = p.shape
            shape = (group["rank"], n) if m < n else (m, group["rank"])
            # the first seed is the parameter's 1-based position among all parameters, as in the official code
            flat = [q for g in self.param_groups for q in g["params"]]
            state["seed"] = next(i for i, q in enumerate(flat, 1) if q is self.param_of(p))
        dtype = group.get("state_dtype") or p.dtype
        state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=p.device)
        state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        apollo_update(p, grad, state, rank=group["rank"], update_proj_gap=group["update_proj_gap"], scale=group["scale"],
                      scale_type=group["scale_type"], scale_front=group["scale_front"], disable_nl=group["disable_nl"],
                      lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                      correct_bias=group["correct_bias"])


register(OptimizerEntry(
    name="APOLLO",
    cls=APOLLO,
    canon_id="apollo",
    family="low-rank",
    # the norm-growth limiter lets the step grow by 1% a step, so a small first step needs a larger lr
    recipe={"lr": 0.1, "rank": 2, "update_proj_gap": 10},
    recipes={"quadratic": {"lr": 0.2}, "rosenbrock": {"lr": 0.03}},
    errors=(*invalid("lr", "betas", "eps", "weight_decay"), ErrorInput({"rank": 0}, "rank"),
            ErrorInput({"scale": -1.0}, "scale"), ErrorInput({"update_proj_gap": 0}, "update_proj_gap"),
            ErrorInput({"scale_type": "row"}, "scale_type")),
    variants={
        "mini": {"rank": 1, "scale": 128.0, "scale_type": "tensor"},  # APOLLO-Mini
        "no_limiter": {"disable_nl": True},
        "scale_front": {"scale_front": True},
    },
    skips={"param_groups": "the projection's seed is the parameter's position among all of the optimizer's parameters "
                           "(as in the official code), so one optimizer per group draws other projections"},
    # Parity with apollo-torch needs groups with and without a rank: tests/optim/test_apollo.py.
))
