"""PolarGrad: the polar factor of the momentum scaled by its nuclear norm (Lau, Long and Su, 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, newton_schulz

__all__ = ["PolarGrad", "polargrad_update", "qdwh_polar", "polar_factor"]

METHODS = ("qdwh", "ns")
#: The Newton-Schulz coefficients of the official PolarGrad class (its c is 2.031, Muon's 2.0315).
POLARGRAD_NS_COEFFICIENTS = (3.4445, -4.7750, 2.031)


def _qdwh_weights(lower: float, tol: float, steps: int) -> list[tuple[float, float, float]]:
    """QDWH's dynamic weights (a, b, c) from the lower bound ``lower`` on the smallest singular value."""
    weights = []
    while lower + tol < 1 and len(weights) < steps:
        l2 = lower * lower
        dd = (4 * (1 / l2 - 1) / l2) ** (1 / 3)
        sqd = math.sqrt(1 + dd)
        a = sqd + math.sqrt(2 - dd + 2 * (2 - l2) / (l2 * sqd))
        b = (a - 1) ** 2 / 4
        c = a + b - 1
        lower = lower * (a + b * l2) / (1 + c * l2)
        weights.append((a, b, c))
    return weights


def qdwh_polar(x: torch.Tensor, steps: int) -> torch.Tensor:
    r"""The orthogonal polar factor of a tall matrix by at most ``steps`` QDWH iterations (Nakatsukasa et al., 2010).

    $U_0 = X / \sqrt{\lVert X\rVert_1 \lVert X\rVert_\infty}$ and $\ell_0$ the unit roundoff; each iteration
    $U \leftarrow \tfrac{b}{c} U + (a - \tfrac{b}{c})\, U (I + c U^\top U)^{-1}$ with dynamic weights
    $(a, b, c)$ from $\ell$, through a QR decomposition of $[\sqrt{c}\, U; I]$ while $c > 100$ and
    a Cholesky factorization after; once the weights reach Halley's $(3, 1, 3)$ the iteration stops
    when the step is below $(5u)^{1/3}$. A last Newton-Schulz step $\tfrac32 U - \tfrac12 U U^\top U$
    follows. Runs in the input's dtype (at least float32, which QR needs).
    """
    dtype = x.dtype
    x = x.to(torch.promote_types(dtype, torch.float32))
    eps = torch.finfo(x.dtype).eps
    norm = torch.sqrt(torch.linalg.matrix_norm(x, ord=1) * torch.linalg.matrix_norm(x, ord=math.inf))
    u = x / torch.where(norm == 0, torch.ones_like(norm), norm)
    tol = 5 * eps
    n = u.size(1)
    eye = torch.eye(n, dtype=u.dtype, device=u.device)
    weights = _qdwh_weights(eps, tol, steps)
    converged = False
    for a, b, c in weights:
        e = b / c
        if c > 100:
            q = torch.linalg.qr(torch.cat([math.sqrt(c) * u, eye]))[0]
            u = e * u + (a - e) / math.sqrt(c) * (q[: u.size(0)] @ q[u.size(0):].T)
        else:
            previous = u
            chol = torch.linalg.cholesky(c * (u.T @ u) + eye)
            u = e * u + (a - e) * torch.cholesky_solve(u.T, chol).T
            converged = bool(torch.linalg.matrix_norm(u - previous) <= tol ** (1 / 3))
    k = len(weights)
    while not converged and k < steps:  # Halley's iteration until convergence
        previous = u
        chol = torch.linalg.cholesky(3 * (u.T @ u) + eye)
        u = u / 3 + (3 - 1 / 3) * torch.cholesky_solve(u.T, chol).T
        converged = bool(torch.linalg.matrix_norm(u - previous) <= tol ** (1 / 3))
        k += 1
    u = 1.5 * u - 0.5 * u @ (u.T @ u)
    return u.to(dtype)


def polar_factor(x: torch.Tensor, *, method: str, inner_steps: int, ns_dtype: torch.dtype | None) -> torch.Tensor:
    """The (approximate) orthogonal polar factor of matrix ``x`` by ``method``, in the method's working dtype."""
    if method == "ns":
        return newton_schulz(x.to(ns_dtype or x.dtype), inner_steps, coefficients=POLARGRAD_NS_COEFFICIENTS)
    if x.size(0) >= x.size(1):
        return qdwh_polar(x, inner_steps)
    return qdwh_polar(x.T, inner_steps).T


def polargrad_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    polar_first: bool,
    method: str,
    inner_steps: int,
    ns_dtype: torch.dtype | None,
) -> None:
    r"""One PolarGrad step for one matrix, in place.

    Momentum first: M <- lerp(M, G, 1 - beta);  U = polar(M);  D = tr(M^T U) U.
    Polar first: U = polar(G);  M <- lerp(M, U, 1 - beta);  D = tr(G^T U) M.
    theta <- (1 - lr wd) theta - lr D.
    """
    if polar_first:
        u = polar_factor(grad, method=method, inner_steps=inner_steps, ns_dtype=ns_dtype)
        nuclear = torch.sum(grad.to(u.dtype) * u)
        momentum_buffer.lerp_(u.to(momentum_buffer.dtype), 1 - momentum)
        direction = nuclear * momentum_buffer
    else:
        momentum_buffer.lerp_(grad.to(momentum_buffer.dtype), 1 - momentum)
        u = polar_factor(momentum_buffer, method=method, inner_steps=inner_steps, ns_dtype=ns_dtype)
        direction = torch.sum(momentum_buffer.to(u.dtype) * u) * u
    decoupled_decay_(param, lr, weight_decay).add_(direction.to(param.dtype), alpha=-lr)


class PolarGrad(ZijOptimizer):
    r"""PolarGrad: step along the polar factor of the momentum, scaled by the momentum's nuclear norm.

    PolarGrad reads Muon as a preconditioner that removes the spread of the gradient's
    singular values, and restores the step's size with the nuclear norm $\operatorname{tr}(M^\top U)$
    (the sum of singular values), which Muon drops and which the paper's convergence rates on
    strongly convex problems need. The default orthogonalizes the momentum (Muon's order);
    ``polar_first`` averages polar factors of the gradients instead, scaled by the current
    gradient's nuclear norm. The polar factor comes from QDWH, a QR- and Cholesky-based
    rational iteration with no tuned coefficients (``method="qdwh"``, in at least float32), or
    from the quintic Newton-Schulz iteration (``method="ns"``). The official code's other
    methods (ZOLO-PD, a preconditioned Newton-Schulz, Polar Express) are not offered. Matrices
    only, as in the official class: put other tensors in another optimizer. Because the step
    grows with the nuclear norm, the learning rate plays the role of gradient descent's $1/L$.

    $$
    \begin{aligned}
    &\text{momentum first (default):} \\
    &\quad M_t = \beta M_{t-1} + (1-\beta)\, G_t, \qquad U_t H_t = M_t, \qquad D_t = \operatorname{tr}\!\left(M_t^{\top} U_t\right) U_t \\
    &\text{polar first:} \\
    &\quad U_t H_t = G_t, \qquad M_t = \beta M_{t-1} + (1-\beta)\, U_t, \qquad D_t = \operatorname{tr}\!\left(G_t^{\top} U_t\right) M_t \\
    &X_t = (1 - \eta\lambda)\, X_{t-1} - \eta\, D_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).
    With ``inner_steps`` large enough for QDWH to reach its Cholesky-based iterations (the
    default two are QR-based), the factorization raises ``torch.linalg.LinAlgError`` instead,
    after the momentum has taken the non-finite value.

    Args:
        params: iterable of matrices or parameter groups of matrices.
        lr: learning rate $\eta$.
        weight_decay: decoupled weight decay $\lambda$.
        momentum: momentum coefficient $\beta$.
        polar_first: average the gradients' polar factors instead of orthogonalizing the momentum.
        method: ``"qdwh"`` or ``"ns"``, the algorithm computing the polar factor $U_t$.
        inner_steps: at most this many QDWH iterations (it stops early once converged), or exactly
            this many Newton-Schulz iterations.
        ns_dtype: dtype of the Newton-Schulz iteration (the official code: ``torch.bfloat16``); ``None``:
            the gradient's. QDWH ignores it.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the momentum (``None``: the parameter's).

    Example:
        >>> weight = torch.nn.Parameter(torch.randn(8, 4))
        >>> opt = zij.PolarGrad([weight], lr=0.02)
        >>> (torch.randn(16, 4) @ weight.T).square().mean().backward()
        >>> opt.step()

    References:
        Lau, Long and Su, "PolarGrad: A Class of Matrix-Gradient Optimizers from a Unifying
        Preconditioning Perspective", 2025.
        https://arxiv.org/abs/2505.21799 (official code: https://github.com/timlautk/polargrad)
    """

    state_names = ("momentum_buffer",)

    def __init__(self, params, lr: float = 0.02, weight_decay: float = 0.0, momentum: float = 0.95,
                 polar_first: bool = False, method: str = "qdwh", inner_steps: int = 2, *,
                 ns_dtype: torch.dtype | None = torch.bfloat16, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        if method not in METHODS:
            raise ValueError(f"Invalid method: {method!r} (expected one of {METHODS})")
        check_int(inner_steps, "inner_steps")
        if ns_dtype is not None and not (isinstance(ns_dtype, torch.dtype) and ns_dtype.is_floating_point):
            raise ValueError(f"Invalid ns_dtype: {ns_dtype!r} (expected a floating torch.dtype or None)")
        super().__init__(params, hyperparameters(
            lr=lr, weight_decay=weight_decay, momentum=momentum, polar_first=bool(polar_first), method=method,
            inner_steps=inner_steps, ns_dtype=ns_dtype, maximize=maximize, state_dtype=state_dtype))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        if any(p.ndim != 2 for p in self.param_groups[-1]["params"]):
            raise ValueError("PolarGrad steps matrices only: put tensors of other dimensions in another optimizer")

    def update(self, p, grad, state, group):
        polargrad_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                         weight_decay=group["weight_decay"], polar_first=group["polar_first"],
                         method=group["method"], inner_steps=group["inner_steps"], ns_dtype=group["ns_dtype"])


register(OptimizerEntry(
    name="PolarGrad",
    cls=PolarGrad,
    canon_id="polargrad",
    family="orthogonalized",
    aliases=("PolarMuon",),
    recipe={"lr": 0.02},
    recipes={"rosenbrock": {"lr": 0.005}},
    capabilities=Capabilities(ndims=(2,), elementwise=False),
    variants={
        "polar_first": {"polar_first": True},
        "ns": {"method": "ns", "inner_steps": 5},
        "weight_decay": {"weight_decay": 0.01},
    },
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"method": "svd"}, "method"),
        ErrorInput({"inner_steps": 0}, "inner_steps"),
        ErrorInput({"ns_dtype": torch.int32}, "ns_dtype"),
    ),
    # The official code (timlautk/polargrad) is not packaged: tests/optim/test_polargrad.py checks
    # the rule by hand, QDWH against the SVD's polar factor, and the nuclear-norm identity.
))
