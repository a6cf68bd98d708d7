"""RACS: SGD scaled per row and per column, with a norm-growth limiter (Gong et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_


def as_matrix(x: torch.Tensor) -> torch.Tensor:
    """The view RACS scales: a vector (or 0-dim tensor) as one column, a higher-order tensor as (dim 0, rest)."""
    if x.ndim < 2:
        return x.reshape(x.numel(), 1)
    return x.reshape(x.shape[0], -1)


def racs_update(param, grad, row, col, limit, *, step: int, lr: float, beta: float, alpha: float, gamma: float,
                eps: float, weight_decay: float) -> None:
    """One RACS step for one tensor, in place (``limit`` is the 0-dim norm phi of the last update).

    s <- beta s + (1 - beta) mean_cols(G^2);  q <- beta q + (1 - beta) mean_rows(G^2);
    G_hat = G / (sqrt(s + eps) sqrt(q + eps)^T);  nu = 1 at t = 1, else gamma / max(||G_hat|| / (phi + eps), gamma);
    phi <- nu ||G_hat||;  theta <- (1 - lr wd) theta - lr alpha nu G_hat.
    """
    g = as_matrix(grad)
    square = g.square()
    row.lerp_(square.mean(dim=1).to(row.dtype), 1 - beta)  # a state_dtype other than the gradient's
    col.lerp_(square.mean(dim=0).to(col.dtype), 1 - beta)
    scaled = g / ((row.to(g.dtype) + eps).sqrt().unsqueeze(1) * (col.to(g.dtype) + eps).sqrt().unsqueeze(0))
    norm = torch.linalg.vector_norm(scaled)
    if step == 1:
        nu = torch.ones_like(norm)
    else:
        nu = gamma / torch.clamp(norm / (limit + eps), min=gamma)
    limit.copy_(norm * nu)
    decoupled_decay_(param, lr, weight_decay)
    param.add_((scaled * (-lr * alpha * nu)).reshape(param.shape))


class RACS(ZijOptimizer):
    r"""RACS: scale each matrix's gradient by one factor per row and one per column.

    RACS (Row and Column Scaled SGD) keeps two vectors per weight matrix, running means of
    the squared gradient over its rows and over its columns, and divides the gradient by the
    square roots of both, a diagonal Kronecker approximation of the Fisher information that
    costs $a + b + 1$ numbers for an $a \times b$ matrix. A limiter lets the norm of the
    scaled gradient grow by at most the factor $\gamma$ from one step to the next. Vectors
    (and 0-dim tensors) are scaled as one column, higher-order tensors as matrices of their
    first dimension by the rest.

    $$
    \begin{aligned}
    s_t &= \beta s_{t-1} + (1-\beta)\, \tfrac{1}{b}\, G_t^{2} 1_b, \qquad q_t = \beta q_{t-1} + (1-\beta)\, \tfrac{1}{a}\, (G_t^{2})^{\top} 1_a, \qquad s_0 = 0,\ q_0 = 1 \\
    \hat G_t &= \operatorname{diag}(s_t + \epsilon)^{-1/2}\, G_t\, \operatorname{diag}(q_t + \epsilon)^{-1/2} \\
    \nu_t &= \begin{cases} 1 & t = 1 \\ \gamma / \max\big( \lVert \hat G_t \rVert_F / (\phi_{t-1} + \epsilon),\ \gamma \big) & t > 1 \end{cases}, \qquad \phi_t = \nu_t \lVert \hat G_t \rVert_F \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \alpha\, \nu_t\, \hat G_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        beta: $\beta$, decay of the row and column mean squares.
        alpha: $\alpha$, scale of the update.
        gamma: $\gamma$, largest growth of the update norm per step.
        eps: $\epsilon$, added to the mean squares and to the stored norm.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.RACS(model.parameters(), lr=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Gong, Scetbon, Ma and Meeds, "Towards Efficient Optimizer Design for LLM via Structured Fisher
        Approximation with a Low-Rank Extension", 2025. https://arxiv.org/abs/2502.07752
    """

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.9, alpha: float = 0.05, gamma: float = 1.01,
                 eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, alpha=alpha, gamma=gamma, eps=eps, weight_decay=weight_decay,
                                   maximize=maximize, state_dtype=state_dtype)
        check_unit(beta, "beta")
        check_positive(alpha, "alpha")
        check_positive(gamma, "gamma")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        rows, cols = as_matrix(p).shape
        dtype = group["state_dtype"] or p.dtype
        state["row"] = torch.zeros(rows, dtype=dtype, device=p.device)
        state["col"] = torch.ones(cols, dtype=dtype, device=p.device)
        state["limit"] = torch.zeros((), dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        racs_update(p, grad, state["row"], state["col"], state["limit"], step=state["step"], lr=group["lr"],
                    beta=group["beta"], alpha=group["alpha"], gamma=group["gamma"], eps=group["eps"],
                    weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="RACS",
    cls=RACS,
    canon_id="racs",
    family="factored",
    recipe={"lr": 1.0},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"beta": 1.0}, "beta"),
        ErrorInput({"alpha": 0.0}, "alpha"),
        ErrorInput({"gamma": -1.0}, "gamma"),
    ),
    parity=(
        # pytorch_optimizer's RACS is the reference (no official code was found); its default decay is the
        # same decoupled one.
        Parity("pytorch-optimizer", "pytorch_optimizer:RACS",
               {"lr": 0.1, "beta": 0.9, "alpha": 0.05, "gamma": 1.01, "weight_decay": 0.01},
               {"lr": 0.1, "beta": 0.9, "alpha": 0.05, "gamma": 1.01, "weight_decay": 0.01}),
        Parity("pytorch-optimizer", "pytorch_optimizer:RACS", {"lr": 0.05, "beta": 0.5, "alpha": 0.2, "gamma": 1.2},
               {"lr": 0.05, "beta": 0.5, "alpha": 0.2, "gamma": 1.2}),
    ),
))
