"""AdaMuon: elementwise second moment on Muon's orthogonalized sign direction (Si et al., 2025)."""

from __future__ import annotations

import torch

from .._base import check_nonnegative
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_sq_, newton_schulz, sign_direction
from .muon_aux_adam import MuonWithAuxAdam, routed_defaults


def adamuon_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One AdaMuon step for one matrix (a kernel is flattened to ``size(0)`` rows), in place.

    M <- lerp(M, G, 1 - mu);  N = lerp(G, M, mu) (Nesterov) or M;  O = NS(sign(N));
    V <- mu V + (1 - mu) O^2;  O' = O / (sqrt(V) + eps);
    theta <- (1 - lr wd) theta - lr 0.2 sqrt(m n) / (||O'|| + eps) O'.
    """
    momentum_buffer.lerp_(grad.to(momentum_buffer.dtype), 1 - momentum)
    blended = momentum_buffer.to(grad.dtype)
    if nesterov:
        blended = grad.lerp(blended, momentum)
    matrix = blended.reshape(blended.size(0), -1)
    rows, cols = matrix.shape
    direction = newton_schulz(sign_direction(matrix).to(ns_dtype or matrix.dtype), ns_steps).to(grad.dtype).view(param.shape)
    ema_sq_(exp_avg_sq, direction.to(exp_avg_sq.dtype), momentum)
    direction = direction / exp_avg_sq.sqrt().add_(eps).to(direction.dtype)
    direction.mul_(0.2 * (rows * cols) ** 0.5 / (direction.norm() + eps))
    decoupled_decay_(param, lr, weight_decay).add_(direction, alpha=-lr)


class AdaMuon(MuonWithAuxAdam):
    r"""AdaMuon: Muon on the momentum's sign, with an elementwise second moment and AdamW-matched RMS.

    The Nesterov-blended momentum is replaced by its sign and orthogonalized by Newton-Schulz;
    a moving average of the squared entries of that direction (decay: the momentum
    coefficient, no bias correction) divides it elementwise, and the result is rescaled to
    a root-mean-square of 0.2, the size of a typical AdamW update, so AdamW's learning rates
    and schedules carry over. Tensors of fewer than two dimensions are stepped by AdamW, as
    in the official training script, which by default shares the learning rate (``adam_lr=None``);
    a group's ``use_muon`` key overrides the routing by shape (see :class:`MuonWithAuxAdam`:
    embeddings and output layers belong in a ``use_muon=False`` group). Kernels of more than
    two dimensions are flattened to their rows.

    $$
    \begin{aligned}
    M_t &= \mu M_{t-1} + (1-\mu)\, G_t, \qquad N_t = \begin{cases} (1-\mu)\, G_t + \mu M_t & \text{nesterov} \\ M_t & \text{otherwise} \end{cases} \\
    O_t &= \operatorname{NS}_K\!\left(\operatorname{sign}(N_t)\right) \\
    V_t &= \mu V_{t-1} + (1-\mu)\, O_t \odot O_t \\
    \hat O_t &= \frac{O_t}{\sqrt{V_t} + \epsilon} \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \frac{0.2\, \sqrt{m n}}{\lVert \hat O_t\rVert_F + \epsilon}\, \hat O_t \\
    &\text{other tensors (AdamW):} \quad m_t = \beta_{a1} m_{t-1} + (1-\beta_{a1})\, g_t, \qquad s_t = \beta_{a2} s_{t-1} + (1-\beta_{a2})\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_{a1}^{t})}{\sqrt{s_t / (1-\beta_{a2}^{t})} + \epsilon_a}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: AdaMuon, ``False``: AdamW).
        lr: learning rate $\eta$ (AdamW-like: the update's RMS is 0.2).
        momentum: momentum $\mu$, also the decay of the second moment $V_t$.
        weight_decay: decoupled weight decay $\lambda$ of the matrices.
        nesterov: orthogonalize the sign of Nesterov's blend (``False``: of the momentum).
        ns_steps: number $K$ of Newton-Schulz iterations.
        ns_dtype: dtype the Newton-Schulz iteration runs in (the official code: ``torch.bfloat16``);
            ``None``: the gradient's.
        eps: $\epsilon$ of the elementwise division and of the rescaling.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr``, as the official script does.
        adam_betas: AdamW's $(\beta_{a1}, \beta_{a2})$.
        adam_eps: AdamW's $\epsilon_a$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.AdaMuon(model.parameters(), lr=6e-4)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Si et al., "AdaMuon: Adaptive Muon Optimizer", 2025.
        https://arxiv.org/abs/2507.11005 (official code: https://github.com/Chongjie-Si/AdaMuon)
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.01, *,
                 nesterov: bool = True, ns_steps: int = 5, ns_dtype: torch.dtype | None = torch.bfloat16,
                 eps: float = 1e-8, adam_lr: float | None = None, adam_betas=(0.9, 0.95), adam_eps: float = 1e-8,
                 adam_weight_decay: float = 0.0, maximize: bool = False, state_dtype: torch.dtype | None = None):
        check_nonnegative(eps, "eps")
        super(MuonWithAuxAdam, self).__init__(params, routed_defaults(
            lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps, nesterov=nesterov, ns_steps=ns_steps,
            ns_dtype=ns_dtype, adam_lr=adam_lr, adam_betas=adam_betas, adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay, maximize=maximize, state_dtype=state_dtype))

    def init_matrix_state(self, p, state, group):
        state["momentum_buffer"] = self.zeros_like(p, group)
        state["exp_avg_sq"] = self.zeros_like(p, group)

    def matrix_update(self, p, grad, state, group):
        adamuon_matrix_update(p, grad, state["momentum_buffer"], state["exp_avg_sq"], lr=group["lr"],
                              momentum=group["momentum"], nesterov=group["nesterov"], ns_steps=group["ns_steps"],
                              ns_dtype=group["ns_dtype"], eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaMuon",
    cls=AdaMuon,
    canon_id="adamuon",
    family="orthogonalized",
    recipe={"lr": 0.01, "weight_decay": 0.0},
    recipes={"quadratic": {"lr": 0.02}, "rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "no_nesterov": {"nesterov": False},
        "float_ns": {"ns_dtype": None},
    },
    errors=invalid("lr", "momentum", "eps", "weight_decay") + (
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_eps": -1.0}, "adam_eps"),
    ),
    # No installable upstream computes this version: pytorch-optimizer's AdaMuon is the first arXiv
    # version (no sign, a separate bias-corrected beta2, another scaling); tests/optim/test_adamuon.py
    # checks the official code's step written out by hand, and identities.
))
