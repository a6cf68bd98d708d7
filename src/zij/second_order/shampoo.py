"""Shampoo: one accumulated statistic per tensor dimension, applied through inverse roots (Gupta et al., 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_sq_

GRAFTS = (None, "adagrad", "adam")


def matrix_dtype(p: torch.Tensor, state_dtype: torch.dtype | None) -> torch.dtype:
    """The dtype of matrix state: ``state_dtype`` if given, else the parameter's, at least float32."""
    if state_dtype is not None:
        return state_dtype
    return torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype


def work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the matrix arithmetic runs in: float32 for half-precision state, else the state's."""
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def inverse_root(stat: torch.Tensor, power: float) -> torch.Tensor:
    r"""$S^{-1/p}$ of a symmetric positive definite matrix by its eigendecomposition (float32 at least).

    Eigenvalues are floored at the smallest positive normal number of the dtype, so rounding
    below zero cannot produce a NaN.
    """
    work = stat if stat.dtype == torch.float64 else stat.float()
    eigenvalues, eigenvectors = torch.linalg.eigh(work)
    scale = eigenvalues.clamp_min(torch.finfo(work.dtype).tiny).pow_(-1.0 / power)
    return ((eigenvectors * scale.unsqueeze(-2)) @ eigenvectors.mT).to(stat.dtype)


def precondition(grad: torch.Tensor, roots: list[torch.Tensor]) -> torch.Tensor:
    """Multiply every mode ``i`` of ``grad`` by the symmetric matrix ``roots[i]`` (a new tensor).

    Contracting dimension 0 with a root and appending the result as the last dimension, once per
    dimension, cycles the dimensions back into their order.
    """
    out = grad
    for root in roots:
        out = torch.tensordot(out, root, dims=([0], [0]))
    return out


def shampoo_update(param, grad, stats: list, roots: list, graft_acc, *, step: int, lr: float, epsilon: float,
                   update_freq: int, graft: str | None, beta2: float, graft_eps: float, weight_decay: float) -> None:
    """One Shampoo step for one tensor of order k >= 1 (a 0-dim tensor is viewed as one entry), in place.

    G_i <- G_i + unfold_i(g) unfold_i(g)^T for each mode i (G_i starts at epsilon I);
    every ``update_freq`` steps (first at t = 1) P_i <- G_i^(-1/(2k));  S = g x_1 P_1 ... x_k P_k.
    Grafting takes S's direction and the Frobenius norm of D = g / (sqrt(a) + graft_eps), with
    a <- a + g^2 (adagrad) or a <- beta2 a + (1 - beta2) g^2 bias-corrected (adam).
    theta <- (1 - lr wd) theta - lr U, U = S (no graft) or U = S ||D|| / ||S||.
    """
    g = grad.reshape(1) if grad.ndim == 0 else grad
    order = g.ndim
    dtype = stats[0].dtype
    work = g.to(work_dtype(dtype))
    for i, stat in enumerate(stats):
        unfolded = work.movedim(i, 0).reshape(work.shape[i], -1)
        if stat.dtype == work.dtype:
            stat.addmm_(unfolded, unfolded.mT)
        else:  # half-precision state: the product in float32, rounded once
            stat.add_((unfolded @ unfolded.mT).to(stat.dtype))
    if (step - 1) % update_freq == 0:
        for stat, root in zip(stats, roots):
            root.copy_(inverse_root(stat, 2 * order))
    direction = precondition(work, [root.to(work.dtype) for root in roots])
    if graft is not None:
        if graft == "adagrad":
            graft_acc.addcmul_(work.to(dtype), work.to(dtype))
            second = graft_acc.to(work.dtype)
        else:
            second = ema_sq_(graft_acc, work.to(dtype), beta2).to(work.dtype) / (1 - beta2**step)
        grafted = work / second.sqrt().add_(graft_eps)
        norm = torch.linalg.vector_norm(direction)
        scale = torch.where(norm > 0, torch.linalg.vector_norm(grafted) / norm, torch.zeros_like(norm))
        direction = direction * scale
    decoupled_decay_(param, lr, weight_decay)
    param.add_(direction.reshape(param.shape).to(param.dtype), alpha=-lr)


class Shampoo(ZijOptimizer):
    r"""Shampoo: precondition every dimension of a tensor with the inverse root of its own gradient statistic.

    A weight matrix keeps two small statistics, the sums of $g g^{\top}$ (over its rows) and
    of $g^{\top} g$ (over its columns), started at $\epsilon I$; the step multiplies the
    gradient on both sides by their inverse fourth roots, an approximation of full-matrix
    AdaGrad whose cost grows with the sum of the dimensions. The roots (matrix state, one
    eigendecomposition each) are recomputed every ``update_freq`` steps, first at step 1,
    and reused in between. With grafting, the step keeps Shampoo's direction but takes its
    size (Frobenius norm, per tensor) from AdaGrad's or Adam's diagonal step, as Scalable and
    Distributed Shampoo do; without it (the default) it is the paper's algorithm.

    $$
    \begin{aligned}
    L_t &= L_{t-1} + g_t\, g_t^{\top}, \qquad L_0 = \epsilon I_m \\
    R_t &= R_{t-1} + g_t^{\top} g_t, \qquad R_0 = \epsilon I_n \\
    (P_t, Q_t) &= \begin{cases} \big(L_t^{-1/4},\ R_t^{-1/4}\big) & \text{if } (t-1) \bmod k = 0 \\ (P_{t-1},\ Q_{t-1}) & \text{otherwise} \end{cases} \\
    S_t &= P_t\, g_t\, Q_t \\
    a_t &= a_{t-1} + g_t \odot g_t, \qquad D_t = \frac{g_t}{\sqrt{a_t} + \epsilon_g} \quad \text{(AdaGrad graft)} \\
    a_t &= \beta_2 a_{t-1} + (1-\beta_2)\, g_t \odot g_t, \qquad D_t = \frac{g_t}{\sqrt{a_t / (1-\beta_2^{t})} + \epsilon_g} \quad \text{(Adam graft)} \\
    U_t &= S_t \ \text{(no graft)}, \qquad U_t = \frac{\lVert D_t\rVert_F}{\lVert S_t\rVert_F}\, S_t \ \text{(graft)} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, U_t
    \end{aligned}
    $$

    A tensor of order $k$ keeps one statistic per dimension, the gradient unfolded along that
    dimension times its transpose, and applies each to the power $-1/(2k)$ (the matrix case is
    $k = 2$): a vector gets full-matrix AdaGrad ($-1/2$), and a 0-dim tensor is treated as a
    vector of one entry, where Shampoo is AdaGrad with initial accumulator $\epsilon$. Each
    statistic is an $n \times n$ matrix for a dimension of size $n$, so very large dimensions
    (embeddings) belong in another optimizer's group. Directions the gradients have not yet
    visited are scaled by up to $\epsilon^{-1/2}$, so a small $\epsilon$ needs a small $\eta$ or grafting.
    Matrix state is float32 by default for bfloat16 parameters; a half-precision ``state_dtype``
    stores it so, while the arithmetic runs in float32.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        epsilon: $\epsilon$, the initial diagonal of every statistic.
        update_freq: $k$, steps between recomputations of the inverse roots.
        graft: ``None`` (the paper's step), ``"adagrad"`` or ``"adam"``: the diagonal method whose step norm is grafted.
        beta2: $\beta_2$, decay of the Adam graft's second moment ($a_t$ is its bias-corrected value).
        graft_eps: $\epsilon_g$, added to the graft's denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's, float32 for half precision).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Shampoo(model.parameters(), lr=0.1, update_freq=10, graft="adagrad")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Gupta, Koren and Singer, "Shampoo: Preconditioned Stochastic Tensor Optimization", ICML 2018.
        https://arxiv.org/abs/1802.09568
        Anil, Gupta, Koren, Regan and Singer, "Scalable Second Order Optimization for Deep Learning",
        2020 (grafting). https://arxiv.org/abs/2002.09018
    """

    def __init__(self, params, lr: float = 0.1, epsilon: float = 1e-4, update_freq: int = 1, graft: str | None = None,
                 beta2: float = 0.999, graft_eps: float = 1e-8, weight_decay: float = 0.0, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, epsilon=epsilon, update_freq=update_freq, graft=graft, beta2=beta2,
                                   graft_eps=graft_eps, weight_decay=weight_decay, maximize=maximize,
                                   state_dtype=state_dtype)
        check_positive(epsilon, "epsilon")
        check_int(update_freq, "update_freq")
        if graft not in GRAFTS:
            raise ValueError(f"Invalid graft: {graft!r} (expected one of {GRAFTS})")
        check_unit(beta2, "beta2")
        check_nonnegative(graft_eps, "graft_eps")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = matrix_dtype(p, group["state_dtype"])
        shape = p.shape if p.ndim else (1,)
        for i, n in enumerate(shape):
            state[f"stat_{i}"] = torch.eye(n, dtype=dtype, device=p.device).mul_(group["epsilon"])
            state[f"root_{i}"] = torch.zeros(n, n, dtype=dtype, device=p.device)
        if group["graft"] is not None:
            state["graft_acc"] = torch.zeros(shape, dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        order = max(p.ndim, 1)
        shampoo_update(p, grad, [state[f"stat_{i}"] for i in range(order)], [state[f"root_{i}"] for i in range(order)],
                       state.get("graft_acc"), step=state["step"], lr=group["lr"], epsilon=group["epsilon"],
                       update_freq=group["update_freq"], graft=group["graft"], beta2=group["beta2"],
                       graft_eps=group["graft_eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Shampoo",
    cls=Shampoo,
    canon_id="shampoo",
    family="preconditioned",
    # the recipe grafts AdaGrad's step norm: with bfloat16 statistics (test_core) the paper's step can blow up
    recipe={"lr": 0.5, "epsilon": 1e-2, "graft": "adagrad", "update_freq": 5},
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"epsilon": 0.0}, "epsilon"),
        ErrorInput({"update_freq": 0}, "update_freq"),
        ErrorInput({"graft": "sgd"}, "graft"),
        ErrorInput({"beta2": 1.0}, "beta2"),
        ErrorInput({"graft_eps": -1.0}, "graft_eps"),
    ),
    capabilities=Capabilities(elementwise=False),
    variants={
        "paper": {"graft": None, "update_freq": 1},
        "adam_graft": {"graft": "adam", "update_freq": 5, "lr": 0.02},
    },
    parity=(
        # pytorch_optimizer's Shampoo is the paper's algorithm: statistics from matrix_eps * I, roots
        # -1/(2k) by SVD. Restrictions: momentum=0 (its momentum buffer mixes raw gradients into the
        # stored preconditioned step, a different rule), update_freq=1 (it first computes the roots at
        # step k, stepping with zero roots before), no weight decay (its default decay is L2 folded into
        # the gradient before the statistics, ours is decoupled) and no grafting (it has none).
        Parity("pytorch-optimizer", "pytorch_optimizer:Shampoo", {"lr": 0.05, "epsilon": 1e-3},
               {"lr": 0.05, "matrix_eps": 1e-3, "momentum": 0.0, "preconditioning_compute_steps": 1}),
    ),
))
