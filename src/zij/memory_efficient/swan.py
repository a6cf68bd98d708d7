"""SWAN: stateless SGD on the normalized and whitened gradient (Ma, Gong, Scetbon and Meeds, 2025)."""

from __future__ import annotations

import torch

from .._base import check_positive
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_
from ..second_order.muon_aux_adam import MuonWithAuxAdam, routed_defaults

__all__ = ["SWAN", "grad_norm", "grad_whitening", "swan_matrix_update"]


def grad_norm(g: torch.Tensor, eps: float) -> torch.Tensor:
    r"""GradNorm: each row of the matrix ``g`` standardized over its $n$ entries.

    $\tilde G_{ij} = (G_{ij} - \mu_i) / (\sigma_i + \epsilon)$ with the row's mean $\mu_i$ and its
    standard deviation $\sigma_i$ (divided by $n$, not $n - 1$).
    """
    centered = g - g.mean(dim=1, keepdim=True)
    std = centered.square().mean(dim=1, keepdim=True).sqrt()
    return centered / (std + eps)


def grad_whitening(g: torch.Tensor, steps: int, beta: float, eps: float) -> torch.Tensor:
    r"""GradWhitening: $(G G^\top)^{-1/2} G$ by the coupled Newton-Schulz iteration, on the smaller side.

    ``g`` is GradNorm's output: its rows sum to zero. For a wide ``g`` ($m < n$),
    $X = G / (\lVert G\rVert_F + \epsilon)$ and $Y_0 = X X^\top$; otherwise the iteration runs on
    $X = G^\top / (\lVert G\rVert_F + \epsilon)$, whose Gram matrix has the null vector $\mathbf{1}$ (the
    rows of $G$ sum to zero), and $Y_0 = X X^\top + \mathbf{1}\mathbf{1}^\top / n$ gives that direction
    the eigenvalue 1. Then, with $Z_0 = I$, ``steps`` times $T = 3I - Z Y$, $Y \leftarrow \beta Y T$,
    $Z \leftarrow \beta T Z$; the result is $Z X$ (transposed back for $m \ge n$). With $\beta = 1/2$,
    $Z$ tends to the inverse square root of $Y_0$, so $Z X$ tends to the polar factor $U V^\top$ of
    $G = U \Sigma V^\top$ on its nonzero singular values. The added $\mathbf{1}\mathbf{1}^\top / n$ commutes
    with $X X^\top$ and is orthogonal to $X$, so in exact arithmetic it changes nothing; in floating
    point it stops the iteration from multiplying rounding noise along $\mathbf{1}$ by up to 1.5 per
    step (and from overflowing where that eigenvalue rounds below zero). Other null directions (a
    gradient of lower rank) are not known in advance: noise along them grows by at most 1.5 per step,
    which is harmless at the default 15 steps (a factor of about 438).
    """
    rows, cols = g.shape
    tall = rows >= cols
    x = g.mT if tall else g
    x = x / (torch.linalg.matrix_norm(x) + eps)
    y = x @ x.mT
    if tall:
        y = y + 1 / cols  # the projector 1 1^T / n onto the Gram matrix's known null vector
    identity = torch.eye(y.size(0), dtype=y.dtype, device=y.device)
    z = identity
    for _ in range(steps):
        t = 3 * identity - z @ y
        y = beta * (y @ t)
        z = beta * (t @ z)
    out = z @ x
    return out.mT if tall else out


def swan_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    *,
    lr: float,
    weight_decay: float,
    eps: float,
    beta: float,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
) -> torch.Tensor:
    r"""One SWAN step for one matrix (a kernel is flattened to ``size(0)`` rows), in place; returns the update.

    U = GradWhitening(GradNorm(G));  theta <- (1 - lr wd) theta - lr U. Both run in ``ns_dtype``
    (``None``: the gradient's dtype, at least float32); no state is read or kept.
    """
    matrix = grad.reshape(grad.size(0), -1)
    work = matrix.to(ns_dtype or torch.promote_types(matrix.dtype, torch.float32))
    update = grad_whitening(grad_norm(work, eps), ns_steps, beta, eps).to(param.dtype).view(param.shape)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)
    return update


class SWAN(MuonWithAuxAdam):
    r"""SWAN: SGD on the row-standardized, whitened gradient of each matrix, with no optimizer state.

    Each step takes only the current gradient of a weight matrix: GradNorm standardizes
    every row (subtracts its mean, divides by its standard deviation), GradWhitening
    multiplies the result by the inverse square root of its Gram matrix, computed by a
    coupled Newton-Schulz iteration on the smaller side, and the whitened matrix, which
    tends to the orthogonal polar factor of the normalized gradient, is applied as an SGD
    step. Matrices keep no state, so their memory is that of SGD. Because every row of the
    update sums to zero, the row means of a matrix change only through weight decay (and a
    matrix of one column, whose rows standardize to zero, does not move: route it to AdamW). For
    $m \ge n$ the iteration runs on the transpose, whose Gram matrix is singular along
    $\mathbf{1}$ (GradNorm's rows sum to zero); zij gives that direction the eigenvalue 1, which leaves the result unchanged in
    exact arithmetic and keeps the iteration from amplifying rounding noise there.
    Tensors of fewer than two dimensions are stepped by AdamW, as the paper trains non-matrix
    parameters with Adam; a group's ``use_muon`` key (the name of :class:`MuonWithAuxAdam`,
    whose routing this class reuses) overrides the routing by shape: ``True`` sends all its
    tensors to SWAN, ``False`` to AdamW. The paper also trains the embeddings and the output
    layer with Adam: put them in a group with ``use_muon=False``. Kernels of more than two
    dimensions are flattened to their rows. There is no ``state_dtype``: matrices have no state,
    and AdamW's state takes each tensor's dtype. The defaults (``lr``, ``ns_steps``, the AdamW
    settings) are zij's choice.

    $$
    \begin{aligned}
    &\text{matrices } \theta \text{ of shape } m \times n \text{ (kernels flattened to } m \text{ rows):} \\
    \tilde G_t &= \operatorname{GradNorm}(G_t), \qquad \tilde G_{t,ij} = \frac{G_{t,ij} - \mu_i}{\sigma_i + \epsilon}, \qquad \mu_i = \frac{1}{n} \sum_{j=1}^{n} G_{t,ij}, \qquad \sigma_i = \sqrt{\frac{1}{n} \sum_{j=1}^{n} \left(G_{t,ij} - \mu_i\right)^{2}} \\
    X &= \frac{\tilde G_t}{\lVert \tilde G_t\rVert_F + \epsilon}, \qquad Y_0 = X X^{\top} \qquad (m < n) \\
    X &= \frac{\tilde G_t^{\top}}{\lVert \tilde G_t\rVert_F + \epsilon}, \qquad Y_0 = X X^{\top} + \frac{1}{n} \mathbf{1} \mathbf{1}^{\top} \qquad (m \ge n) \\
    Z_0 &= I, \qquad Y_{k+1} = \beta\, Y_k \left(3I - Z_k Y_k\right), \qquad Z_{k+1} = \beta \left(3I - Z_k Y_k\right) Z_k, \qquad k = 0, \dots, K-1 \\
    U_t &= \begin{cases} Z_K X & m < n \\ \left(Z_K X\right)^{\top} & m \ge n \end{cases} \qquad \approx \left(\tilde G_t \tilde G_t^{\top}\right)^{-1/2} \tilde G_t \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, U_t \\
    &\text{other tensors (AdamW):} \quad m_t = \beta_{a1} m_{t-1} + (1-\beta_{a1})\, g_t, \qquad v_t = \beta_{a2} v_{t-1} + (1-\beta_{a2})\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_{a1}^{t})}{\sqrt{v_t / (1-\beta_{a2}^{t})} + \epsilon_a}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step (for a matrix, its whole update), as in torch.optim, and into AdamW's state; stop or
    restore a checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises
    before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: SWAN, ``False``: AdamW).
        lr: learning rate $\eta$ of the matrices, in units of spectral norm per step (zij's choice,
            as zij's Muon).
        weight_decay: decoupled weight decay $\lambda$ of the matrices (0: the paper's update).
        eps: $\epsilon$ added to each row's standard deviation and to the Frobenius norm before the
            iteration (> 0, so that a row of equal entries or a zero gradient gives a zero update).
        beta: step $\beta$ of the Newton-Schulz iteration, in (1/3, 2/3): $1/2$ converges
            quadratically to the inverse square root; another value converges linearly to
            $\sqrt{3 - 1/\beta}$ times it.
        ns_steps: number $K$ of Newton-Schulz iterations (15 amplify a small singular value by up to
            $1.5^{15} \approx 438$, about as much as Muon's five quintic steps, $3.4445^5 \approx 484$).
        ns_dtype: dtype GradNorm and GradWhitening run in; ``None``: the gradient's, at least float32.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr``.
        adam_betas: AdamW's $(\beta_{a1}, \beta_{a2})$.
        adam_eps: AdamW's $\epsilon_a$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.SWAN(model.parameters(), lr=0.02, adam_lr=1e-3)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ma, Gong, Scetbon and Meeds, "SWAN: SGD with Normalization and Whitening Enables Stateless
        LLM Training", ICML 2025. https://arxiv.org/abs/2412.13148
    """

    def __init__(self, params, lr: float = 0.02, weight_decay: float = 0.0, *, eps: float = 1e-8,
                 beta: float = 0.5, ns_steps: int = 15, ns_dtype: torch.dtype | None = None,
                 adam_lr: float | None = 1e-3, adam_betas=(0.9, 0.999), adam_eps: float = 1e-8,
                 adam_weight_decay: float = 0.0, maximize: bool = False):
        check_positive(eps, "eps")
        _check_beta(beta)
        defaults = routed_defaults(
            lr=lr, weight_decay=weight_decay, eps=eps, beta=beta, nesterov=False, ns_steps=ns_steps,
            ns_dtype=ns_dtype, adam_lr=adam_lr, adam_betas=adam_betas, adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay, maximize=maximize)
        del defaults["nesterov"]  # SWAN has no momentum
        super(MuonWithAuxAdam, self).__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        # MuonWithAuxAdam's checks (use_muon, the learning rates) include its momentum, which SWAN
        # does not have: they run on the group with a neutral momentum, whose key is then dropped.
        super().add_param_group({**param_group, "momentum": 0.0})
        group = self.param_groups[-1]
        del group["momentum"]
        check_positive(group["eps"], "eps")
        _check_beta(group["beta"])

    def init_matrix_state(self, p, state, group):
        """SWAN keeps no state for a matrix (only the step count every tensor has)."""

    def matrix_update(self, p, grad, state, group):
        swan_matrix_update(p, grad, lr=group["lr"], weight_decay=group["weight_decay"], eps=group["eps"],
                           beta=group["beta"], ns_steps=group["ns_steps"], ns_dtype=group["ns_dtype"])

    def update(self, p, grad, state, group):
        if "exp_avg" in state:  # created by init_state for the tensors routed to AdamW
            super().update(p, grad, state, group)
        else:
            self.matrix_update(p, grad, state, group)


def _check_beta(beta) -> None:
    if not isinstance(beta, (int, float)) or isinstance(beta, bool) or not 1 / 3 < beta < 2 / 3:
        raise ValueError(f"Invalid beta: {beta!r} (expected a number in (1/3, 2/3); 1/2 is the classical step)")


register(OptimizerEntry(
    name="SWAN",
    cls=SWAN,
    canon_id="swan",
    family="orthogonalized",
    recipe={"lr": 0.02, "adam_lr": 0.01},
    # The update's rows sum to zero (GradNorm centres each row and the polar factor keeps that
    # null vector), so without decay a matrix's row means never move: on the quadratic (all
    # entries 2, minimum 0) decoupled decay carries them to the minimum.
    recipes={"quadratic": {"lr": 0.02, "weight_decay": 0.5}},
    capabilities=Capabilities(elementwise=False),
    # No weight-decay variant: the quadratic's recipe already decays, and a variant would override it
    # (test_swan.py checks the decay against a hand step and AdamW's against torch.optim.AdamW).
    variants={"beta": {"beta": 0.6}},
    skips={"rosenbrock": "the 1 x 2 parameter is a matrix of one row: SWAN's update is +-(1, -1)/sqrt(2) "
                         "(the row standardized and whitened), so a + b stays at its start 0.5 (or decays to 0 "
                         "with weight decay) and the minimum (1, 1) is out of reach; test_swan.py checks the "
                         "row-sum identity"},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"eps": 0.0}, "eps"),
        ErrorInput({"beta": 0.3}, "beta"),
        ErrorInput({"beta": 0.7}, "beta"),
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"ns_dtype": torch.int32}, "ns_dtype"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (0.9, 1.0)}, r"adam_betas\[1\]"),
        ErrorInput({"adam_eps": -1.0}, "adam_eps"),
        ErrorInput({"adam_weight_decay": -1.0}, "adam_weight_decay"),
    ),
    # No installable upstream: the official code (microsoft/msr_optim) is not on PyPI and
    # pytorch-optimizer 4.1.0 has no SWAN. tests/optim/test_swan.py checks GradNorm's moments,
    # the whitening against the SVD's polar factor, hand-computed steps and the AdamW fallback.
))
