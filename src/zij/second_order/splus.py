"""SPlus: a stable whitening optimizer, Shampoo's eigenbasis with a sign step (Frans et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import sign_direction  # NaN where its input is not finite (torch's sign gives 0)

__all__ = ["SPlus", "splus_update", "splus_scaled_lr"]


def splus_scaled_lr(shape: torch.Size, lr: float, nonstandard_constant: float, max_dim: int) -> float:
    """The learning rate of one tensor: $2\\eta/(d_1 + d_2)$ for a matrix, $\\eta c$ for any other tensor."""
    if len(shape) != 2 or shape[0] > max_dim or shape[1] > max_dim:
        return lr * nonstandard_constant
    return lr * 2 / (shape[0] + shape[1])


def _eigenvectors(side: torch.Tensor, eps: float) -> torch.Tensor:
    """Eigenvectors of ``side + eps I``, computed in float32 as the official code does."""
    eye = torch.eye(side.size(0), device=side.device, dtype=torch.float32)
    return torch.linalg.eigh(side.float() + eye * eps)[1].to(side.dtype)


def splus_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum: torch.Tensor,
    ema: torch.Tensor,
    sides: list[torch.Tensor | None],
    bases: list[torch.Tensor | None],
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    ema_rate: float,
    inverse_every: int,
    eps: float,
    weight_decay: float,
    nonstandard_constant: float,
    max_dim: int,
) -> None:
    """One SPlus step for one tensor, in place (``sides``/``bases``: left and right, ``None`` where unrotated).

    m <- lerp(m, G, 1 - b1);  U = Q_L sign(Q_L^T m Q_R) Q_R^T (with the bases of the last refresh);
    L <- lerp(L, G G^T, 1 - b2), R <- lerp(R, G^T G, 1 - b2);  at step 1 and every f steps
    Q_L, Q_R <- eigenvectors of L + eps I, R + eps I;  theta <- theta - a U;  ema <- lerp(ema, theta, 1 - rho);
    theta <- (1 - a wd) theta.  Other tensors take U = sign(m).  ``bases`` are refreshed in place.
    """
    momentum.lerp_(grad.to(momentum.dtype), 1 - beta1)
    m = momentum.to(grad.dtype)
    if param.ndim == 2:
        q_left, q_right = (q if q is None else q.to(grad.dtype) for q in bases)
        if q_left is not None:
            m = q_left.T @ m
        if q_right is not None:
            m = m @ q_right
        for side, gram in zip(sides, (lambda: grad @ grad.T, lambda: grad.T @ grad)):
            if side is not None:
                side.lerp_(gram().to(side.dtype), 1 - beta2)
        update = sign_direction(m)
        if q_left is not None:
            update = q_left @ update
        if q_right is not None:
            update = update @ q_right.T
        if step == 1 or step % inverse_every == 0:
            for side, basis in zip(sides, bases):
                if side is not None:
                    basis.copy_(_eigenvectors(side, eps))
    else:
        update = sign_direction(m)
    scaled_lr = splus_scaled_lr(param.shape, lr, nonstandard_constant, max_dim)
    param.add_(update.to(param.dtype), alpha=-scaled_lr)
    ema.lerp_(param.to(ema.dtype), 1 - ema_rate)
    param.mul_(1 - scaled_lr * weight_decay)


class SPlus(ZijOptimizer):
    r"""SPlus: Shampoo's eigenbasis with a sign step in it, a shape-scaled learning rate and an iterate average.

    Each weight matrix keeps Shampoo's left and right gradient statistics and, refreshed at
    the first step and then every ``inverse_every`` steps, their eigenvectors. The momentum
    is rotated into that eigenbasis, replaced by its elementwise sign (where Shampoo and SOAP
    scale by inverse roots) and rotated back, so the step stays bounded even with a stale
    basis. The learning rate is divided by the mean of the matrix's two dimensions so one
    value transfers across widths. A side of ``max_dim`` or more entries is not rotated; a
    tensor that is not a matrix (or has a side over ``max_dim``) takes the sign of its
    momentum with learning rate $\eta c$. The optimizer also keeps an exponential moving
    average of the iterates: ``opt.eval()`` puts its bias-corrected value in the parameters
    for evaluation and ``opt.train()`` puts the training weights back (``step`` in eval mode
    raises).

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, G_t \\
    U_t &= Q_L \operatorname{sign}\!\left(Q_L^{\top} m_t\, Q_R\right) Q_R^{\top} \\
    L_t &= \beta_2 L_{t-1} + (1-\beta_2)\, G_t G_t^{\top}, \qquad R_t = \beta_2 R_{t-1} + (1-\beta_2)\, G_t^{\top} G_t \\
    (Q_L, Q_R) &\leftarrow \big(\operatorname{eigvecs}(L_t + \epsilon I),\ \operatorname{eigvecs}(R_t + \epsilon I)\big) \quad \text{if } t = 1 \text{ or } t \bmod f = 0 \\
    \theta'_t &= \theta_{t-1} - \alpha\, U_t, \qquad \alpha = \frac{2\eta}{d_1 + d_2} \\
    \bar\theta_t &= \rho\, \bar\theta_{t-1} + (1-\rho)\, \theta'_t \\
    \theta_t &= (1 - \alpha\lambda)\, \theta'_t \\
    \theta^{\text{eval}}_t &= \frac{\bar\theta_t}{1 - \rho^{t}}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: base learning rate $\eta$ (matrices step by $\alpha = 2\eta/(d_1+d_2)$).
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the statistics $L$, $R$.
        ema_rate: decay rate $\rho$ of the iterate average used by ``eval()``.
        inverse_every: steps $f$ between eigendecompositions (also done at the first step).
        eps: jitter $\epsilon$ added to the statistics' diagonal before the eigendecomposition.
        weight_decay: decoupled weight decay $\lambda$, scaled by each tensor's learning rate.
        max_dim: sides of at least this many entries are not rotated (and a matrix with a side over
            it steps like a non-matrix tensor).
        nonstandard_constant: learning-rate factor $c$ of tensors that are not matrices.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); eigendecompositions run in float32.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SPlus(model.parameters(), lr=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()  # evaluate at the averaged iterate
        >>> opt.train()

    References:
        Frans, Levine and Abbeel, "A Stable Whitening Optimizer for Efficient Neural Network Training", 2025.
        https://arxiv.org/abs/2506.07254 (official code: https://github.com/kvfrans/splus)
    """

    def __init__(self, params, lr: float = 0.1, betas=(0.9, 0.999), ema_rate: float = 0.999, inverse_every: int = 100,
                 eps: float = 1e-30, weight_decay: float = 1e-2, max_dim: int = 10000,
                 nonstandard_constant: float = 0.001, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        check_unit(ema_rate, "ema_rate")
        check_int(inverse_every, "inverse_every")
        check_int(max_dim, "max_dim")
        check_nonnegative(nonstandard_constant, "nonstandard_constant")
        super().__init__(params, hyperparameters(
            lr=lr, betas=betas, ema_rate=ema_rate, inverse_every=inverse_every, eps=eps, weight_decay=weight_decay,
            max_dim=max_dim, nonstandard_constant=nonstandard_constant, maximize=maximize, state_dtype=state_dtype,
            train_mode=True))

    def init_state(self, p, state, group):
        state["step"] = 0
        state["momentum"] = self.zeros_like(p, group)
        state["ema"] = self.zeros_like(p, group)
        if p.ndim == 2:
            dtype = group.get("state_dtype") or p.dtype
            for side, d in zip(("left", "right"), p.shape):
                if d < group["max_dim"]:
                    state[side] = p.new_zeros((d, d), dtype=dtype)
                    state[f"q_{side}"] = torch.eye(d, device=p.device, dtype=dtype)

    def group_step(self, group, params, grads, states):
        if not group["train_mode"]:
            raise RuntimeError("SPlus.step() was called in eval mode: call opt.train() before training")
        super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        splus_update(p, grad, state["momentum"], state["ema"], [state.get("left"), state.get("right")],
                     [state.get("q_left"), state.get("q_right")], step=state["step"], lr=group["lr"], beta1=beta1,
                     beta2=beta2, ema_rate=group["ema_rate"], inverse_every=group["inverse_every"], eps=group["eps"],
                     weight_decay=group["weight_decay"], nonstandard_constant=group["nonstandard_constant"],
                     max_dim=group["max_dim"])

    @torch.no_grad()
    def eval(self) -> None:
        """Put the bias-corrected iterate average $\\bar\\theta_t / (1 - \\rho^t)$ in the parameters."""
        for group in self.param_groups:
            if not group["train_mode"]:
                continue
            for p in group["params"]:
                state = self.state.get(p)
                if state and "ema" in state:
                    state["param_buffer"] = p.detach().clone()
                    p.copy_(state["ema"].to(p.dtype)).mul_(1 / (1 - group["ema_rate"] ** state["step"]))
            group["train_mode"] = False

    @torch.no_grad()
    def train(self) -> None:
        """Put the training weights back after :meth:`eval`."""
        for group in self.param_groups:
            if group["train_mode"]:
                continue
            for p in group["params"]:
                state = self.state.get(p)
                if state and "param_buffer" in state:
                    p.copy_(state.pop("param_buffer"))
            group["train_mode"] = True


register(OptimizerEntry(
    name="SPlus",
    cls=SPlus,
    canon_id="splus",
    family="preconditioned",
    recipe={"lr": 0.1},
    recipes={"quadratic": {"lr": 0.5}, "rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "refresh_every_step": {"inverse_every": 1},
    },
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"ema_rate": 1.0}, "ema_rate"),
        ErrorInput({"inverse_every": 0}, "inverse_every"),
        ErrorInput({"max_dim": 0}, "max_dim"),
        ErrorInput({"nonstandard_constant": -1.0}, "nonstandard_constant"),
    ),
    parity=(
        # pytorch-optimizer's loop (foreach=False; its foreach path handles only non-matrix tensors,
        # with the same operations). Both run the eigendecomposition in float32.
        Parity("pytorch-optimizer", "pytorch_optimizer:SPlus",
               {"lr": 0.1, "betas": (0.9, 0.95), "weight_decay": 0.1, "ema_rate": 0.9, "inverse_every": 7},
               {"lr": 0.1, "betas": (0.9, 0.95), "weight_decay": 0.1, "ema_rate": 0.9, "inverse_steps": 7,
                "foreach": False}),
    ),
))
