"""CAME: Adafactor's factored moments with a factored confidence of the momentum (Luo et al., 2023)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, factored_ema_


def _rms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x) / x.numel() ** 0.5


def _factored_rsqrt(row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    r"""$1/\sqrt{v}$ of the rank-one $v_{ij} = r_i c_j / \operatorname{mean}(r)$, as a new tensor."""
    return (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1) * col.unsqueeze(-2).rsqrt()


def came_update(param: torch.Tensor, grad: torch.Tensor, state: dict, *, lr: float, beta1: float, beta2: float,
                beta3: float, eps1: float, eps2: float, clip_threshold: float, weight_decay: float) -> None:
    """One CAME step for one tensor, in place.

    Tensors with two or more dimensions keep factored row and column averages (over the last
    two dimensions) of g^2 + eps1 and of the instability (u_hat - m)^2 + eps2; others keep a full
    average of g^2 + eps1 and step with the momentum alone (as the official code does).
    """
    grad_sq = grad * grad + eps1
    if grad.ndim >= 2:
        factored_ema_(state["exp_avg_sq_row"], state["exp_avg_sq_col"], grad_sq, beta2)
        update = _factored_rsqrt(state["exp_avg_sq_row"], state["exp_avg_sq_col"]).mul_(grad)
    else:
        update = ema_(state["exp_avg_sq"], grad_sq, beta2).rsqrt().mul_(grad)
    update.div_((_rms(update) / clip_threshold).clamp_(min=1.0))
    exp_avg = ema_(state["exp_avg"], update, beta1)
    if grad.ndim >= 2:
        instability = (update - exp_avg).square_().add_(eps2)
        factored_ema_(state["exp_avg_res_row"], state["exp_avg_res_col"], instability, beta3)
        update = _factored_rsqrt(state["exp_avg_res_row"], state["exp_avg_res_col"]).mul_(exp_avg)
    else:
        update = exp_avg
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)


class CAME(ZijOptimizer):
    r"""CAME: factored Adafactor moments with momentum scaled by a factored confidence.

    CAME keeps Adafactor's memory: for a matrix, only row and column averages of
    the squared gradient. It adds a momentum $m_t$ of the RMS-clipped normalized
    gradient $\hat u_t$, and a second factored average $S_t$ of the instability
    $(\hat u_t - m_t)^2$: the step is the momentum divided by $\sqrt{S_t}$, so
    coordinates whose updates keep disagreeing with their momentum move less.
    Tensors with more than two dimensions are factored over their last two; vectors
    and scalars keep a full second moment and step with the momentum alone, as in
    the official code. Weight decay is decoupled, applied before the step:
    $\theta \leftarrow (1-\eta\lambda)\theta$.

    $$
    \begin{aligned}
    r_t &= \beta_2 r_{t-1} + (1-\beta_2)\, \big(g_t^{2} + \epsilon_1 1_n 1_m^{\top}\big)\, 1_m \\
    c_t &= \beta_2 c_{t-1} + (1-\beta_2)\, 1_n^{\top} \big(g_t^{2} + \epsilon_1 1_n 1_m^{\top}\big) \\
    v_t &= \frac{r_t\, c_t}{1_n^{\top} r_t} \\
    u_t &= \frac{g_t}{\sqrt{v_t}}, \qquad \hat u_t = \frac{u_t}{\max\big(1,\ \operatorname{RMS}(u_t)/d\big)} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \hat u_t \\
    U_t &= (\hat u_t - m_t)^{2} + \epsilon_2 1_n 1_m^{\top} \\
    R_t &= \beta_3 R_{t-1} + (1-\beta_3)\, U_t 1_m, \qquad C_t = \beta_3 C_{t-1} + (1-\beta_3)\, 1_n^{\top} U_t \\
    S_t &= \frac{R_t\, C_t}{1_n^{\top} R_t} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{S_t}}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (required, as in the official code; the paper uses 2e-4 for BERT).
        betas: $(\beta_1, \beta_2, \beta_3)$, decay rates of the momentum, the squared gradient and the instability.
        eps: $(\epsilon_1, \epsilon_2)$, added to the squared gradient and to the instability.
        clip_threshold: $d$, the largest RMS of the normalized gradient $\hat u_t$.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    State per $n \times m$ matrix: $m_t$ ($nm$ entries) and four vectors ($2(n+m)$ entries).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.CAME(model.parameters(), lr=2e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Luo et al., "CAME: Confidence-guided Adaptive Memory Efficient Optimization", ACL 2023.
        https://arxiv.org/abs/2307.02047
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999, 0.9999), eps=(1e-30, 1e-16), clip_threshold: float = 1.0,
                 weight_decay: float = 0.0, *, maximize: bool = False, state_dtype: torch.dtype | None = None):
        eps = tuple(eps)
        if len(eps) != 2:
            raise ValueError(f"Invalid eps: {eps!r} (expected 2 values)")
        for i, e in enumerate(eps):
            check_nonnegative(e, f"eps[{i}]")
        check_positive(clip_threshold, "clip_threshold")
        defaults = hyperparameters(n_betas=3, lr=lr, betas=betas, clip_threshold=clip_threshold,
                                   weight_decay=weight_decay, maximize=maximize, state_dtype=state_dtype)
        super().__init__(params, {**defaults, "eps": eps})  # a pair, checked above

    def init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = self.zeros_like(p, group)
        dtype = group.get("state_dtype") or p.dtype
        if p.ndim >= 2:
            for kind in ("sq", "res"):
                state[f"exp_avg_{kind}_row"] = torch.zeros(p.shape[:-1], dtype=dtype, device=p.device)
                state[f"exp_avg_{kind}_col"] = torch.zeros(p.shape[:-2] + p.shape[-1:], dtype=dtype, device=p.device)
        else:
            state["exp_avg_sq"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        beta1, beta2, beta3 = group["betas"]
        eps1, eps2 = group["eps"]
        came_update(p, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2, beta3=beta3, eps1=eps1, eps2=eps2,
                    clip_threshold=group["clip_threshold"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="CAME",
    cls=CAME,
    canon_id="came",
    family="factored",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 3e-3}},
    errors=(*invalid("lr", "weight_decay"), ErrorInput({"betas": (0.9, 0.999, 1.0)}, r"betas\[2\]"),
            ErrorInput({"eps": (1e-30, -1.0)}, r"eps\[1\]"), ErrorInput({"clip_threshold": 0.0}, "clip_threshold")),
    parity=(
        # came-pytorch's CAME is the official code packaged; it applies the same decoupled decay.
        Parity("came-pytorch", "came_pytorch:CAME",
               {"lr": 1e-3, "betas": (0.9, 0.999, 0.9999), "eps": (1e-30, 1e-16), "weight_decay": 0.01},
               {"lr": 1e-3, "betas": (0.9, 0.999, 0.9999), "eps": (1e-30, 1e-16), "weight_decay": 0.01}),
    ),
))
