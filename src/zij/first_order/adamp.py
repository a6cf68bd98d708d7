"""AdamP: Adam without the radial step on scale-invariant weights (Heo et al., 2021)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import ema_, ema_sq_, per_tensor


def _abs_cosine(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|cos| between matching rows of two matrices (0 where a row is zero)."""
    tiny = torch.finfo(x.dtype).tiny
    return (x * y).sum(dim=1).abs() / (x.norm(dim=1) * y.norm(dim=1)).clamp_min(tiny)


def project_scale_invariant(param: torch.Tensor, grad: torch.Tensor, update: torch.Tensor, *, delta: float) -> bool:
    """Remove the radial part of ``update`` if ``param`` looks scale-invariant; return whether it did.

    The test |cos(theta, g)| < delta / sqrt(dim) runs first on every output channel (row) of the
    tensor, passing if it holds for all of them, then on the whole tensor. The first view that passes
    is projected: q = p - (theta_hat . p) theta_hat for each of its vectors, theta_hat = theta / |theta|.
    ``update`` must be contiguous; it is changed in place. Tensors with fewer than 2 dims are left alone.
    """
    if param.ndim < 2:
        return False
    for rows in (param.shape[0], 1):
        theta, g = param.reshape(rows, -1), grad.reshape(rows, -1)
        if _abs_cosine(theta, g).max() < delta / math.sqrt(theta.shape[1]):
            unit = theta / theta.norm(dim=1, keepdim=True).clamp_min(torch.finfo(theta.dtype).tiny)
            flat = update.view(rows, -1)
            flat.sub_(unit * (unit * flat).sum(dim=1, keepdim=True))
            return True
    return False


def adamp_update(
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
    delta: float,
    wd_ratio: float,
    nesterov: bool,
) -> None:
    """One AdamP step for one tensor, in place.

    p = m_tilde / (1 - beta1^t) / (sqrt(v_hat) + eps);  q = p without its radial part if theta looks
    scale-invariant (then r = wd_ratio, else r = 1);  theta <- theta * (1 - lr * weight_decay * r) - lr * q.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    momentum = exp_avg * beta1 + grad * (1 - beta1) if nesterov else exp_avg
    denom = (exp_avg_sq / bias_correction2).sqrt_().add_(eps)
    update = momentum / denom / bias_correction1
    decay = per_tensor(lambda p, g, u: 1 - lr * weight_decay * (wd_ratio if project_scale_invariant(p, g, u, delta=delta)
                                                                else 1.0), param, grad, update)
    param.mul_(decay)
    param.add_(update, alpha=-lr)


class AdamP(ZijOptimizer):
    r"""AdamP: Adam that drops the radial component of its step on scale-invariant weights.

    For weights followed by a normalization layer the loss depends only on
    their direction, and momentum makes their norm grow, which shrinks the
    effective step size. When the gradient is nearly orthogonal to the weight
    (the scale-invariance test), AdamP removes the part of the Adam step along
    the weight and scales weight decay down by $\rho$.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \tilde m_t &= \begin{cases} \beta_1 m_t + (1-\beta_1)\, g_t & \text{with Nesterov momentum} \\ m_t & \text{otherwise} \end{cases} \\
    p_t &= \frac{\tilde m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} \\
    (q_t, r_t) &= \begin{cases}
      \bigl(p_t - (\hat\theta_{t-1}^{\top} p_t)\, \hat\theta_{t-1},\ \rho\bigr) & \text{if } \lvert\cos(\theta_{t-1}, g_t)\rvert < \delta / \sqrt{\dim \theta} \\
      (p_t,\ 1) & \text{otherwise}
    \end{cases} \\
    \theta_t &= \theta_{t-1} - \eta \lambda r_t\, \theta_{t-1} - \eta\, q_t, \qquad \hat\theta_{t-1} = \frac{\theta_{t-1}}{\lVert \theta_{t-1}\rVert}
    \end{aligned}
    $$

    The test and the projection act on vectors: first on each output channel
    (row along the first dimension) of a tensor, the test passing only if it
    holds for every channel, and otherwise on the whole tensor; a zero vector
    counts as orthogonal to everything ($0/0$ is taken as $0$). Tensors with
    fewer than two dimensions are never projected. The paper gives the
    projection and the test; these details, the bias-corrected Adam moments,
    the Nesterov option and the weight-decay ratio $\rho$ follow the official
    code.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        delta: threshold $\delta$ of the scale-invariance test.
        wd_ratio: weight-decay ratio $\rho \in [0, 1]$ used where the projection applies.
        nesterov: use Nesterov momentum ($\tilde m_t$ above).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> opt = zij.AdamP(model.parameters(), lr=1e-3, weight_decay=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Heo, Chun, Oh, Han, Yun, Kim, Uh and Ha, "AdamP: Slowing Down the Slowdown for Momentum
        Optimizers on Scale-invariant Weights", ICLR 2021. https://arxiv.org/abs/2006.08217
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 delta: float = 0.1, wd_ratio: float = 0.1, nesterov: bool = False, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, delta=delta,
                                   wd_ratio=wd_ratio, nesterov=bool(nesterov), maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(delta, "delta")
        check_unit(wd_ratio, "wd_ratio", closed=True)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adamp_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                     beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                     delta=group["delta"], wd_ratio=group["wd_ratio"], nesterov=group["nesterov"])


_PARITY = {"lr": 1e-2, "betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1, "delta": 0.1, "wd_ratio": 0.1}

register(OptimizerEntry(
    name="AdamP",
    cls=AdamP,
    canon_id="adamp",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(-0.1, 0.999)) + (
        ErrorInput({"delta": -0.1}, "delta"),
        ErrorInput({"wd_ratio": 1.5}, "wd_ratio"),
    ),
    parity=(
        Parity("adamp", "adamp:AdamP", _PARITY, _PARITY),
        Parity("adamp", "adamp:AdamP", {**_PARITY, "nesterov": True}, {**_PARITY, "nesterov": True}),
        # pytorch-optimizer adds eps to sqrt(v) before the bias correction; a tiny eps makes that immaterial.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdamP", {**_PARITY, "eps": 1e-12, "nesterov": True},
               {**_PARITY, "eps": 1e-12, "nesterov": True, "weight_decouple": True, "fixed_decay": False}),
    ),
))
