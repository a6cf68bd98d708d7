"""FAdam: Adam read as a natural-gradient method with the diagonal empirical Fisher (Hwang, 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import debiased_beta, ema_, ema_sq_, per_tensor


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square of a tensor's entries (0-dim)."""
    return x.square().mean().sqrt_()


def adaptive_eps(grad: torch.Tensor, *, eps: float, eps_2: float, power: float) -> torch.Tensor:
    r"""$\hat\epsilon^{2p}$ with $\hat\epsilon = \epsilon_2 \operatorname{rms}(g)$ where that is positive and below
    $\epsilon$, else $\epsilon$ (0-dim)."""
    scale = rms(grad)
    scaled = scale * eps_2
    chosen = torch.where((scale > 0) & (scaled < eps), scaled, torch.full_like(scaled, eps))
    return chosen.pow(2.0 * power)


def clip_by_rms_(x, clip: float):
    r"""$x / \max(1, \operatorname{rms}(x) / c)$ per tensor, in place."""
    return x.div_(per_tensor(lambda t: (rms(t) / clip).clamp_min_(1.0), x))


def fadam_update(param, grad, momentum, fim, *, step: int, lr: float, beta1: float, beta2: float, weight_decay: float,
                 clip: float, power: float, eps: float, eps_2: float) -> None:
    """One FAdam step for a tensor or a TensorList, in place.

    f <- b2_t f + (1 - b2_t) g^2 with b2_t = beta2 (1 - beta2^(t-1)) / (1 - beta2^t);  D = f^p + eps_hat^(2p);
    gbar = clip(g / D);  m <- beta1 m + (1 - beta1) gbar;  wbar = clip(theta / D);  theta <- theta - lr (m + wd wbar).
    """
    ema_sq_(fim, grad, debiased_beta(beta2, step))
    denom = fim.pow(power).add_(per_tensor(lambda g: adaptive_eps(g, eps=eps, eps_2=eps_2, power=power), grad))
    ema_(momentum, clip_by_rms_(grad / denom, clip), beta1)
    decay = clip_by_rms_(param / denom, clip)
    param.add_(decay.mul_(weight_decay).add_(momentum), alpha=-lr)


class FAdam(ZijOptimizer):
    r"""FAdam (Fisher Adam): Adam's second moment as a diagonal Fisher, with momentum on the natural gradient.

    Reading Adam as natural-gradient descent with the diagonal empirical
    Fisher $f_t$ changes several of its details: the gradient is
    preconditioned first and the momentum averages the preconditioned
    (natural) gradient, which is clipped to an RMS of at most $c$ per tensor;
    the weight decay is preconditioned and clipped the same way; the Fisher's
    moving average uses a time-varying decay instead of a bias correction;
    and $\epsilon$ adapts to the gradient's scale. The Fisher is raised to the
    power $p$ (Adam's square root at $p = 1/2$).

    $$
    \begin{aligned}
    \hat\beta_{2,t} &= \frac{\beta_2 (1-\beta_2^{t-1})}{1-\beta_2^{t}}, \qquad f_t = \hat\beta_{2,t} f_{t-1} + (1-\hat\beta_{2,t})\, g_t^{2} \\
    \hat\epsilon_t &= \begin{cases} \epsilon_2 \operatorname{rms}(g_t) & \text{if } 0 < \epsilon_2 \operatorname{rms}(g_t) < \epsilon \\ \epsilon & \text{otherwise} \end{cases}, \qquad D_t = f_t^{\,p} + \hat\epsilon_t^{\,2p} \\
    \bar g_t &= \frac{g_t / D_t}{\max\bigl(1, \operatorname{rms}(g_t / D_t)/c\bigr)}, \qquad m_t = \beta_1 m_{t-1} + (1-\beta_1)\, \bar g_t \\
    \bar w_t &= \frac{\theta_{t-1} / D_t}{\max\bigl(1, \operatorname{rms}(\theta_{t-1} / D_t)/c\bigr)} \\
    \theta_t &= \theta_{t-1} - \eta\, \bigl(m_t + \lambda\, \bar w_t\bigr)
    \end{aligned}
    $$

    $\operatorname{rms}$ is the root mean square over one tensor; $m_0 = f_0 = 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the Fisher.
        weight_decay: $\lambda$, the weight of the preconditioned weight decay.
        clip: $c$, the largest RMS of the natural gradient and of the decay direction.
        p: the power $p$ of the Fisher in the preconditioner.
        eps: $\epsilon$, the largest adaptive epsilon.
        eps_2: $\epsilon_2$, the multiple of the gradient's RMS used as epsilon.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.FAdam(model.parameters(), lr=1e-3, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Hwang, "FAdam: Adam is a natural gradient optimizer using diagonal empirical Fisher information",
        arXiv 2024. https://arxiv.org/abs/2405.12807
    """

    state_names = ("momentum", "fim")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), weight_decay: float = 0.1, clip: float = 1.0,
                 p: float = 0.5, eps: float = 1e-8, eps_2: float = 0.01, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, clip=clip, p=p, eps=eps,
                                   eps_2=eps_2, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(clip, "clip")
        check_positive(p, "p")
        check_nonnegative(eps_2, "eps_2")
        super().__init__(params, defaults)

    def update(self, param, grad, state, group):
        beta1, beta2 = group["betas"]
        fadam_update(param, grad, state["momentum"], state["fim"], step=state["step"], lr=group["lr"], beta1=beta1,
                     beta2=beta2, weight_decay=group["weight_decay"], clip=group["clip"], power=group["p"],
                     eps=group["eps"], eps_2=group["eps_2"])


register(OptimizerEntry(
    name="FAdam",
    cls=FAdam,
    canon_id="fadam",
    family="adam-family",
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"clip": 0.0}, "clip"),
        ErrorInput({"p": 0.0}, "p"),
        ErrorInput({"eps_2": -1.0}, "eps_2"),
    ),
    parity=(
        # fp32 state there is its default (momentum_dtype, fim_dtype); the test runs in float64, so pass float64.
        Parity("pytorch-optimizer", "pytorch_optimizer:FAdam",
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "clip": 1.0, "p": 0.5, "eps": 1e-8,
                "eps_2": 0.01},
               {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "clip": 1.0, "p": 0.5, "eps": 1e-8,
                "eps_2": 0.01, "momentum_dtype": torch.float64, "fim_dtype": torch.float64}),
        Parity("pytorch-optimizer", "pytorch_optimizer:FAdam",
               {"lr": 1e-2, "weight_decay": 0.01, "clip": 0.5, "p": 0.4, "eps": 1e-3, "eps_2": 0.5},
               {"lr": 1e-2, "weight_decay": 0.01, "clip": 0.5, "p": 0.4, "eps": 1e-3, "eps_2": 0.5,
                "momentum_dtype": torch.float64, "fim_dtype": torch.float64}),
    ),
))
