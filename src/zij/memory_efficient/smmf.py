"""SMMF: Adam-like moments stored as rank-one factors of a square-matricized tensor plus a sign bit (Park and Lee, 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, hyperparameters
from .._checkpoint import restore_exact
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_


def effective_shape(numel: int) -> tuple[int, int]:
    """The matrix shape ``(p, q)``, ``p * q = numel``, ``p >= q``, with ``q`` the largest divisor up to the square root."""
    q = math.isqrt(numel)
    while numel % q:
        q -= 1
    return numel // q, q


def nnmf(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Rank-one non-negative factors $(X 1_q, X^\top 1_p)$ of ``x`` (p, q), the shorter side's
    partner normalized by the total: rows when $p < q$, columns otherwise (unless the total is 0)."""
    row, col = x.sum(dim=1), x.sum(dim=0)
    if x.size(0) < x.size(1):
        total = row.sum()
        row = row / torch.where(total != 0, total, torch.ones_like(total))
    else:
        total = col.sum()
        col = col / torch.where(total != 0, total, torch.ones_like(total))
    return row, col


def smmf_update(param, grad, state, *, step: int, lr: float, beta: float | None, eps: float, weight_decay: float,
                decay_rate: float, growth_rate: float) -> None:
    """One SMMF step for one tensor, in place; ``state`` holds factors (``*_row``, ``*_col``, ``sign``) or full moments.

    theta <- (1 - lr wd) theta;  M = S * (r_m c_m^T), V = r_v c_v^T (or the full moments);
    b1 = beta growth^(t-1), b2 = 1 - t^decay;  M <- b1 M + (1 - b1) G;  V <- b2 V + (1 - b2) G^2;
    S, (r_m, c_m), (r_v, c_v) <- sign(M), nnmf(|M|), nnmf(V);  theta <- theta - lr M / (sqrt(V) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    factored = "v_row" in state
    if factored:
        dtype = state["v_row"].dtype
        g = grad.reshape(state["v_row"].numel(), state["v_col"].numel()).to(dtype)
        v = torch.outer(state["v_row"], state["v_col"])
        if beta is not None:
            m = torch.outer(state["m_row"], state["m_col"])
            m = torch.where(state["sign"].bool(), m, -m)
    else:
        g = grad.to(state["exp_avg_sq"].dtype)
        v = state["exp_avg_sq"]
        m = state["exp_avg"] if beta is not None else None
    if beta is not None:
        beta_m = beta * growth_rate ** (step - 1)
        m.mul_(beta_m).add_(g, alpha=1 - beta_m)
    beta_v = 1 - step**decay_rate
    v.mul_(beta_v).addcmul_(g, g, value=1 - beta_v)
    if factored:
        if beta is not None:
            state["sign"].copy_(m > 0)  # a bool tensor, or 0/1 in state_dtype
            for name, factor in zip(("m_row", "m_col"), nnmf(m.abs())):
                state[name].copy_(factor)
        for name, factor in zip(("v_row", "v_col"), nnmf(v)):
            state[name].copy_(factor)
    update = (m if beta is not None else g) / (v.sqrt() + eps)
    param.add_(update.reshape(param.shape).to(param.dtype), alpha=-lr)


class SMMF(ZijOptimizer):
    r"""SMMF: Adam-style moments kept as rank-one factors of a square-matricized tensor, plus the momentum's sign.

    Every tensor (vectors too, with ``vector_reshape``) is viewed as a $p \times q$ matrix
    with $p \ge q$ as close as possible. Between steps the second moment is stored as its
    row and column sums and the first moment as the sums of its magnitude and one sign bit
    per entry (a boolean tensor), so a tensor of $n$ entries keeps $2(p+q)$ numbers and $n$
    signs. At each step the moments are rebuilt as rank-one products, updated with
    step-dependent rates (no bias correction), used at full precision for the step, and
    factorized again. With ``vector_reshape=False`` vectors keep full moments with the same
    rates; ``beta=None`` drops the first moment (the step uses the gradient). The official
    ``weight_decay_mode='adam'`` is not offered: its code adds the decay to a gradient copy
    that the update never reads, so it decays nothing.

    $$
    \begin{aligned}
    \theta' &= (1-\eta\lambda)\, \theta_{t-1}, \qquad G_t = \operatorname{mat}(g_t) \in \mathbb{R}^{p \times q} \\
    M &= S_{t-1} \odot (r^{m}_{t-1} c^{m\top}_{t-1}), \qquad V = r^{v}_{t-1} c^{v\top}_{t-1} \\
    \beta_{1,t} &= \beta\, \gamma^{t-1}, \qquad \beta_{2,t} = 1 - t^{c} \\
    M &\leftarrow \beta_{1,t} M + (1-\beta_{1,t})\, G_t, \qquad V \leftarrow \beta_{2,t} V + (1-\beta_{2,t})\, G_t^{2} \\
    S_t &= \operatorname{sign}(M), \qquad (r^{m}_t, c^{m}_t) = \operatorname{nnmf}(|M|), \qquad (r^{v}_t, c^{v}_t) = \operatorname{nnmf}(V) \\
    \theta_t &= \theta' - \eta\, \operatorname{mat}^{-1}\Big( \frac{M}{\sqrt{V} + \epsilon} \Big) \\
    \operatorname{nnmf}(X) &= \Big( \frac{X 1_q}{s_1},\ \frac{X^{\top} 1_p}{s_2} \Big), \quad (s_1, s_2) = \begin{cases} (1_p^{\top} X 1_q,\ 1) & p < q \\ (1,\ 1_p^{\top} X 1_q) & p \ge q \end{cases}
    \end{aligned}
    $$

    $S$ is stored as $M > 0$, so an entry with $M = 0$ is rebuilt with a negative sign, as
    in the official code.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        beta: first-moment coefficient $\beta$ (``None``: no first moment).
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        decay_rate: exponent $c$ in $[-1, 0]$ of the second-moment rate $\beta_{2,t} = 1 - t^{c}$.
        growth_rate: per-step decay $\gamma$ in $[0, 1]$ of the first-moment rate $\beta\gamma^{t-1}$.
        vector_reshape: square-matricize and factorize 1-D tensors too (otherwise they keep full moments).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of every state tensor, the sign included as 0/1 (``None``: the parameter's for
            factors and moments, as the official code's float32 for float32 weights, and bool for the sign).

    Example:
        >>> model = torch.nn.Linear(64, 32)
        >>> opt = zij.SMMF(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 64)).square().mean().backward()
        >>> opt.step()
        >>> state = opt.state[model.weight]
        >>> {k: tuple(state[k].shape) for k in ("v_row", "v_col", "sign")}
        {'v_row': (64,), 'v_col': (32,), 'sign': (64, 32)}

    References:
        Park and Lee, "SMMF: Square-Matricized Momentum Factorization for Memory-Efficient Optimization", AAAI 2025.
        https://arxiv.org/abs/2412.08894
    """

    def __init__(self, params, lr: float = 1e-3, beta: float | None = 0.9, eps: float = 1e-8,
                 weight_decay: float = 0.0, decay_rate: float = -0.5, growth_rate: float = 0.999,
                 vector_reshape: bool = True, *, maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, eps=eps, weight_decay=weight_decay, beta=beta, decay_rate=decay_rate,
                                   growth_rate=growth_rate, vector_reshape=bool(vector_reshape), maximize=maximize,
                                   state_dtype=state_dtype)
        if beta is not None and not (isinstance(beta, (int, float)) and 0.0 <= beta <= 1.0):
            raise ValueError(f"Invalid beta: {beta!r} (expected None or a number in [0, 1])")
        if not (isinstance(decay_rate, (int, float)) and -1.0 <= decay_rate <= 0.0):
            raise ValueError(f"Invalid decay_rate: {decay_rate!r} (expected a number in [-1, 0])")
        if not (isinstance(growth_rate, (int, float)) and 0.0 <= growth_rate <= 1.0):
            raise ValueError(f"Invalid growth_rate: {growth_rate!r} (expected a number in [0, 1])")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or p.dtype
        first = group["beta"] is not None
        if p.squeeze().dim() == 1 and not group["vector_reshape"]:
            state["exp_avg_sq"] = self.zeros_like(p, group)
            if first:
                state["exp_avg"] = self.zeros_like(p, group)
            return
        rows, cols = effective_shape(p.numel())
        names = ("v_row", "v_col") + (("m_row", "m_col") if first else ())
        for name in names:
            state[name] = torch.zeros(rows if name.endswith("row") else cols, dtype=dtype, device=p.device)
        if first:
            state["sign"] = torch.zeros(rows, cols, dtype=group.get("state_dtype") or torch.bool, device=p.device)

    def load_state_dict(self, state_dict):
        """Load as torch does, but keep boolean sign tensors boolean (torch casts state to the parameter's dtype)."""
        super().load_state_dict(state_dict)
        restore_exact(self, state_dict, ("sign",))

    def update(self, p, grad, state, group):
        smmf_update(p, grad, state, step=state["step"], lr=group["lr"], beta=group["beta"], eps=group["eps"],
                    weight_decay=group["weight_decay"], decay_rate=group["decay_rate"],
                    growth_rate=group["growth_rate"])


register(OptimizerEntry(
    name="SMMF",
    cls=SMMF,
    canon_id="smmf",
    family="factored",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={"no_first_moment": {"beta": None}, "full_vectors": {"vector_reshape": False}},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"beta": 1.5}, "beta"),
        ErrorInput({"decay_rate": 0.5}, "decay_rate"),
        ErrorInput({"growth_rate": -0.1}, "growth_rate"),
    ),
))
