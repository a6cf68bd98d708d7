"""Kourkoutas-beta: Adam with a second-moment decay driven by gradient-norm spikes (Kassinos, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from .._tensorlist import TensorList
from ..blocks import ema_

BIAS_CORRECTIONS = ("none", "beta2max", "exact")


def sunspike_beta2(
    norm: torch.Tensor,
    norm_ema: torch.Tensor,
    *,
    alpha: float,
    beta2_min: float,
    beta2_max: float,
    tiny_spike: float,
    warming_up: bool,
) -> torch.Tensor:
    """This step's beta2 of one layer from its gradient norm; updates the norm average ``norm_ema`` in place.

    r <- alpha r + (1 - alpha) n;  s = (n / (r + tiny)) / (1 + n / (r + tiny));
    beta2 = beta2_max - (beta2_max - beta2_min) s, or the midpoint (beta2_min + beta2_max) / 2 while warming up.
    """
    ema_(norm_ema, norm, alpha)
    if warming_up:
        return norm_ema.map(torch.full_like, 0.5 * (beta2_min + beta2_max)) if isinstance(norm_ema, TensorList) \
            else torch.full_like(norm_ema, 0.5 * (beta2_min + beta2_max))
    ratio = norm / (norm_ema + tiny_spike)
    sunspike = ratio / (1 + ratio)
    return beta2_max - (beta2_max - beta2_min) * sunspike


def kourkoutas_beta_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    beta2: torch.Tensor,
    bias_correction2: torch.Tensor | float | None,
    step: int,
    lr: float,
    beta1: float,
    eps: float,
) -> None:
    """One Adam step with this step's ``beta2`` (a 0-d tensor) for one tensor, in place.

    m <- b1 m + (1 - b1) g;  v <- beta2 v + (1 - beta2) g^2;
    theta <- theta - lr m / (sqrt(v) + eps)                                   (bias_correction2 None),
    theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / bias_correction2) + eps)  otherwise.
    """
    ema_(exp_avg, grad, beta1)
    exp_avg_sq.mul_(beta2).add_(grad * grad * (1 - beta2))
    if bias_correction2 is None:
        param.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(eps), value=-lr)
    else:
        denom = (exp_avg_sq / bias_correction2).sqrt_().add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))


class KourkoutasBeta(ZijOptimizer):
    r"""Kourkoutas-beta: Adam whose $\beta_2$ drops when a layer's gradient norm spikes.

    Adam's second-moment decay $\beta_2$ becomes a per-layer value set at
    every step by a bounded "sunspike" ratio: the layer's gradient norm over
    a running average of its past norms, squashed into $[0, 1)$. During a
    spike $\beta_2$ falls toward $\beta_{2,\min}$, so the second moment catches
    up quickly; in calm phases it stays near $\beta_{2,\max}$ for smooth
    steps. The method targets bursty gradients such as those of PDE
    surrogates and physics-informed networks.

    $$
    \begin{aligned}
    n_t &= \lVert g_t\rVert_2, \qquad r_t = \alpha\, r_{t-1} + (1-\alpha)\, n_t \\
    s_t &= \frac{n_t / (r_t + \tau)}{1 + n_t / (r_t + \tau)}, \qquad \beta_{2,t} = \beta_{2,\max} - (\beta_{2,\max} - \beta_{2,\min})\, s_t \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_{2,t}\, v_{t-1} + (1-\beta_{2,t})\, g_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t / c_{1,t}}{\sqrt{v_t / c_{2,t}} + \epsilon}
    \end{aligned}
    $$

    with $r_0 = 0$. Each parameter tensor is one layer (the per-array
    buckets of the paper's experiments and the official code's default
    without layer names), so $n_t$, $r_t$ and $\beta_{2,t}$ are per tensor.
    For the first $T_w$ steps (``warmup_steps``) $\beta_{2,t}$ is held at
    $(\beta_{2,\min} + \beta_{2,\max})/2$ while $r_t$ is updated. The bias
    corrections are $c_{1,t} = c_{2,t} = 1$ for ``bias_correction="none"``
    (the official default), $c_{1,t} = 1-\beta_1^{t}$ with
    $c_{2,t} = 1-\beta_{2,\max}^{t}$ for ``"beta2max"`` (the paper's
    experiments) or $c_{2,t} = 1-\prod_{i \le t} \beta_{2,i}$ for ``"exact"``.
    With $\beta_{2,\min} = \beta_{2,\max}$ the rule is Adam with
    $\beta_2 = \beta_{2,\max}$ (without, or with, bias correction). The
    official code's optional leaky AMSGrad, trust-region clipping and
    adaptive tiny term are not part of this class.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        beta1: $\beta_1$, decay rate of the first moment.
        beta2_max: $\beta_{2,\max}$, the second-moment decay in calm phases.
        beta2_min: $\beta_{2,\min}$, the second-moment decay under a full spike; at most ``beta2_max``.
        alpha: $\alpha$, decay rate of the running average of gradient norms.
        eps: $\epsilon$, added to the denominator.
        tiny_spike: $\tau$, keeps the sunspike ratio finite.
        warmup_steps: $T_w$, number of first steps with the midpoint $\beta_2$.
        bias_correction: ``"none"``, ``"beta2max"`` or ``"exact"`` (see above).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.KourkoutasBeta(model.parameters(), lr=1e-3, beta2_min=0.88, alpha=0.93,
        ...                          warmup_steps=250, bias_correction="beta2max")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kassinos, "Kourkoutas-Beta: A Sunspike-Driven Adam Optimizer with Desert Flair", arXiv 2025.
        https://arxiv.org/abs/2508.12996
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, beta1: float = 0.9, beta2_max: float = 0.999,
                 beta2_min: float = 0.9, alpha: float = 0.9, eps: float = 1e-8, tiny_spike: float = 1e-8,
                 warmup_steps: int = 0, bias_correction: str = "none", *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta1=beta1, beta2_max=beta2_max, beta2_min=beta2_min, alpha=alpha, eps=eps,
                                   tiny_spike=tiny_spike, warmup_steps=warmup_steps, bias_correction=bias_correction,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(beta1, "beta1")
        check_unit(beta2_max, "beta2_max")
        check_unit(beta2_min, "beta2_min")
        if beta2_min > beta2_max:
            raise ValueError(f"Invalid beta2_min: {beta2_min!r} (expected at most beta2_max = {beta2_max!r})")
        check_unit(alpha, "alpha")
        check_nonnegative(tiny_spike, "tiny_spike")
        check_int(warmup_steps, "warmup_steps", minimum=0)
        if bias_correction not in BIAS_CORRECTIONS:
            raise ValueError(f"Invalid bias_correction: {bias_correction!r} (expected one of {BIAS_CORRECTIONS})")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["norm_ema"] = torch.zeros((), dtype=p.dtype, device=p.device)
        state["beta2_prod"] = torch.ones((), dtype=p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        step = state["step"]
        beta2 = sunspike_beta2(grad.norm(), state["norm_ema"], alpha=group["alpha"],
                               beta2_min=group["beta2_min"], beta2_max=group["beta2_max"],
                               tiny_spike=group["tiny_spike"], warming_up=step <= group["warmup_steps"])
        state["beta2_prod"].mul_(beta2)
        mode = group["bias_correction"]
        if mode == "none":
            bias_correction2 = None
        elif mode == "beta2max":
            bias_correction2 = 1 - group["beta2_max"] ** step
        else:
            bias_correction2 = 1 - state["beta2_prod"]
        kourkoutas_beta_update(p, grad, state["exp_avg"], state["exp_avg_sq"], beta2=beta2,
                               bias_correction2=bias_correction2, step=step, lr=group["lr"], beta1=group["beta1"],
                               eps=group["eps"])


register(OptimizerEntry(
    name="KourkoutasBeta",
    cls=KourkoutasBeta,
    canon_id="kourkoutas-beta",
    family="adam-family",
    aliases=("Kourkoutas-beta Adam",),
    recipe={"lr": 0.05, "bias_correction": "beta2max"},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={"warmup_exact": {"warmup_steps": 3, "bias_correction": "exact"}},
    errors=invalid("lr", "eps") + (
        ErrorInput({"beta1": 1.0}, "beta1"),
        ErrorInput({"beta2_max": 1.0}, "beta2_max"),
        ErrorInput({"beta2_min": -0.1}, "beta2_min"),
        ErrorInput({"beta2_min": 0.99, "beta2_max": 0.95}, "beta2_min"),
        ErrorInput({"alpha": 1.0}, "alpha"),
        ErrorInput({"tiny_spike": -1e-8}, "tiny_spike"),
        ErrorInput({"warmup_steps": -1}, "warmup_steps"),
        ErrorInput({"bias_correction": "full"}, "bias_correction"),
    ),
))
