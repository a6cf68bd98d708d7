"""AdaLomo: LOMO with an Adafactor-style factored second moment and grouped update normalization (Lv et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register
from ..blocks import ema_, factored_reconstruct
from .lomo import GLOBAL_NORM, check_optional, clip_coefficient, clipped_gradient


def adalomo_update(param, grad, state, *, step: int, lr: float, eps1: float, eps2: float, clip_threshold: float,
                   decay_rate: float, weight_decay: float) -> None:
    """One AdaLomo step for one tensor, in place (``grad`` already clipped, in float32 or wider).

    b = 1 - t^kappa;  u = g^2 + eps1;  row/col means of u (or u itself for vectors) as EMAs with b;
    U = g / sqrt(V_hat);  U <- U / max(1, RMS(U) / d);  lr_t = lr max(eps2, RMS(theta));
    theta <- (1 - lr_t wd) theta - lr_t U   (in float32 or wider, copied back).
    """
    beta = 1 - step**decay_rate
    squared = grad.square().add_(eps1)
    if "exp_avg_sq_row" in state:
        ema_(state["exp_avg_sq_row"], squared.mean(dim=-1), beta)
        ema_(state["exp_avg_sq_col"], squared.mean(dim=-2), beta)
        update = grad / factored_reconstruct(state["exp_avg_sq_row"], state["exp_avg_sq_col"]).sqrt()
    else:
        ema_(state["exp_avg_sq"], squared, beta)
        update = grad / state["exp_avg_sq"].sqrt()
    rms = torch.linalg.vector_norm(update) / update.numel() ** 0.5
    update.div_((rms / clip_threshold).clamp_min(1.0))
    work = param.to(torch.promote_types(param.dtype, torch.float32))
    step_size = (torch.linalg.vector_norm(work) / param.numel() ** 0.5).clamp_min(eps2) * lr
    work.mul_(1 - step_size * weight_decay).sub_(update * step_size)
    if work is not param:
        param.copy_(work)


class AdaLomo(ZijOptimizer):
    r"""AdaLomo: LOMO with Adafactor's factored second moment, update clipping and weight-RMS step sizes.

    Protocol: like LOMO, the official AdaLomo updates each parameter inside the backward
    pass (hooks; ``fused_backward(loss, lr)``, with a first backward pass for the global
    norm when norm clipping is on) and multiplies the loss by ``loss_scale`` before
    backward and divides the gradient by it after. This class applies the same rule as an
    ordinary optimizer (``backward``, then ``step``), so it computes what AdaLomo computes
    but not with its memory saving; loss scaling, an identity up to rounding, is left to
    the caller. Tensors with two or more dimensions keep the factored statistics over their
    last two dimensions (the official code handles matrices and vectors only); vectors
    and scalars keep a full second moment. The state is float32 by default (float64 for
    float64 weights), and the step is computed in float32 or wider and copied back, as in
    the official code.

    $$
    \begin{aligned}
    G_t &= c_t\, \nabla_{\theta} L_t, \qquad c_t = \min\!\left(1, \frac{\tau}{\lVert g_t \rVert_2 + 10^{-6}}\right) \ \text{(only when norm clipping is on)} \\
    \hat\beta_t &= 1 - t^{\kappa} \\
    r_t &= \hat\beta_t\, r_{t-1} + (1-\hat\beta_t)\, \operatorname{mean}_{\text{cols}}(G_t \odot G_t + \epsilon_1) \\
    k_t &= \hat\beta_t\, k_{t-1} + (1-\hat\beta_t)\, \operatorname{mean}_{\text{rows}}(G_t \odot G_t + \epsilon_1) \\
    \hat V_t &= \frac{r_t\, k_t^{\top}}{\operatorname{mean}(r_t)}, \qquad U_t = \frac{G_t}{\sqrt{\hat V_t}} \\
    \hat U_t &= \frac{U_t}{\max\!\left(1, \operatorname{RMS}(U_t)/d\right)} \\
    \eta_t &= \eta\, \max\!\left(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\right) \\
    \theta_t &= (1 - \eta_t \lambda)\, \theta_{t-1} - \eta_t\, \hat U_t
    \end{aligned}
    $$

    With ``clip_grad_value`` the gradient is first clamped to $[-v, v]$ (before $c_t$).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        eps: $(\epsilon_1, \epsilon_2)$: floor added to squared gradients, and floor of the weight RMS.
        clip_threshold: threshold $d$ of the update RMS.
        decay_rate: exponent $\kappa < 0$ of the rate $\hat\beta_t = 1 - t^{\kappa}$.
        weight_decay: decoupled weight decay $\lambda$ (scaled by $\eta_t$).
        clip_grad_norm: threshold $\tau$ of the global gradient norm over all groups (``None``: off).
        clip_grad_value: threshold $v$ of elementwise value clipping (``None``: off).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the second-moment statistics (``None``: float32, or float64 for float64 weights).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaLomo(model.parameters(), lr=1e-3, clip_grad_norm=1.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lv et al., "AdaLomo: Low-memory Optimization with Adaptive Learning Rate", Findings of ACL 2024.
        https://arxiv.org/abs/2310.10195
    """

    def __init__(self, params, lr: float = 1e-3, eps=(1e-30, 1e-3), clip_threshold: float = 1.0,
                 decay_rate: float = -0.8, weight_decay: float = 0.0, clip_grad_norm: float | None = None,
                 clip_grad_value: float | None = None, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        eps = tuple(eps)
        if len(eps) != 2:
            raise ValueError(f"Invalid eps: {eps!r} (expected (eps1, eps2))")
        check_nonnegative(eps[0], "eps[0]")
        check_nonnegative(eps[1], "eps[1]")
        check_positive(clip_threshold, "clip_threshold")
        if not (isinstance(decay_rate, (int, float)) and decay_rate < 0):
            raise ValueError(f"Invalid decay_rate: {decay_rate!r} (expected a number < 0)")
        check_optional(clip_grad_norm, "clip_grad_norm")
        check_optional(clip_grad_value, "clip_grad_value")
        defaults = hyperparameters(lr=lr, clip_threshold=clip_threshold, decay_rate=decay_rate,
                                   weight_decay=weight_decay, clip_grad_norm=clip_grad_norm,
                                   clip_grad_value=clip_grad_value, maximize=maximize, state_dtype=state_dtype)
        super().__init__(params, {**defaults, "eps": eps})  # a pair, checked above

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or torch.promote_types(p.dtype, torch.float32)
        if p.dim() >= 2:
            state["exp_avg_sq_row"] = torch.zeros(p.shape[:-1], dtype=dtype, device=p.device)
            state["exp_avg_sq_col"] = torch.zeros(p.shape[:-2] + p.shape[-1:], dtype=dtype, device=p.device)
        else:
            state["exp_avg_sq"] = torch.zeros(p.shape, dtype=dtype, device=p.device)

    def global_step(self, gathered):
        clip_coefficient(gathered)

    def update(self, p, grad, state, group):
        eps1, eps2 = group["eps"]
        adalomo_update(p, clipped_gradient(grad, group), state, step=state["step"], lr=group["lr"], eps1=eps1,
                       eps2=eps2, clip_threshold=group["clip_threshold"], decay_rate=group["decay_rate"],
                       weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaLomo",
    cls=AdaLomo,
    canon_id="adalomo",
    family="factored",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.02}},
    variants={"clipped": Variant({"clip_grad_norm": 1.0, "clip_grad_value": 5.0}, skips={"param_groups": GLOBAL_NORM})},
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"eps": (-1.0, 1e-3)}, r"eps\[0\]"),
        ErrorInput({"clip_threshold": 0.0}, "clip_threshold"),
        ErrorInput({"decay_rate": 0.5}, "decay_rate"),
        ErrorInput({"clip_grad_norm": -1.0}, "clip_grad_norm"),
    ),
))
