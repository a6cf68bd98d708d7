"""PSGD (Kron): Kronecker-factored preconditioners fitted online to random probes (Li, 2015/2018)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from .shampoo import matrix_dtype, work_dtype

MEMORY_SAVE_MODES = (None, "one_diag", "smart_one_diag", "all_diag")
#: Added to the normalizers of the fit step (the smallest normal bfloat16 number, as in kron_torch).
FIT_EPS = torch.finfo(torch.bfloat16).tiny


def seed_for(seed: int, step: int, stream: int) -> int:
    """The generator seed of step ``step`` (stream 0: probes, 1: the balancing coin); distinct in the low 32 bits."""
    return (seed * 2654435761 * 4 + step * 2 + stream) % 2**63


def probe(shape, *, seed: int, step: int, dtype: torch.dtype, device) -> torch.Tensor:
    """The standard normal probe $V$ of step ``step``: a fresh generator seeded from (seed, step).

    Every parameter of a group draws the same stream at a step (each factor is fitted to its own
    parameter only, so the draws need no independence across parameters), and a checkpoint needs no
    generator state: resuming at step t draws what the uninterrupted run draws.
    """
    generator = torch.Generator(device=device).manual_seed(seed_for(seed, step, 0))
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def coin(*, seed: int, step: int) -> float:
    """A uniform number in [0, 1) for step ``step``, deciding whether the factors are rebalanced."""
    return torch.rand((), generator=torch.Generator().manual_seed(seed_for(seed, step, 1)), dtype=torch.float64).item()


def update_probability_schedule(step: int, max_prob: float = 1.0, min_prob: float = 0.03, decay: float = 0.001,
                                flat_start: int = 500) -> float:
    """kron_torch's default probability of a fit step, after ``step`` steps: 1 for 500 steps, then decaying to 0.03.

    Computed in float32 as the reference does (the comparison ``counter >= 1 / p`` depends on it).
    """
    prob = max_prob * torch.exp(-decay * (torch.tensor(step, dtype=torch.float32) - flat_start))
    return prob.clamp(min=min_prob, max=max_prob)


def mode_apply(x: torch.Tensor, i: int, factor: torch.Tensor) -> torch.Tensor:
    """Multiply mode ``i`` of ``x`` by ``factor``: a matrix from the left, or a vector elementwise."""
    if factor.ndim == 1:
        return x * factor.reshape([-1] + [1] * (x.ndim - 1 - i))
    return torch.tensordot(factor, x.movedim(i, 0), dims=1).movedim(0, i)


def mode_solve_transposed(x: torch.Tensor, i: int, factor: torch.Tensor) -> torch.Tensor:
    """Multiply mode ``i`` of ``x`` by ``factor^{-T}`` (a triangular solve), or divide by a diagonal factor."""
    if factor.ndim == 1:
        return x / factor.reshape([-1] + [1] * (x.ndim - 1 - i))
    moved = x.movedim(i, 0)
    solved = torch.linalg.solve_triangular(factor.mT, moved.reshape(moved.shape[0], -1), upper=False)
    return solved.reshape(moved.shape).movedim(0, i)


def mode_gram(x: torch.Tensor, i: int, diagonal: bool) -> torch.Tensor:
    """``unfold_i(x) unfold_i(x)^T``, or only its diagonal (a vector) for a diagonal factor."""
    others = [d for d in range(x.ndim) if d != i]
    if diagonal:
        return x.square().sum(dim=others) if others else x.square()
    return torch.tensordot(x, x, dims=(others, others))


def upper_triangle(x: torch.Tensor) -> torch.Tensor:
    """triu(x) through an index mask (torch.triu's threaded kernel stalls on small matrices of a busy CPU)."""
    index = torch.arange(x.shape[0], device=x.device)
    return torch.where(index[:, None] <= index[None, :], x, torch.zeros((), dtype=x.dtype, device=x.device))


def spectral_norm_lower_bound(s: torch.Tensor) -> torch.Tensor:
    """A cheap lower bound of the spectral norm of a symmetric matrix (Li's norm_lower_bound).

    With the matrix scaled by its largest entry and c its column of largest norm, x = S c and the bound is
    ||S x|| / ||x||: one power-iteration step from the dominant column.
    """
    scale = s.abs().max()
    s = s / torch.where(scale > 0, scale, torch.ones_like(scale))
    column = s[:, torch.argmax(s.square().sum(dim=0))]
    x = s @ column
    x = x / torch.linalg.vector_norm(x).clamp_min(torch.finfo(s.dtype).tiny)
    return scale * torch.linalg.vector_norm(s @ x)


def fit_factors_(factors: list, pair: torch.Tensor, v: torch.Tensor, *, lr: float) -> None:
    """One relative-gradient step of every factor on the criterion E[h^T P h + v^T P^{-1} v], in place.

    A = pair x_1 Q_1 ... x_k Q_k,  B = v x_1 Q_1^{-T} ... x_k Q_k^{-T}; per mode i with T1 = A_(i) A_(i)^T,
    T2 = B_(i) B_(i)^T: Q <- Q - lr triu(T1 - T2) Q / (lower bound of ||T1 + T2|| + eps) for a triangular
    factor, q <- q - lr (T1 - T2) q / (max |T1 + T2| + eps) for a diagonal one (diagonals of T1, T2).
    """
    a, b = pair, v
    for i, factor in enumerate(factors):
        a = mode_apply(a, i, factor)
        b = mode_solve_transposed(b, i, factor)
    for i, factor in enumerate(factors):
        diagonal = factor.ndim == 1
        t1, t2 = mode_gram(a, i, diagonal), mode_gram(b, i, diagonal)
        if diagonal:
            factor.sub_((t1 - t2).mul_(factor).mul_(lr).div_((t1 + t2).abs().max().add_(FIT_EPS)))
        else:
            step = upper_triangle(t1 - t2).mul_(lr).div_(spectral_norm_lower_bound(t1 + t2).add_(FIT_EPS))
            factor.sub_(step @ factor)


def balance_factors_(factors: list) -> None:
    """Rescale the factors to equal largest entries (their geometric mean); the preconditioner is unchanged."""
    norms = torch.stack([f.abs().max() for f in factors])
    target = norms.prod() ** (1 / len(factors))
    for factor, norm in zip(factors, norms):
        factor.mul_(target / norm)


def precondition(x: torch.Tensor, factors: list) -> torch.Tensor:
    """P x = x x_1 Q_1^T Q_1 ... x_k Q_k^T Q_k (q^2 for a diagonal factor)."""
    for i, factor in enumerate(factors):
        x = mode_apply(x, i, factor.square() if factor.ndim == 1 else factor.mT @ factor)
    return x


def psgd_kron_update(param, grad, momentum_buffer, factors: list, *, step: int, lr: float, momentum: float,
                     weight_decay: float, fit: bool, balance: bool, v_seed: int, fit_with_momentum: bool,
                     preconditioner_lr: float) -> None:
    """One PSGD-Kron step for one tensor (a 0-dim tensor is viewed as one entry), in place.

    m <- beta m + (1 - beta) g;  m_hat = m / (1 - beta^t);  on fit steps: rebalance (if drawn), then fit the
    factors to (m_hat or g, V);  u = P m_hat, scaled to RMS at most 1.1;  theta <- theta - lr (u + wd theta)
    (decay for tensors of order >= 2 only).
    """
    dtype = work_dtype(factors[0].dtype)
    momentum_buffer.mul_(momentum).add_(grad, alpha=1 - momentum)
    m_hat = (momentum_buffer / (1 - momentum**step)).to(dtype).reshape(-1 if param.ndim == 0 else param.shape)
    if balance and len(factors) > 1:
        balance_factors_(factors)
    if fit:
        pair = m_hat if fit_with_momentum else grad.to(dtype).reshape(m_hat.shape)
        v = probe(m_hat.shape, seed=v_seed, step=step, dtype=factors[0].dtype, device=param.device)
        work = [f.to(dtype) for f in factors]
        fit_factors_(work, pair, v.to(dtype), lr=preconditioner_lr)
        for f, w in zip(factors, work):
            f.copy_(w)
    update = precondition(m_hat, [f.to(dtype) for f in factors])
    update = update * torch.clamp(1.1 / (update.square().mean().sqrt() + 1e-6), max=1.0)
    if weight_decay != 0 and param.ndim >= 2:
        update = update + weight_decay * param.to(dtype)
    param.add_(update.reshape(param.shape).to(param.dtype), alpha=-lr)


def kron_factors(p: torch.Tensor, *, init_scale: float, max_size: int, min_ndim: int, memory_save_mode: str | None,
                 dtype: torch.dtype) -> list:
    """Initial factors: scale^(1/k) I (triangular) or scale^(1/k) 1 (diagonal) per dimension of size n.

    A dimension gets a diagonal factor when n = 1, n > max_size, the tensor has fewer than min_ndim
    dimensions, or the memory-saving mode picks it (one_diag: the largest dimension; smart_one_diag: the
    largest if strictly larger than the others; all_diag: every dimension).
    """
    shape = tuple(p.shape) or (1,)
    scale = init_scale ** (1 / len(shape))
    diagonal = [False] * len(shape)
    largest = max(range(len(shape)), key=lambda i: (shape[i], i))  # ties: the last such dimension, as kron_torch
    ordered = sorted(shape)
    if memory_save_mode == "all_diag":
        diagonal = [True] * len(shape)
    elif memory_save_mode == "one_diag" or (memory_save_mode == "smart_one_diag" and len(shape) >= 2
                                           and ordered[-1] > ordered[-2]):
        diagonal[largest] = True
    factors = []
    for n, diag in zip(shape, diagonal):
        if diag or n == 1 or n > max_size or p.ndim < min_ndim:
            factors.append(torch.full((n,), scale, dtype=dtype, device=p.device))
        else:
            factors.append(torch.eye(n, dtype=dtype, device=p.device).mul_(scale))
    return factors


class PSGDKron(ZijOptimizer):
    r"""PSGD (Kron): precondition with Kronecker factors fitted online to random probes.

    Each tensor keeps one factor per dimension, upper triangular (diagonal for large or size-1
    dimensions, for vectors, or where ``memory_save_mode`` says); the preconditioner is
    $P = \bigotimes_i Q_i^{\top} Q_i$. The factors are not built from accumulated statistics:
    on each fit step they take one normalized relative-gradient step on the criterion
    $\mathbb{E}[h^{\top} P h + v^{\top} P^{-1} v]$, pairing the bias-corrected momentum $h$
    with a standard normal probe $V$, whose minimizer whitens $h$. The step is the
    preconditioned momentum, scaled down to a root mean square of at most 1.1. This is
    kron_torch's ``Kron`` (Evan Walters), the form pytorch_optimizer ships.

    $$
    \begin{aligned}
    m_t &= \beta m_{t-1} + (1-\beta)\, g_t, \qquad \hat m_t = \frac{m_t}{1-\beta^{t}} \\
    A &= Q_1\, \hat m_t\, Q_2^{\top}, \qquad B = Q_1^{-\top}\, V_t\, Q_2^{-1}, \qquad V_t \sim \mathcal{N}(0, I) \\
    Q_1 &\leftarrow Q_1 - \frac{\mu}{\lVert A A^{\top} + B B^{\top}\rVert_{\mathrm{lb}} + \epsilon}\, \operatorname{triu}\big(A A^{\top} - B B^{\top}\big)\, Q_1 \\
    Q_2 &\leftarrow Q_2 - \frac{\mu}{\lVert A^{\top} A + B^{\top} B\rVert_{\mathrm{lb}} + \epsilon}\, \operatorname{triu}\big(A^{\top} A - B^{\top} B\big)\, Q_2 \\
    u_t &= Q_1^{\top} Q_1\, \hat m_t\, Q_2^{\top} Q_2, \qquad \hat u_t = u_t \min\Big(1, \frac{1.1}{\operatorname{RMS}(u_t) + 10^{-6}}\Big) \\
    \theta_t &= \theta_{t-1} - \eta\, \big(\hat u_t + \lambda\, \theta_{t-1}\big)
    \end{aligned}
    $$

    The factor lines run only on fit steps: with ``preconditioner_update_probability`` p, a
    step is a fit step when the steps since the last one reach $1/p$ (a counter, not a coin;
    ``None``: p = 1 for 500 steps, then $e^{-0.001 (t - 500)}$, at least 0.03). On a fit step,
    with probability ``balance_prob``, the factors of a tensor of order $\ge 2$ are first
    rescaled to equal largest entries, which leaves $P$ unchanged. $\lVert\cdot\rVert_{\mathrm{lb}}$
    is a one-step power-iteration lower bound of the spectral norm, $\epsilon$ the smallest
    normal bfloat16 number. A diagonal factor $q$ takes
    $q \leftarrow q - \mu\, (a^2 - b^2) \odot q / (\max|a^2 + b^2| + \epsilon)$, with $a^2$, $b^2$
    the squares of $A$, $B$ summed over the other dimensions; a tensor of order $k$ has
    $k$ factors ($Q_i$ along dimension $i$), a 0-dim tensor one diagonal factor of size one.
    Weight decay applies to tensors of order $\ge 2$ only.

    The probes are explicit and seedable: $V_t$ comes from a generator seeded from (``seed``,
    $t$), and the balancing coin likewise, so a run is reproducible, a checkpoint needs no
    generator state, and the draws do not touch torch's global generator. The factors are
    kept in the state dtype (the parameter's, float32 for half precision) and computed in
    float32 at least.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: $\beta$, decay of the momentum (0: none).
        weight_decay: $\lambda$, decoupled weight decay (tensors of order $\ge 2$).
        preconditioner_update_probability: p, fraction of steps that fit the factors (``None``: the schedule above).
        max_size_triangular: dimensions larger than this get a diagonal factor.
        min_ndim_triangular: tensors with fewer dimensions get diagonal factors only.
        memory_save_mode: ``None``, ``"one_diag"``, ``"smart_one_diag"`` or ``"all_diag"``: dimensions made diagonal.
        momentum_into_precondition_update: fit the factors to $\hat m_t$ (else to the raw gradient $g_t$).
        preconditioner_lr: $\mu$, step size of the fit.
        preconditioner_init_scale: the initial preconditioner is this times the identity.
        balance_prob: probability of rebalancing the factors on a fit step.
        seed: seed of the probes and of the balancing coin.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's, float32 for half precision factors).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.PSGDKron(model.parameters(), lr=1e-3, weight_decay=1e-4)
        >>> for _ in range(2):
        ...     model(torch.randn(8, 4)).square().mean().backward()
        ...     opt.step()
        ...     opt.zero_grad()

    References:
        Xi-Lin Li, "Preconditioned Stochastic Gradient Descent", IEEE TNNLS 2018.
        https://arxiv.org/abs/1512.04202
        kron_torch (Evan Walters), the implementation this class follows. https://github.com/evanatyourservice/kron_torch
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, weight_decay: float = 0.0,
                 preconditioner_update_probability: float | None = None, max_size_triangular: int = 8192,
                 min_ndim_triangular: int = 2, memory_save_mode: str | None = None,
                 momentum_into_precondition_update: bool = True, preconditioner_lr: float = 0.1,
                 preconditioner_init_scale: float = 1.0, balance_prob: float = 0.01, seed: int = 0, *,
                 maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(
            lr=lr, momentum=momentum, weight_decay=weight_decay,
            preconditioner_update_probability=preconditioner_update_probability,
            max_size_triangular=max_size_triangular, min_ndim_triangular=min_ndim_triangular,
            memory_save_mode=memory_save_mode, momentum_into_precondition_update=momentum_into_precondition_update,
            preconditioner_lr=preconditioner_lr, preconditioner_init_scale=preconditioner_init_scale,
            balance_prob=balance_prob, seed=seed, maximize=maximize, state_dtype=state_dtype)
        if preconditioner_update_probability is not None:
            p = preconditioner_update_probability
            if not isinstance(p, (int, float)) or not 0 < p <= 1:
                raise ValueError(f"Invalid preconditioner_update_probability: {p!r} (expected a number in (0, 1] or None)")
        check_int(max_size_triangular, "max_size_triangular")
        check_int(min_ndim_triangular, "min_ndim_triangular", minimum=0)
        if memory_save_mode not in MEMORY_SAVE_MODES:
            raise ValueError(f"Invalid memory_save_mode: {memory_save_mode!r} (expected one of {MEMORY_SAVE_MODES})")
        check_positive(preconditioner_lr, "preconditioner_lr")
        check_positive(preconditioner_init_scale, "preconditioner_init_scale")
        check_unit(balance_prob, "balance_prob", closed=True)
        check_int(seed, "seed", minimum=0)
        super().__init__(params, defaults)
        self._fit, self._balance = False, False

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = matrix_dtype(p, group["state_dtype"])
        state["momentum_buffer"] = self.zeros_like(p, group)
        state["factors"] = kron_factors(p, init_scale=group["preconditioner_init_scale"],
                                        max_size=group["max_size_triangular"], min_ndim=group["min_ndim_triangular"],
                                        memory_save_mode=group["memory_save_mode"], dtype=dtype)

    @torch.compiler.disable  # bookkeeping on Python and float32 scalars, run eagerly (traced, the fit decision came out False)
    def global_step(self, gathered):
        """Decide once per step, from the first group's settings, whether to fit and whether to rebalance."""
        first = self.param_groups[0]
        taken = first.get("kron_steps", 0)
        prob = first["preconditioner_update_probability"]
        if prob is None:
            prob = update_probability_schedule(taken)
        counter = first.get("update_counter", 0) + 1
        self._fit = bool(prob > 0 and counter >= 1 / prob)
        first["update_counter"] = 0 if self._fit else counter
        first["kron_steps"] = taken + 1
        self._balance = self._fit and coin(seed=first["seed"], step=taken + 1) < first["balance_prob"]

    def update(self, p, grad, state, group):
        psgd_kron_update(p, grad, state["momentum_buffer"], state["factors"], step=state["step"], lr=group["lr"],
                         momentum=group["momentum"], weight_decay=group["weight_decay"], fit=self._fit,
                         balance=self._balance, v_seed=group["seed"],
                         fit_with_momentum=group["momentum_into_precondition_update"],
                         preconditioner_lr=group["preconditioner_lr"])


register(OptimizerEntry(
    name="PSGDKron",
    cls=PSGDKron,
    canon_id="psgd-kron",
    family="preconditioned",
    aliases=("Kron",),
    recipe={"lr": 0.03},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"preconditioner_update_probability": 0.0}, "preconditioner_update_probability"),
        ErrorInput({"max_size_triangular": 0}, "max_size_triangular"),
        ErrorInput({"min_ndim_triangular": -1}, "min_ndim_triangular"),
        ErrorInput({"memory_save_mode": "some_diag"}, "memory_save_mode"),
        ErrorInput({"preconditioner_lr": 0.0}, "preconditioner_lr"),
        ErrorInput({"preconditioner_init_scale": -1.0}, "preconditioner_init_scale"),
        ErrorInput({"balance_prob": 1.5}, "balance_prob"),
        ErrorInput({"seed": -1}, "seed"),
    ),
    capabilities=Capabilities(elementwise=False),
    variants={
        "all_diag": {"memory_save_mode": "all_diag"},
        "grad_fit_no_momentum": {"momentum": 0.0, "momentum_into_precondition_update": False},
        "balanced_sparse_fits": {"balance_prob": 0.5, "preconditioner_update_probability": 0.5},
    },
    # parity with pytorch_optimizer's Kron needs its probes drawn from our generators: tests/optim/test_psgd_kron.py
))
