"""AdaGO: Muon's orthogonalized momentum with an AdaGrad-Norm step size (Zhang, Liu and Schaeffer, 2025)."""

from __future__ import annotations

import torch

from .._base import check_positive
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, newton_schulz
from .muon_aux_adam import MuonWithAuxAdam, routed_defaults

__all__ = ["AdaGO", "adago_matrix_update"]


def adago_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    v: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    gamma: float,
    eps: float,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
    weight_decay: float,
) -> None:
    r"""One AdaGO step for one matrix (a kernel is flattened to ``size(0)`` rows), in place.

    M <- lerp(M, G, 1 - mu);  v <- sqrt(v^2 + min(||G||, gamma)^2);  O = NS(M);
    theta <- (1 - lr wd) theta - max(eps, lr min(||G||, gamma) / v) O.
    ``v`` is a 0-dim tensor: the root of the accumulated capped squared gradient norms.
    """
    momentum_buffer.lerp_(grad.to(momentum_buffer.dtype), 1 - momentum)
    capped_norm = torch.linalg.vector_norm(grad).clamp_max(gamma)
    v.copy_(v.square().add_(capped_norm.square().to(v.dtype)).sqrt_())
    matrix = momentum_buffer.to(grad.dtype).reshape(grad.size(0), -1)
    update = newton_schulz(matrix.to(ns_dtype or matrix.dtype), ns_steps).to(grad.dtype)
    step_size = (capped_norm * lr / v.to(grad.dtype)).clamp_min(eps)
    decoupled_decay_(param, lr, weight_decay).sub_(update.view(param.shape) * step_size)


class AdaGO(MuonWithAuxAdam):
    r"""AdaGO: Muon's orthogonalized momentum with an AdaGrad-Norm step length.

    The direction is the orthogonalized momentum, as in Muon; its length is set by an
    AdaGrad-Norm rule with one scalar of state per matrix: the root $v_t$ of the accumulated
    squared gradient norms, each capped at $\gamma^2$, divides the current capped gradient norm,
    and the resulting step is floored at $\epsilon$. The direction keeps its exact
    orthogonality (no per-coordinate scaling). As in Muon with its auxiliary AdamW, tensors
    of fewer than two dimensions are stepped by AdamW; a group's ``use_muon`` key overrides
    the routing by shape (see :class:`MuonWithAuxAdam`: embeddings and output layers belong in
    a ``use_muon=False`` group). Kernels of more than two dimensions are flattened to their rows.

    $$
    \begin{aligned}
    M_t &= \mu M_{t-1} + (1-\mu)\, G_t \\
    v_t &= \sqrt{v_{t-1}^{2} + \min\!\left(\lVert G_t\rVert_F, \gamma\right)^{2}} \\
    O_t &= \operatorname{NS}_K(M_t) \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \max\!\left(\epsilon, \frac{\eta\, \min(\lVert G_t\rVert_F, \gamma)}{v_t}\right) O_t \\
    X_0 &= \frac{M_t}{\lVert M_t\rVert_F + 10^{-7}}, \qquad X_{k+1} = a X_k + \left(b A_k + c A_k^{2}\right) X_k, \quad A_k = X_k X_k^{\top}, \quad (a, b, c) = (3.4445, -4.7750, 2.0315) \\
    &\text{other tensors (AdamW):} \quad m_t = \beta_{a1} m_{t-1} + (1-\beta_{a1})\, g_t, \qquad s_t = \beta_{a2} s_{t-1} + (1-\beta_{a2})\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_{a1}^{t})}{\sqrt{s_t / (1-\beta_{a2}^{t})} + \epsilon_a}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: AdaGO, ``False``: AdamW).
        lr: base learning rate $\eta$ of the matrices.
        momentum: momentum $\mu$.
        weight_decay: decoupled weight decay $\lambda$ of the matrices (not in the paper; 0 gives its rule).
        gamma: cap $\gamma$ on the gradient norm, in the accumulator and in the step.
        eps: floor $\epsilon$ of the step size.
        v0: the accumulator's start $v_0 > 0$.
        ns_steps: number $K$ of Newton-Schulz iterations.
        ns_dtype: dtype the Newton-Schulz iteration runs in (Muon's official code: ``torch.bfloat16``);
            ``None``: the gradient's.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr``.
        adam_betas: AdamW's $(\beta_{a1}, \beta_{a2})$.
        adam_eps: AdamW's $\epsilon_a$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.AdaGO(model.parameters(), lr=0.05, adam_lr=3e-4)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhang, Liu and Schaeffer, "AdaGrad Meets Muon: Adaptive Stepsizes for Orthogonal Updates", 2025.
        https://arxiv.org/abs/2509.02981
    """

    def __init__(self, params, lr: float = 0.05, momentum: float = 0.95, weight_decay: float = 0.0, *,
                 gamma: float = 10.0, eps: float = 5e-4, v0: float = 1e-6, ns_steps: int = 5,
                 ns_dtype: torch.dtype | None = torch.bfloat16, adam_lr: float | None = 3e-4, adam_betas=(0.9, 0.95),
                 adam_eps: float = 1e-10, adam_weight_decay: float = 0.0, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        check_positive(gamma, "gamma")
        check_positive(eps, "eps")
        check_positive(v0, "v0")
        defaults = routed_defaults(
            lr=lr, momentum=momentum, weight_decay=weight_decay, gamma=gamma, eps=eps, v0=v0, nesterov=False,
            ns_steps=ns_steps, ns_dtype=ns_dtype, adam_lr=adam_lr, adam_betas=adam_betas, adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay, maximize=maximize, state_dtype=state_dtype)
        del defaults["nesterov"]  # AdaGO has no Nesterov blend
        super(MuonWithAuxAdam, self).__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for name in ("gamma", "eps", "v0"):
            check_positive(group[name], name)

    def init_matrix_state(self, p, state, group):
        state["momentum_buffer"] = self.zeros_like(p, group)
        state["v"] = torch.full((), group["v0"], dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def matrix_update(self, p, grad, state, group):
        adago_matrix_update(p, grad, state["momentum_buffer"], state["v"], lr=group["lr"], momentum=group["momentum"],
                            gamma=group["gamma"], eps=group["eps"], ns_steps=group["ns_steps"],
                            ns_dtype=group["ns_dtype"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaGO",
    cls=AdaGO,
    canon_id="adago",
    family="orthogonalized",
    recipe={"lr": 0.3, "adam_lr": 0.01},
    recipes={"quadratic": {"lr": 0.5}, "rosenbrock": {"lr": 0.2}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "float_ns": {"ns_dtype": None},
        "weight_decay": {"weight_decay": 0.001, "adam_weight_decay": 0.001},
    },
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"gamma": 0.0}, "gamma"),
        ErrorInput({"eps": 0.0}, "eps"),
        ErrorInput({"v0": -1.0}, "v0"),
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (1.0, 0.95)}, r"adam_betas\[0\]"),
    ),
    # pytorch-optimizer's AdaGO divides the step by the accumulated sum of squared norms rather
    # than by its square root (the paper's v_t), and needs use_muon on every group: no parity
    # reference; tests/optim/test_adago.py checks hand-computed steps.
))
