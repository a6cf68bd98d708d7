"""SOAP: Adam run in the eigenbasis of Shampoo's statistics (Vyas et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from .shampoo import matrix_dtype, work_dtype


def rotate(x: torch.Tensor, bases: list, *, back: bool = False) -> torch.Tensor:
    """Multiply every mode ``i`` of ``x`` by ``bases[i]^T`` (forward) or ``bases[i]`` (back); ``None``: identity."""
    out = x
    for basis in bases:
        if basis is None:
            out = out.movedim(0, -1)
        else:
            out = torch.tensordot(out, basis, dims=([0], [1 if back else 0]))
    return out


def accumulate_statistics_(stats: list, grad: torch.Tensor, beta: float) -> None:
    """S_i <- beta S_i + (1 - beta) unfold_i(g) unfold_i(g)^T for every rotated mode i."""
    for i, stat in enumerate(stats):
        if stat is not None:
            others = [d for d in range(grad.ndim) if d != i]
            stat.lerp_(torch.tensordot(grad, grad, dims=(others, others)).to(stat.dtype), 1 - beta)


def eigenbases(stats: list) -> list:
    """Eigenvectors of each statistic, by decreasing eigenvalue (the first basis)."""
    return [None if s is None else torch.linalg.eigh(s.to(work_dtype(s.dtype)))[1].flip(-1).to(s.dtype) for s in stats]


def refresh_bases(stats: list, bases: list, exp_avg_sq: torch.Tensor) -> tuple[list, torch.Tensor]:
    """One power-iteration step with QR from the previous bases (the paper's cheap refresh).

    The old basis vectors are sorted by their Rayleigh quotients, decreasing; the second moment is
    permuted the same way so that each entry stays with its direction; Q <- qr(S Q_sorted), computed in
    float32 as in the official code.
    """
    new = []
    for i, (stat, basis) in enumerate(zip(stats, bases)):
        if stat is None:
            new.append(None)
            continue
        work = work_dtype(stat.dtype)
        basis = basis.to(work)
        product = stat.to(work) @ basis
        order = torch.argsort((basis * product).sum(dim=0), descending=True)
        exp_avg_sq = exp_avg_sq.index_select(i, order)
        # in float32, as the official code does (torch's QR has no bfloat16 kernel; float64 gains nothing here)
        new.append(torch.linalg.qr(product.index_select(1, order).float())[0].to(stat.dtype))
    return new, exp_avg_sq


def soap_update(param, grad, state: dict, *, lr: float, beta1: float, beta2: float, shampoo_beta: float, eps: float,
                weight_decay: float, precondition_frequency: int) -> None:
    """One SOAP step for one tensor, in place (``state`` holds exp_avg, exp_avg_sq, stats, bases, step).

    Step 1 only builds the statistics and their eigenbases. From step 2, with s = t - 1:
    g' = Q^T g;  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g'^2;  u = Q (Q^T m / (sqrt(v) + eps));
    theta <- theta - lr sqrt(1 - b2^s) / (1 - b1^s) u;  theta <- (1 - lr wd) theta;  then the statistics
    take g, and every ``precondition_frequency`` steps s the bases are refreshed by power iteration and QR.
    """
    stats, dtype = state["stats"], state["exp_avg"].dtype
    g = grad.to(work_dtype(dtype))  # half-precision state: the arithmetic runs in float32
    if state["step"] == 1:
        accumulate_statistics_(stats, g, shampoo_beta)
        state["bases"] = eigenbases(stats)
        return
    s = state["step"] - 1
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    bases = [None if b is None else b.to(g.dtype) for b in state["bases"]]
    exp_avg.lerp_(g.to(dtype), 1 - beta1)
    exp_avg_sq.lerp_(rotate(g, bases).square_().to(dtype), 1 - beta2)
    direction = rotate(rotate(exp_avg.to(g.dtype), bases) / exp_avg_sq.to(g.dtype).sqrt().add_(eps), bases, back=True)
    step_size = lr * (math.sqrt(1 - beta2**s) / (1 - beta1**s))
    param.add_(direction.to(param.dtype), alpha=-step_size)
    param.mul_(1 - lr * weight_decay)
    accumulate_statistics_(stats, g, shampoo_beta)
    if s % precondition_frequency == 0:
        state["bases"], state["exp_avg_sq"] = refresh_bases(stats, state["bases"], exp_avg_sq)


class SOAP(ZijOptimizer):
    r"""SOAP: Adam in the slowly refreshed eigenbasis of Shampoo's statistics.

    Each matrix keeps Shampoo's left and right statistics as moving averages, but uses
    only their eigenvectors: the gradient is rotated into that basis, Adam's second
    moment is kept there, and the normalized step is rotated back. The first moment stays
    in the original coordinates. The first step only builds the statistics and their
    eigenbases (no parameter moves); afterwards the bases are refreshed every $f$ steps by
    one step of power iteration and a QR decomposition, as in the paper and official code.

    $$
    \begin{aligned}
    s &= t - 1, \qquad t \ge 2 \ \text{(step 1: } L_1, R_1 \text{ from } g_1, \ (Q_L, Q_R) = \operatorname{eigvecs}(L_1, R_1) \text{, no step)} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    g'_t &= Q_L^{\top} g_t\, Q_R, \qquad m'_t = Q_L^{\top} m_t\, Q_R \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g'_t \odot g'_t \\
    \theta_t &= \Big(\theta_{t-1} - \eta\, \frac{\sqrt{1-\beta_2^{s}}}{1-\beta_1^{s}}\, Q_L \Big(\frac{m'_t}{\sqrt{v_t} + \epsilon}\Big) Q_R^{\top}\Big) (1 - \eta\lambda) \\
    L_t &= \beta_s L_{t-1} + (1-\beta_s)\, g_t g_t^{\top}, \qquad R_t = \beta_s R_{t-1} + (1-\beta_s)\, g_t^{\top} g_t \\
    (Q_L, Q_R) &\leftarrow \big(\operatorname{qr}(L_t Q_L),\ \operatorname{qr}(R_t Q_R)\big) \quad \text{if } s \bmod f = 0
    \end{aligned}
    $$

    Before each refresh the columns of $Q_L$, $Q_R$ are sorted by their Rayleigh quotients
    (decreasing) and $v_t$ is permuted with them. A tensor of any order gets one statistic
    per dimension; dimensions larger than ``max_precond_dim`` are not rotated, nor are
    vectors unless ``precondition_1d`` (the official defaults): where nothing is rotated SOAP is
    Adam with bias correction, started one step late. All state (moments, statistics, bases)
    is kept in ``state_dtype``, or the parameter's dtype (float32 for half precision); the
    arithmetic runs in float32 at least.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decays of Adam's moments.
        shampoo_beta: $\beta_s$, decay of the statistics (``None``: $\beta_2$).
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$, applied after the step as in the official code.
        precondition_frequency: $f$, steps between refreshes of the bases.
        max_precond_dim: dimensions larger than this are not rotated.
        precondition_1d: rotate vectors (biases) too, with one full statistic.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's, float32 for half precision).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SOAP(model.parameters(), lr=3e-3, betas=(0.95, 0.95), weight_decay=0.01)
        >>> for _ in range(2):
        ...     model(torch.randn(8, 4)).square().mean().backward()
        ...     opt.step()
        ...     opt.zero_grad()

    References:
        Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson and Kakade, "SOAP: Improving and
        Stabilizing Shampoo using Adam for Language Modeling", ICLR 2025. https://arxiv.org/abs/2409.11321
    """

    def __init__(self, params, lr: float = 3e-3, betas=(0.95, 0.95), shampoo_beta: float | None = None,
                 eps: float = 1e-8, weight_decay: float = 0.01, precondition_frequency: int = 10,
                 max_precond_dim: int = 10000, precondition_1d: bool = False, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, shampoo_beta=shampoo_beta, eps=eps, weight_decay=weight_decay,
                                   precondition_frequency=precondition_frequency, max_precond_dim=max_precond_dim,
                                   precondition_1d=precondition_1d, maximize=maximize, state_dtype=state_dtype)
        if shampoo_beta is not None:
            check_unit(shampoo_beta, "shampoo_beta")
        check_int(precondition_frequency, "precondition_frequency")
        check_int(max_precond_dim, "max_precond_dim")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = matrix_dtype(p, group["state_dtype"])
        state["exp_avg"] = torch.zeros(p.shape, dtype=dtype, device=p.device)
        state["exp_avg_sq"] = torch.zeros(p.shape, dtype=dtype, device=p.device)
        rotated = p.ndim >= 2 or (p.ndim == 1 and group["precondition_1d"])
        state["stats"] = [torch.zeros(n, n, dtype=dtype, device=p.device)
                          if rotated and n <= group["max_precond_dim"] else None for n in p.shape]

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        shampoo_beta = beta2 if group["shampoo_beta"] is None else group["shampoo_beta"]
        soap_update(p, grad, state, lr=group["lr"], beta1=beta1, beta2=beta2, shampoo_beta=shampoo_beta,
                    eps=group["eps"], weight_decay=group["weight_decay"],
                    precondition_frequency=group["precondition_frequency"])


register(OptimizerEntry(
    name="SOAP",
    cls=SOAP,
    canon_id="soap",
    family="preconditioned",
    recipe={"lr": 0.05, "weight_decay": 0.0},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"shampoo_beta": 1.0}, "shampoo_beta"),
        ErrorInput({"precondition_frequency": 0}, "precondition_frequency"),
        ErrorInput({"max_precond_dim": 0}, "max_precond_dim"),
    ),
    capabilities=Capabilities(elementwise=False),
    variants={"precondition_1d": {"precondition_1d": True}},
    parity=(
        # pytorch_optimizer's SOAP follows the official soap.py (first step only builds the bases, QR
        # refresh with sorting, decay after the step). Restrictions: merge_dims=False and
        # normalize_gradient=False (not zij options), correct_bias=True (zij always corrects).
        Parity("pytorch-optimizer", "pytorch_optimizer:SOAP",
               {"lr": 0.01, "betas": (0.9, 0.95), "weight_decay": 0.01, "precondition_frequency": 5},
               {"lr": 0.01, "betas": (0.9, 0.95), "weight_decay": 0.01, "precondition_frequency": 5}),
        Parity("pytorch-optimizer", "pytorch_optimizer:SOAP",
               {"lr": 0.01, "precondition_frequency": 3, "precondition_1d": True, "shampoo_beta": 0.9},
               {"lr": 0.01, "precondition_frequency": 3, "precondition_1d": True, "shampoo_beta": 0.9}),
    ),
))
