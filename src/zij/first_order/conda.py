"""Conda: column-normalized Adam, its second moment kept in the singular basis of the momentum (Wang et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_


def conda_basis(momentum: torch.Tensor) -> torch.Tensor:
    """The projection basis of a matrix's momentum: its right singular vectors V^T (n x n) when it has at least as
    many rows as columns, else its left singular vectors U (m x m); the SVD runs in float32, as in the official code."""
    u, _, vh = torch.linalg.svd(momentum.float(), full_matrices=False)
    return (vh if momentum.shape[0] >= momentum.shape[1] else u).to(momentum.dtype)


def conda_update(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                 state: dict, *, step: int, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                 update_proj_gap: int, scale: float) -> None:
    """One Conda step for one tensor, in place; a matrix keeps its basis in ``state["basis"]``.

    M <- b1 M + (1 - b1) G;  every T steps from the first, Q <- singular vectors of M;
    G~, M~ = G, M in that basis;  V <- b2 V + (1 - b2) G~^2;  N = M~ / (sqrt(V) + eps), mapped back and times scale;
    W <- W - lr sqrt(1 - b2^t) / (1 - b1^t) N;  W <- (1 - lr wd) W.  Other tensors: the same step with Q = identity.
    """
    ema_(exp_avg, grad, beta1)
    matrix = param.ndim == 2
    if matrix:
        if "basis" not in state or (step - 1) % update_proj_gap == 0:
            state["basis"] = conda_basis(exp_avg)
        basis = state["basis"]
        right = param.shape[0] >= param.shape[1]
        grad = grad.to(basis.dtype)
        grad, momentum = (grad @ basis.mT, exp_avg @ basis.mT) if right else (basis.mT @ grad, basis.mT @ exp_avg)
    else:
        momentum = exp_avg
    ema_sq_(exp_avg_sq, grad, beta2)
    direction = momentum / exp_avg_sq.sqrt().add_(eps)
    if matrix:
        direction = (direction @ basis if right else basis @ direction).mul_(scale)
    param.add_(direction, alpha=-lr * math.sqrt(bias_correction(beta2, step)) / bias_correction(beta1, step))
    decoupled_decay_(param, lr, weight_decay)


class Conda(ZijOptimizer):
    r"""Conda: Adam on matrices expressed in the singular basis of their momentum.

    Every $T$ steps a matrix's momentum is decomposed by SVD, and its singular vectors
    on the shorter side become the basis $U_t$. The gradient and the momentum are
    rotated into that basis, Adam's second moment is kept entry by entry there (the
    paper calls the result column-wise normalization), and the normalized momentum is
    rotated back: the update is better conditioned than Adam's, as Muon's is, while
    keeping per-coordinate adaptivity. Weight decay is decoupled and applied after the
    step.

    $$
    \begin{aligned}
    M_t &= \beta_1 M_{t-1} + (1-\beta_1)\, G_t \\
    U_t &= \begin{cases} \text{left singular vectors of } M_t & t \equiv 1 \pmod{T} \\ U_{t-1} & \text{otherwise} \end{cases} \\
    \tilde G_t &= U_t^{\top} G_t, \qquad \tilde M_t = U_t^{\top} M_t \\
    V_t &= \beta_2 V_{t-1} + (1-\beta_2)\, \tilde G_t \odot \tilde G_t \\
    W' &= W_{t-1} - \eta\, \alpha\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, U_t \Big( \frac{\tilde M_t}{\sqrt{V_t} + \epsilon} \Big) \\
    W_t &= (1 - \eta\lambda)\, W'
    \end{aligned}
    $$

    The rule is written for a matrix with fewer rows than columns; one with at least as
    many rows as columns (square ones included) is projected from the right, by its right
    singular vectors $R_t$: $G_t R_t$, mapped back by $R_t^{\top}$. The basis is computed
    at steps $1, T+1, 2T+1, \dots$ Parameters that are not matrices (biases, norms,
    convolution kernels) take the same Adam step without projection and without
    $\alpha$, as in the official code, where they sit in groups without projection
    settings. The SVD runs in float32 whatever the dtype, as in the official code.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the projected second moment.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$, applied after the step.
        update_proj_gap: $T$, steps between recomputations of the basis.
        scale: $\alpha$, scale of the projected-back update of matrices.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Conda(model.parameters(), lr=1e-3, update_proj_gap=200)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Wang et al., "Conda: Column-Normalized Adam for Training Large Language Models Faster", arXiv 2025.
        https://arxiv.org/abs/2509.24218
    """

    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 update_proj_gap: int = 2000, scale: float = 1.0, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                   update_proj_gap=update_proj_gap, scale=scale, maximize=maximize,
                                   state_dtype=state_dtype)
        check_int(update_proj_gap, "update_proj_gap")
        check_positive(scale, "scale")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        conda_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state, step=state["step"], lr=group["lr"],
                     beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     update_proj_gap=group["update_proj_gap"], scale=group["scale"])


register(OptimizerEntry(
    name="Conda",
    cls=Conda,
    canon_id="conda",
    family="adam-family",
    recipe={"lr": 0.05, "update_proj_gap": 10},
    recipes={"rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(elementwise=False),
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"update_proj_gap": 0}, "update_proj_gap"),
        ErrorInput({"scale": 0.0}, "scale"),
    ),
    parity=(
        # pytorch-optimizer passes the 1-based step where the official code passes the 0-based one, so its basis is
        # recomputed at steps 1, T, 2T, ... instead of 1, T + 1, 2T + 1, ...: they agree for T = 1 (every step) and
        # for T beyond the 50 steps compared.
        Parity("pytorch-optimizer", "pytorch_optimizer:Conda",
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "update_proj_gap": 1, "scale": 0.5},
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "update_proj_gap": 1, "scale": 0.5}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Conda",
               {"lr": 1e-2, "betas": (0.9, 0.99), "update_proj_gap": 100},
               {"lr": 1e-2, "betas": (0.9, 0.99), "update_proj_gap": 100}),
    ),
))
