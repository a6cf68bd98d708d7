"""StableSPAM: Adam on spike-clipped, norm-stabilized gradients with periodic momentum reset (Huang et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import decoupled_decay_, ema_, ema_sq_, per_tensor


def _spike_clip(grad: torch.Tensor, magnitude: torch.Tensor, max_grad: torch.Tensor,
                m_max_hat: torch.Tensor) -> torch.Tensor:
    """AdaClip for one tensor: entries with |g| > M_hat scaled by M_hat / max|g| (a new tensor)."""
    return torch.where(magnitude > m_max_hat, grad / max_grad * m_max_hat, grad)


def _norm(grad):
    """The Euclidean norm of a tensor, or of each tensor of a TensorList (a TensorList of 0-dim tensors)."""
    return grad.norm() if isinstance(grad, TensorList) else torch.linalg.vector_norm(grad)


def _moving(norm, *xs):
    """``(norm, *xs)`` restricted to the tensors whose clipped gradient is nonzero, or None if none is.

    A plain tensor passes whole or not at all; for TensorLists, one transfer reads every norm.
    """
    if not isinstance(norm, TensorList):
        return None if norm == 0 else (norm, *xs)
    keep = [i for i, moves in enumerate(torch.stack(norm.tensors).ne(0).tolist()) if moves]
    if len(keep) == len(norm):
        return (norm, *xs)
    return tuple(TensorList([x[i] for i in keep]) for x in (norm, *xs)) if keep else None


def stable_spam_update(param, grad, exp_avg, exp_avg_sq, m_norm, v_norm, m_max, *, step: int, lr: float,
                       beta1: float, beta2: float, gamma1: float, gamma2: float, theta: float, eps: float,
                       weight_decay: float, update_proj_gap: int) -> None:
    """One Stable-SPAM step for one tensor (or a TensorList of them), in place (``m_norm``, ``v_norm``,
    ``m_max``: 0-dim state).

    theta <- (1 - lr wd) theta;  M <- th M + (1 - th) max|g|, g <- g / max|g| * M_hat where |g| > M_hat;
    n = ||g||; (if n = 0 nothing else changes)  mu, nu: EMAs of n and n^2 (gamma1, gamma2), bias-corrected with t;
    g <- g / n * mu_hat / (sqrt(nu_hat) + eps);  m, v <- 0 every update_proj_gap steps, then Adam with the
    step k since the last reset.
    """
    if step % update_proj_gap == 0:
        exp_avg.zero_()
        exp_avg_sq.zero_()
    k = step if step < update_proj_gap else step % update_proj_gap + 1
    decoupled_decay_(param, lr, weight_decay)
    magnitude = grad.abs()
    max_grad = per_tensor(torch.Tensor.max, magnitude)
    ema_(m_max, max_grad, theta)
    m_max_hat = m_max / (1 - theta**step)
    grad = per_tensor(_spike_clip, grad, magnitude, max_grad, m_max_hat)
    moving = _moving(_norm(grad), grad, param, exp_avg, exp_avg_sq, m_norm, v_norm)
    if moving is None:
        return
    norm, grad, param, exp_avg, exp_avg_sq, m_norm, v_norm = moving
    ema_(m_norm, norm, gamma1)
    ema_sq_(v_norm, norm, gamma2)
    scale = (m_norm / (1 - gamma1**step)) / ((v_norm / (1 - gamma2**step)).sqrt() + eps)
    grad = grad / norm * scale
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = (exp_avg_sq.sqrt() / (1 - beta2**k) ** 0.5).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**k))


class StableSPAM(ZijOptimizer):
    r"""StableSPAM: Adam on spike-clipped gradients whose norm is replaced by a stabilized one, with momentum reset.

    Stable-SPAM, the method later presented as GradientStabilizer, makes three changes to
    AdamW for low-precision training. AdaClip: entries larger than a running average
    $\hat M_t$ of the gradient's maximum magnitude are scaled down onto it. AdaGN: the
    tensor's gradient is rescaled to the norm $\hat\mu_t / (\sqrt{\hat\nu_t} + \epsilon)$
    built from running averages of its past norms, keeping its direction. MoRet: both
    Adam moments are reset every ``update_proj_gap`` steps, and Adam's bias corrections
    restart with them ($k$); the statistics of AdaClip and AdaGN are bias-corrected with
    the step $t$ that never restarts. A tensor whose clipped gradient is zero gets only
    the weight decay. $t$ counts the steps of each parameter (the official code counts
    optimizer steps: the same when every parameter has a gradient at every step). The
    official optional cosine schedule of $\beta_1$ and $\gamma_1$ (``t_max``) is not
    implemented; off, its default, is this rule.

    $$
    \begin{aligned}
    \theta' &= (1-\eta\lambda)\, \theta_{t-1}, \qquad m_{t-1}, v_{t-1} \leftarrow 0, 0 \quad \text{if } t \equiv 0 \pmod{\Delta T} \\
    M_t &= \vartheta M_{t-1} + (1-\vartheta) \max_i |g_{t,i}|, \qquad \hat M_t = \frac{M_t}{1-\vartheta^{t}} \\
    \bar g_{t,i} &= \begin{cases} g_{t,i}\, \hat M_t / \max_j |g_{t,j}| & |g_{t,i}| > \hat M_t \\ g_{t,i} & \text{otherwise} \end{cases}, \qquad n_t = \lVert \bar g_t\rVert_2 \\
    \mu_t &= \gamma_1 \mu_{t-1} + (1-\gamma_1)\, n_t, \qquad \nu_t = \gamma_2 \nu_{t-1} + (1-\gamma_2)\, n_t^{2} \\
    \tilde g_t &= \frac{\bar g_t}{n_t}\cdot \frac{\mu_t/(1-\gamma_1^{t})}{\sqrt{\nu_t/(1-\gamma_2^{t})} + \epsilon} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    \theta_t &= \theta' - \frac{\eta}{1-\beta_1^{k}}\, \frac{m_t}{\sqrt{v_t/(1-\beta_2^{k})} + \epsilon}, \qquad k = \begin{cases} t & t < \Delta T \\ (t \bmod \Delta T) + 1 & \text{otherwise} \end{cases}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of Adam's moments.
        gamma1: decay $\gamma_1$ of the running gradient norm.
        gamma2: decay $\gamma_2$ of the running squared gradient norm.
        theta: decay $\vartheta$ of the running maximum magnitude (AdaClip).
        eps: $\epsilon$, in Adam's denominator and in the norm scale.
        weight_decay: decoupled weight decay $\lambda$, applied before the step.
        update_proj_gap: momentum reset interval $\Delta T$ in steps.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.StableSPAM(model.parameters(), lr=1e-3, update_proj_gap=1000)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Huang et al., "Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam", arXiv 2025
        (retitled "GradientStabilizer: Fix the Norm, Not the Gradient"). https://arxiv.org/abs/2502.17055
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), gamma1: float = 0.7, gamma2: float = 0.9,
                 theta: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, update_proj_gap: int = 1000, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, gamma1=gamma1, gamma2=gamma2, theta=theta, eps=eps,
                                   weight_decay=weight_decay, update_proj_gap=update_proj_gap, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_unit(gamma1, "gamma1")
        check_unit(gamma2, "gamma2")
        check_unit(theta, "theta")
        check_int(update_proj_gap, "update_proj_gap", minimum=1)
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        for name in ("m_norm", "v_norm", "m_max"):
            state[name] = torch.zeros((), dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        stable_spam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["m_norm"], state["v_norm"],
                           state["m_max"], step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2,
                           gamma1=group["gamma1"], gamma2=group["gamma2"], theta=group["theta"], eps=group["eps"],
                           weight_decay=group["weight_decay"], update_proj_gap=group["update_proj_gap"])


_PARITY = {"lr": 1e-2, "betas": (0.9, 0.99), "gamma1": 0.7, "gamma2": 0.9, "theta": 0.9, "weight_decay": 0.1,
           "update_proj_gap": 15}

register(OptimizerEntry(
    name="StableSPAM",
    cls=StableSPAM,
    canon_id="gradient-stabilizer",
    family="adam-family",
    aliases=("Stable-SPAM",),
    recipe={"lr": 0.05, "update_proj_gap": 200},
    recipes={"rosenbrock": {"lr": 0.01, "update_proj_gap": 1000}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.0)) + (
        ErrorInput({"gamma1": 1.0}, "gamma1"),
        ErrorInput({"gamma2": -0.1}, "gamma2"),
        ErrorInput({"theta": 1.5}, "theta"),
        ErrorInput({"update_proj_gap": 0}, "update_proj_gap"),
    ),
    parity=(
        # pytorch_optimizer's StableSPAM (t_max None: no cosine schedule) counts optimizer steps (ours: per
        # parameter; equal here). A reset every 15 steps and theta = 0.9 exercise MoRet and AdaClip.
        Parity("pytorch-optimizer", "pytorch_optimizer:StableSPAM", _PARITY, {**_PARITY, "eps": 1e-8}),
    ),
))
