"""NorMuon: Muon with a per-neuron second moment of the orthogonalized update (Li et al., 2025)."""

from __future__ import annotations

import torch

from .._base import check_nonnegative, check_unit
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, newton_schulz
from .muon_aux_adam import MuonWithAuxAdam, routed_defaults


def normuon_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    row_sq: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    beta2: float,
    nesterov: bool,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One NorMuon step for one matrix (a kernel is flattened to ``size(0)`` rows), in place.

    M <- lerp(M, G, 1 - beta1);  N = lerp(G, M, beta1) (Nesterov) or M;  O = NS(N);
    v <- lerp(v, mean_cols(O^2), 1 - beta2);  O' = O / (sqrt(v) + eps);
    theta <- (1 - lr wd) theta - lr sqrt(max(1, m/n)) ||O|| / (||O'|| + eps) O'.
    ``row_sq`` is the per-row statistic, of shape ``(m, 1)``.
    """
    momentum_buffer.lerp_(grad.to(momentum_buffer.dtype), 1 - momentum)
    blended = momentum_buffer.to(grad.dtype)
    if nesterov:
        blended = grad.lerp(blended, momentum)
    matrix = blended.reshape(blended.size(0), -1)
    rows, cols = matrix.shape
    update = newton_schulz(matrix.to(ns_dtype or matrix.dtype), ns_steps).to(grad.dtype)
    original_norm = update.norm()
    row_sq.lerp_(update.square().mean(dim=-1, keepdim=True).to(row_sq.dtype), 1 - beta2)
    update.div_(row_sq.sqrt().add_(eps).to(update.dtype))
    update.mul_(original_norm / update.norm().add_(eps))
    decoupled_decay_(param, lr, weight_decay).add_(update.view(param.shape), alpha=-lr * max(1.0, rows / cols) ** 0.5)


class NorMuon(MuonWithAuxAdam):
    r"""NorMuon: Muon's orthogonalized update with each row (neuron) normalized by its running RMS.

    Orthogonalizing the momentum equalizes its singular values but leaves the rows of the
    update with unequal norms. NorMuon keeps a moving average of each row's mean squared
    entry of the orthogonalized update, divides each row by its root, and rescales the
    result to the Frobenius norm the orthogonalized update had, times Muon's shape factor,
    so Muon's learning rates carry over. As in the official ``NorMuonWithAuxAdam``, tensors of
    fewer than two dimensions are stepped by AdamW; a group's ``use_muon`` key overrides the
    routing by shape (see :class:`MuonWithAuxAdam`: embeddings and output layers belong in a
    ``use_muon=False`` group). Kernels of more than two dimensions are flattened to their rows.

    $$
    \begin{aligned}
    M_t &= \beta_1 M_{t-1} + (1-\beta_1)\, G_t, \qquad N_t = (1-\beta_1)\, G_t + \beta_1 M_t \\
    O_t &= \operatorname{NS}_5(N_t) \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \operatorname{mean}_{\text{cols}}(O_t \odot O_t) \\
    \hat O_t &= \operatorname{diag}\!\left(\sqrt{v_t} + 10^{-10}\right)^{-1} O_t, \qquad U_t = \frac{\lVert O_t\rVert_F}{\lVert \hat O_t\rVert_F + 10^{-10}}\, \sqrt{\max(1, m/n)}\; \hat O_t \\
    \theta_t &= (1 - \eta \lambda)\, \theta_{t-1} - \eta\, U_t \\
    X_0 &= \frac{N_t}{\lVert N_t\rVert_F + 10^{-7}}, \qquad X_{k+1} = a X_k + \left(b A_k + c A_k^{2}\right) X_k, \quad A_k = X_k X_k^{\top}, \quad (a, b, c) = (3.4445, -4.7750, 2.0315) \\
    &\text{other tensors (AdamW):} \quad m_t = \beta_{a1} m_{t-1} + (1-\beta_{a1})\, g_t, \qquad s_t = \beta_{a2} s_{t-1} + (1-\beta_{a2})\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_{a1}^{t})}{\sqrt{s_t / (1-\beta_{a2}^{t})} + \epsilon_a}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: NorMuon, ``False``: AdamW).
        lr: learning rate $\eta$ of the matrices.
        momentum: momentum $\beta_1$.
        beta2: decay $\beta_2$ of the per-row second moment $v_t$ (not bias-corrected).
        weight_decay: decoupled weight decay $\lambda$ of the matrices.
        nesterov: orthogonalize Nesterov's blend $N_t$ (``False``: the momentum $M_t$).
        ns_steps: number of Newton-Schulz iterations (5 in the rule).
        ns_dtype: dtype the Newton-Schulz iteration runs in (the official code: ``torch.bfloat16``);
            ``None``: the gradient's.
        eps: the $10^{-10}$ added to the row roots and to the norm $\lVert \hat O_t\rVert_F$.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr``.
        adam_betas: AdamW's $(\beta_{a1}, \beta_{a2})$.
        adam_eps: AdamW's $\epsilon_a$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.NorMuon(model.parameters(), lr=0.02, adam_lr=3e-4)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Li et al., "NorMuon: Making Muon more efficient and scalable", 2025.
        https://arxiv.org/abs/2510.05491 (official code: https://github.com/zichongli5/NorMuon)
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, beta2: float = 0.95, weight_decay: float = 0.0,
                 *, nesterov: bool = True, ns_steps: int = 5, ns_dtype: torch.dtype | None = torch.bfloat16,
                 eps: float = 1e-10, adam_lr: float | None = 3e-4, adam_betas=(0.9, 0.95), adam_eps: float = 1e-10,
                 adam_weight_decay: float = 0.0, maximize: bool = False, state_dtype: torch.dtype | None = None):
        check_unit(beta2, "beta2")
        check_nonnegative(eps, "eps")
        super(MuonWithAuxAdam, self).__init__(params, routed_defaults(
            lr=lr, momentum=momentum, beta2=beta2, weight_decay=weight_decay, eps=eps, nesterov=nesterov,
            ns_steps=ns_steps, ns_dtype=ns_dtype, adam_lr=adam_lr, adam_betas=adam_betas, adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay, maximize=maximize, state_dtype=state_dtype))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        check_unit(self.param_groups[-1]["beta2"], "beta2")

    def init_matrix_state(self, p, state, group):
        state["momentum_buffer"] = self.zeros_like(p, group)
        state["row_sq"] = p.new_zeros((p.size(0), 1), dtype=group.get("state_dtype") or p.dtype)

    def matrix_update(self, p, grad, state, group):
        normuon_matrix_update(p, grad, state["momentum_buffer"], state["row_sq"], lr=group["lr"],
                              momentum=group["momentum"], beta2=group["beta2"], nesterov=group["nesterov"],
                              ns_steps=group["ns_steps"], ns_dtype=group["ns_dtype"], eps=group["eps"],
                              weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="NorMuon",
    cls=NorMuon,
    canon_id="normuon",
    family="orthogonalized",
    aliases=("NorMuonWithAuxAdam", "SingleDeviceNorMuonWithAuxAdam"),
    recipe={"lr": 0.02, "adam_lr": 0.01},
    recipes={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.003}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "no_nesterov": {"nesterov": False},
        "float_ns": {"ns_dtype": None},
    },
    errors=invalid("lr", "momentum", "eps", "weight_decay") + (
        ErrorInput({"beta2": 1.0}, "beta2"),
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (1.0, 0.95)}, r"adam_betas\[0\]"),
    ),
    # pytorch-optimizer's NorMuon takes only groups with an explicit use_muon flag:
    # tests/optim/test_normuon.py drives it.
))
