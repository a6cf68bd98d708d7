"""Muon with an auxiliary AdamW in one optimizer (Jordan et al., 2024): matrices by Muon, the rest by AdamW."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_betas, check_int, check_lr, check_nonnegative, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import adam_direction, decoupled_decay_, newton_schulz

__all__ = ["MuonWithAuxAdam", "muon_matrix_update", "aux_adamw_update", "routes_to_muon", "routed_defaults"]


def routes_to_muon(p: torch.Tensor, group: dict) -> bool:
    """Whether ``p`` is stepped by Muon: the group's ``use_muon`` flag, or (``None``) its shape: 2-D or more."""
    use_muon = group.get("use_muon")
    return p.ndim >= 2 if use_muon is None else bool(use_muon)


def muon_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    nesterov: bool,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
    weight_decay: float,
) -> torch.Tensor:
    r"""One Muon step for one matrix (a kernel is flattened to ``size(0)`` rows), in place; returns the update.

    B <- mu B + (1 - mu) g;  N = (1 - mu) g + mu B (Nesterov) or B;  O = NS(N) sqrt(max(1, m/n));
    theta <- (1 - lr wd) theta - lr O. The Newton-Schulz iteration runs in ``ns_dtype`` and the
    shape factor is applied in that dtype, as the official code does in bfloat16.
    """
    momentum_buffer.lerp_(grad.to(momentum_buffer.dtype), 1 - momentum)
    blended = momentum_buffer.to(grad.dtype)
    if nesterov:
        blended = grad.lerp(blended, momentum)
    matrix = blended.reshape(blended.size(0), -1)
    rows, cols = matrix.shape
    update = newton_schulz(matrix.to(ns_dtype or matrix.dtype), ns_steps)
    update = update * max(1.0, rows / cols) ** 0.5
    decoupled_decay_(param, lr, weight_decay).add_(update.view(param.shape), alpha=-lr)
    return update


def aux_adamw_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> None:
    r"""One AdamW step for a tensor Muon does not take, in place.

    m <- lerp(m, g, 1 - beta1);  v <- lerp(v, g^2, 1 - beta2);
    theta <- (1 - lr wd) theta - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps).
    """
    exp_avg.lerp_(grad.to(exp_avg.dtype), 1 - beta1)
    exp_avg_sq.lerp_(grad.square().to(exp_avg_sq.dtype), 1 - beta2)
    direction = adam_direction(exp_avg, exp_avg_sq, step=step, beta1=beta1, beta2=beta2, eps=eps)
    decoupled_decay_(param, lr, weight_decay).add_(direction.to(param.dtype), alpha=-lr)


def routed_defaults(*, nesterov, ns_steps, ns_dtype, adam_lr, adam_betas, adam_eps, adam_weight_decay, **rest) -> dict:
    """Check the hyperparameters every Muon-style optimizer with an AdamW fallback shares; return the defaults."""
    check_int(ns_steps, "ns_steps", minimum=0)
    if ns_dtype is not None and not (isinstance(ns_dtype, torch.dtype) and ns_dtype.is_floating_point):
        raise ValueError(f"Invalid ns_dtype: {ns_dtype!r} (expected a floating torch.dtype or None)")
    if adam_lr is not None:
        check_lr(adam_lr, "adam_lr")
    check_betas(adam_betas, name="adam_betas")
    check_nonnegative(adam_eps, "adam_eps")
    check_nonnegative(adam_weight_decay, "adam_weight_decay")
    return hyperparameters(**rest, nesterov=bool(nesterov), ns_steps=ns_steps, ns_dtype=ns_dtype, adam_lr=adam_lr,
                           adam_betas=tuple(adam_betas), adam_eps=adam_eps, adam_weight_decay=adam_weight_decay,
                           use_muon=None)


class MuonWithAuxAdam(ZijOptimizer):
    r"""Muon for hidden weight matrices and AdamW for every other tensor, in one optimizer.

    Each tensor of two or more dimensions is stepped by Muon: momentum (an exponential
    average), Nesterov's blend, the quintic Newton-Schulz orthogonalization, the official
    shape factor $\sqrt{\max(1, m/n)}$ and decoupled weight decay; a kernel of more than two
    dimensions is flattened to a matrix of ``size(0)`` rows. Every other tensor (biases,
    gains, scalars) is stepped by AdamW with its own hyperparameters ``adam_*``. A group's
    ``use_muon`` key overrides the routing: ``True`` sends all its tensors (of at least two
    dimensions) to Muon, ``False`` all of them to AdamW. Routing is by shape alone, so
    embeddings and the output layer, which Muon's authors leave to AdamW, must be put in a
    group with ``use_muon=False``. Learning-rate schedulers change ``lr`` (Muon's) only; a
    group's ``adam_lr`` is a separate key unless it is ``None``.

    $$
    \begin{aligned}
    &\text{matrices } \theta \text{ of shape } m \times n \text{ (kernels flattened to } m \text{ rows):} \\
    B_t &= \mu B_{t-1} + (1-\mu)\, g_t, \qquad N_t = \begin{cases} (1-\mu)\, g_t + \mu B_t & \text{nesterov} \\ B_t & \text{otherwise} \end{cases} \\
    O_t &= \operatorname{NS}_K(N_t)\, \sqrt{\max(1, m/n)}, \qquad \theta_t = (1 - \eta\lambda)\,\theta_{t-1} - \eta\, O_t \\
    X_0 &= \frac{N_t}{\lVert N_t\rVert_F + 10^{-7}}, \qquad X_{k+1} = a X_k + \left(b A_k + c A_k^{2}\right) X_k, \quad A_k = X_k X_k^{\top}, \quad (a, b, c) = (3.4445, -4.7750, 2.0315) \\
    &\text{other tensors:} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: Muon, ``False``: AdamW).
        lr: Muon's learning rate $\eta$, in units of spectral norm per step.
        momentum: Muon's momentum $\mu$.
        weight_decay: Muon's decoupled weight decay $\lambda$.
        nesterov: orthogonalize Nesterov's blend $N_t$ instead of the momentum $B_t$.
        ns_steps: number $K$ of Newton-Schulz iterations.
        ns_dtype: dtype the Newton-Schulz iteration and the shape factor run in (the official code
            uses ``torch.bfloat16``); ``None``: the gradient's.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr`` (then a scheduler changes both).
        adam_betas: AdamW's $(\beta_1, \beta_2)$.
        adam_eps: AdamW's $\epsilon$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.MuonWithAuxAdam(model.parameters(), lr=0.02, adam_lr=3e-4)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
        https://kellerjordan.github.io/posts/muon/ (official code: https://github.com/KellerJordan/Muon)
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0, *,
                 nesterov: bool = True, ns_steps: int = 5, ns_dtype: torch.dtype | None = torch.bfloat16,
                 adam_lr: float | None = 3e-4, adam_betas=(0.9, 0.95), adam_eps: float = 1e-10,
                 adam_weight_decay: float = 0.0, maximize: bool = False, state_dtype: torch.dtype | None = None):
        super().__init__(params, routed_defaults(
            lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, ns_steps=ns_steps,
            ns_dtype=ns_dtype, adam_lr=adam_lr, adam_betas=adam_betas, adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay, maximize=maximize, state_dtype=state_dtype))

    def add_param_group(self, param_group: dict) -> None:
        use_muon = param_group.get("use_muon")
        if use_muon not in (None, True, False):
            raise ValueError(f"Invalid use_muon: {use_muon!r} (expected True, False or None)")
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        check_lr(group["lr"], "lr")
        if group["adam_lr"] is not None:
            check_lr(group["adam_lr"], "adam_lr")
        check_unit(group["momentum"], "momentum")
        if group["use_muon"] and any(p.ndim < 2 for p in group["params"]):
            raise ValueError("Invalid use_muon: True for a group with a tensor of fewer than two dimensions "
                             "(Muon orthogonalizes matrices; leave use_muon=None to route such tensors to AdamW)")

    def init_state(self, p, state, group):
        state["step"] = 0
        if routes_to_muon(p, group):
            self.init_matrix_state(p, state, group)
        else:
            state["exp_avg"] = self.zeros_like(p, group)
            state["exp_avg_sq"] = self.zeros_like(p, group)

    def init_matrix_state(self, p, state, group):
        """State of a tensor Muon steps (a subclass with another matrix rule extends it)."""
        state["momentum_buffer"] = self.zeros_like(p, group)

    def matrix_update(self, p, grad, state, group):
        """One step of the matrix rule (a subclass with another matrix rule overrides it)."""
        muon_matrix_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                           nesterov=group["nesterov"], ns_steps=group["ns_steps"], ns_dtype=group["ns_dtype"],
                           weight_decay=group["weight_decay"])

    def update(self, p, grad, state, group):
        if "momentum_buffer" in state:
            self.matrix_update(p, grad, state, group)
        else:
            beta1, beta2 = group["adam_betas"]
            aux_adamw_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"],
                             lr=group["lr"] if group["adam_lr"] is None else group["adam_lr"],
                             beta1=beta1, beta2=beta2, eps=group["adam_eps"], weight_decay=group["adam_weight_decay"])


register(OptimizerEntry(
    name="MuonWithAuxAdam",
    cls=MuonWithAuxAdam,
    canon_id="muon-with-aux-adam",
    family="orthogonalized",
    aliases=("MuonAdamW", "MuonWithAuxAdamW", "SingleDeviceMuonWithAuxAdam"),
    recipe={"lr": 0.02, "adam_lr": 0.01},
    recipes={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.003}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "no_nesterov": {"nesterov": False},
        "float_ns": {"ns_dtype": None},
        "weight_decay": {"weight_decay": 0.01, "adam_weight_decay": 0.01},
    },
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"ns_dtype": torch.int32}, "ns_dtype"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (0.9, 1.0)}, r"adam_betas\[1\]"),
        ErrorInput({"adam_eps": -1.0}, "adam_eps"),
        ErrorInput({"adam_weight_decay": -1.0}, "adam_weight_decay"),
    ),
    # The official muon-optimizer package takes only groups with an explicit use_muon flag and no
    # closure: tests/optim/test_muon_aux_adam.py drives it.
))
