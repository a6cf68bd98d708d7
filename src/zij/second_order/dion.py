"""Dion: low-rank orthonormal updates by one step of power iteration with error feedback (Ahn et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_betas, check_int, check_lr, check_nonnegative, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_
from .muon_aux_adam import aux_adamw_update

__all__ = ["Dion", "dion_matrix_update"]


def dion_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum: torch.Tensor,
    q: torch.Tensor,
    *,
    lr: float,
    mu: float,
    weight_decay: float,
    epsilon: float,
) -> torch.Tensor:
    r"""One Dion step for one matrix (a kernel is flattened to ``size(0)`` rows), in place; returns $P Q^\top$.

    B = M + G;  P = QR_Q(B Q);  R = B^T P;  M <- B - (1 - mu) P R^T;  Q <- R / (column norms + eps);
    theta <- (1 - lr wd) theta - lr sqrt(d_out / d_in) P Q^T.
    The QR and the column normalization run in at least float32 (the official code: float32).
    """
    rows = grad.size(0)
    m = momentum.view(rows, -1)
    m.add_(grad.reshape(rows, -1).to(m.dtype))
    work = torch.promote_types(m.dtype, torch.float32)
    p = torch.linalg.qr((m @ q.to(m.dtype)).to(work))[0].to(m.dtype)
    r = m.T @ p
    m.addmm_(p, r.T, alpha=-(1 - mu))
    r = r.to(work)
    q.copy_(r / (r.norm(dim=0, keepdim=True) + epsilon))
    cols = m.size(1)
    update = p.to(param.dtype) @ q.T.to(param.dtype)
    decoupled_decay_(param, lr, weight_decay).add_(update.view(param.shape), alpha=-lr * (rows / cols) ** 0.5)
    return update


class Dion(ZijOptimizer):
    r"""Dion: Muon's orthonormalized momentum replaced by a rank-$r$ orthonormal update from one power-iteration step.

    Each weight matrix keeps a momentum $M$ and a right factor $Q$ ($d_{\text{in}} \times r$). Every
    step adds the gradient to the momentum, orthonormalizes $B Q$ by a QR decomposition (one
    step of subspace iteration warm-started from the last step's factor), projects the
    momentum on the result, removes the part the low-rank update captured from the momentum
    (error feedback: what was not applied waits for later steps), and steps along
    $P Q^\top$ scaled by $\sqrt{d_{\text{out}}/d_{\text{in}}}$. At full rank $P Q^\top$ approaches the
    orthogonal polar factor Muon approximates. This is the single-device algorithm of the
    official ``dion_simple.py``: the official distributed ``Dion`` computes the same update with
    the matrix products and the QR sharded over data- and tensor-parallel meshes, orthonormalizes
    with a randomized Cholesky QR (an oversampled sketch) instead of Householder QR, sets the
    rank as a fraction of the matrix size, and transposes wide matrices. Tensors of two or more
    dimensions (kernels flattened to ``size(0)`` rows, where the official class accepts only
    matrices) are stepped by Dion; the rest by AdamW, as the official ``algorithm="adamw"`` groups
    do; a group's ``use_dion`` key overrides the routing by shape (embeddings and the output layer
    belong in a ``use_dion=False`` group). $Q_0$ has standard normal entries drawn from a
    generator seeded with ``seed`` (the official code draws from the global generator).

    $$
    \begin{aligned}
    B_t &= M_{t-1} + G_t \\
    P_t &= \operatorname{QR}_Q\!\left(B_t\, Q_{t-1}\right) \\
    R_t &= B_t^{\top} P_t \\
    M_t &= B_t - (1-\mu)\, P_t R_t^{\top} \\
    Q_t &= R_t \operatorname{diag}\!\left(\lVert r_{t,1}\rVert_2 + \epsilon, \dots, \lVert r_{t,r}\rVert_2 + \epsilon\right)^{-1} \\
    X_t &= (1 - \eta\lambda)\, X_{t-1} - \eta \sqrt{d_{\text{out}}/d_{\text{in}}}\; P_t Q_t^{\top}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_dion`` (``None``:
            route by shape, ``True``: Dion, ``False``: AdamW).
        lr: learning rate $\eta$ (the official class requires it; 0.02 is its 160M-model setting), also
            AdamW's unless ``adam_lr`` is given.
        mu: momentum (error-feedback) coefficient $\mu$.
        weight_decay: decoupled weight decay $\lambda$, also AdamW's unless ``adam_weight_decay`` is given.
        rank: rank of the update, capped at the matrix's smaller side: $r = \min(\text{rank}, d_{\text{out}}, d_{\text{in}})$.
        epsilon: constant $\epsilon$ added to the column norms (also AdamW's $\epsilon$, as in the official code).
        seed: seed of the generator that draws each matrix's $Q_0$.
        adam_lr: AdamW's learning rate; ``None``: the group's ``lr``.
        adam_betas: AdamW's $(\beta_1, \beta_2)$ (the official ``betas``).
        adam_weight_decay: AdamW's decoupled weight decay; ``None``: the group's ``weight_decay``.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the momentum, of $Q$ and of AdamW's moments (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
        >>> opt = zij.Dion(model.parameters(), lr=0.02, rank=8)
        >>> model(torch.randn(8, 16)).square().mean().backward()
        >>> opt.step()

    References:
        Ahn, Xu, Abreu and Langford, "Dion: Distributed Orthonormalized Updates", 2025.
        https://arxiv.org/abs/2504.05295 (official code: https://github.com/microsoft/dion)
    """

    def __init__(self, params, lr: float = 0.02, mu: float = 0.95, weight_decay: float = 0.01, rank: int = 768,
                 epsilon: float = 1e-8, *, seed: int = 0, adam_lr: float | None = None, adam_betas=(0.9, 0.95),
                 adam_weight_decay: float | None = None, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        check_int(rank, "rank")
        check_nonnegative(epsilon, "epsilon")
        check_int(seed, "seed", minimum=0)
        check_betas(adam_betas, name="adam_betas")
        super().__init__(params, hyperparameters(
            lr=lr, mu=mu, weight_decay=weight_decay, rank=rank, epsilon=epsilon, seed=seed, adam_lr=adam_lr,
            adam_betas=tuple(adam_betas), adam_weight_decay=adam_weight_decay, maximize=maximize,
            state_dtype=state_dtype, use_dion=None))

    def add_param_group(self, param_group: dict) -> None:
        use_dion = param_group.get("use_dion")
        if use_dion not in (None, True, False):
            raise ValueError(f"Invalid use_dion: {use_dion!r} (expected True, False or None)")
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        check_lr(group["lr"])
        check_unit(group["mu"], "mu")
        check_nonnegative(group["weight_decay"], "weight_decay")
        for name in ("adam_lr", "adam_weight_decay"):
            if group[name] is not None:
                check_nonnegative(group[name], name)
        if group["use_dion"] and any(p.ndim < 2 for p in group["params"]):
            raise ValueError("Invalid use_dion: True for a group with a tensor of fewer than two dimensions "
                             "(Dion steps matrices; leave use_dion=None to route such tensors to AdamW)")

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or p.dtype
        use_dion = group.get("use_dion")
        if p.ndim >= 2 if use_dion is None else use_dion:
            state["momentum"] = self.zeros_like(p, group)
            cols = p.numel() // p.size(0)
            generator = torch.Generator(device=p.device).manual_seed(group["seed"])
            state["Q"] = torch.randn((cols, min(group["rank"], p.size(0), cols)), generator=generator,
                                     device=p.device, dtype=torch.float32).to(dtype)
        else:
            state["exp_avg"] = self.zeros_like(p, group)
            state["exp_avg_sq"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        if "Q" in state:
            dion_matrix_update(p, grad, state["momentum"], state["Q"], lr=group["lr"], mu=group["mu"],
                               weight_decay=group["weight_decay"], epsilon=group["epsilon"])
        else:
            beta1, beta2 = group["adam_betas"]
            aux_adamw_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
                             lr=group["lr"] if group["adam_lr"] is None else group["adam_lr"], beta1=beta1,
                             beta2=beta2, eps=group["epsilon"],
                             weight_decay=group["weight_decay"] if group["adam_weight_decay"] is None
                             else group["adam_weight_decay"])


register(OptimizerEntry(
    name="Dion",
    cls=Dion,
    canon_id="dion",
    family="orthogonalized",
    recipe={"lr": 0.02, "weight_decay": 0.0, "adam_lr": 0.01},
    recipes={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "rank_one": {"rank": 1},
        "weight_decay": {"weight_decay": 0.01},
    },
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"mu": 1.0}, "mu"),
        ErrorInput({"rank": 0}, "rank"),
        ErrorInput({"epsilon": -1.0}, "epsilon"),
        ErrorInput({"seed": -1}, "seed"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (0.9, 1.0)}, r"adam_betas\[1\]"),
        ErrorInput({"adam_weight_decay": -1.0}, "adam_weight_decay"),
    ),
    # The official package (microsoft/dion) is not on PyPI and compiles its update with
    # torch.compile: tests/optim/test_dion.py checks the rule by hand and its identities.
))
