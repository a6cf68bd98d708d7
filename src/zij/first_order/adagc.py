"""AdaGC: AdamW on gradients clipped per tensor against a moving average of their own norms (Wang et al., 2025)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_positive, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_, minimum_, per_tensor
from ._ops import map_


def _norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x)


def adagc_update(param, grad, exp_avg, exp_avg_sq, gamma, *, step: int, global_norm: torch.Tensor, lr: float,
                 beta1: float, beta2: float, beta: float, lambda_abs: float, lambda_rel: float, warmup_steps: int,
                 eps: float, weight_decay: float) -> None:
    """One AdaGC step for a tensor or a TensorList, in place (``gamma`` holds each tensor's 0-dim threshold).

    theta <- (1 - lr wd) theta.  Warm-up (t < warmup_steps, and always t = 1): g_hat = min(1, l_abs / (||g||_global
    + eps)) g and gamma <- min(gamma, ||g_hat||) (gamma_1 = ||g_hat||).  Later, per tensor: g_hat = h g with
    h = min(1, l_rel max(gamma, eps) / max(||g||, eps)), gamma <- b gamma + (1 - b) ||g_hat||.  Then Adam on g_hat:
    theta <- theta - lr m / (1 - b1^t) / (sqrt(v) / sqrt(1 - b2^t) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    if step < warmup_steps or step == 1:
        clipped = grad * (lambda_abs / (global_norm + eps)).clamp_max(1.0)
        norms = per_tensor(_norm, clipped)
        if step == 1:
            gamma.copy_(norms)
        else:
            minimum_(gamma, norms)
    else:
        scale = per_tensor(lambda g, c: (lambda_rel * c.clamp_min(eps) / _norm(g).clamp_min(eps)).clamp_max(1.0),
                           grad, gamma)
        clipped = map_(torch.mul, grad, scale)
        ema_(gamma, per_tensor(_norm, clipped), beta)
    ema_(exp_avg, clipped, beta1)
    ema_sq_(exp_avg_sq, clipped, beta2)
    denom = exp_avg_sq.sqrt().div_(math.sqrt(bias_correction(beta2, step))).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-lr / bias_correction(beta1, step))


class AdaGC(ZijOptimizer):
    r"""AdaGC: AdamW whose gradients are first clipped per tensor, relative to each tensor's own recent norms.

    Instead of one global clipping threshold, each tensor keeps $\gamma^{(i)}_t$, a
    moving average of its clipped gradient norms, and its gradient is shrunk when its
    norm exceeds $\lambda_{\mathrm{rel}}$ times that average, so abnormal gradients are cut
    before they reach Adam's moments. During a warm-up the clipping is global, with the
    absolute threshold $\lambda_{\mathrm{abs}}$, and $\gamma$ starts as the smallest clipped
    norm seen. Weight decay is decoupled.

    $$
    \begin{aligned}
    &t < T_w \text{ or } t = 1: \quad \tilde g_t = \min\Big(1,\ \frac{\lambda_{\mathrm{abs}}}{\lVert g_t\rVert + \epsilon}\Big)\, g_t, \qquad \gamma^{(i)}_t = \min\big(\gamma^{(i)}_{t-1},\ \lVert \tilde g^{(i)}_t\rVert\big), \quad \gamma^{(i)}_0 = \infty \\
    &t \ge T_w,\ t > 1: \quad h^{(i)}_t = \min\Big(1,\ \frac{\lambda_{\mathrm{rel}}\, \max(\gamma^{(i)}_{t-1}, \epsilon)}{\max(\lVert g^{(i)}_t\rVert, \epsilon)}\Big), \qquad \tilde g^{(i)}_t = h^{(i)}_t\, g^{(i)}_t, \qquad \gamma^{(i)}_t = \beta\, \gamma^{(i)}_{t-1} + (1-\beta)\, \lVert \tilde g^{(i)}_t\rVert \\
    &m_t = \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    &\theta_t = (1 - \eta\lambda)\, \theta_{t-1} - \frac{\eta}{1-\beta_1^{t}}\, \frac{m_t}{\sqrt{v_t} / \sqrt{1-\beta_2^{t}} + \epsilon}
    \end{aligned}
    $$

    $\lVert g_t\rVert$ is the norm of all gradients of all groups together; $i$ indexes
    tensors. The step count is each parameter's own.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, Adam's decay rates.
        beta: $\beta$, smoothing of each tensor's norm average.
        lambda_abs: $\lambda_{\mathrm{abs}} > 0$, the global threshold of the warm-up.
        lambda_rel: $\lambda_{\mathrm{rel}} > 0$, the relative threshold (slightly above 1).
        warmup_steps: $T_w$, the step from which clipping is per tensor.
        weight_decay: decoupled weight decay $\lambda$.
        eps: $\epsilon$, in Adam's denominator and guarding the norms.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaGC(model.parameters(), lr=1e-3, warmup_steps=100)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Wang, Li, Chen, Zeng, Yang, Yu, Ma and Shen, "AdaGC: Enhancing LLM Pretraining Stability via Adaptive
        Gradient Clipping", ICML 2026. https://arxiv.org/abs/2502.11034
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), beta: float = 0.98, lambda_abs: float = 1.0,
                 lambda_rel: float = 1.05, warmup_steps: int = 100, weight_decay: float = 0.1, eps: float = 1e-8, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, beta=beta, lambda_abs=lambda_abs, lambda_rel=lambda_rel,
                                   warmup_steps=warmup_steps, weight_decay=weight_decay, eps=eps, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        check_unit(beta, "beta")
        check_positive(lambda_abs, "lambda_abs")
        check_positive(lambda_rel, "lambda_rel")
        check_int(warmup_steps, "warmup_steps", minimum=0)
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["gamma"] = torch.zeros((), dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def global_step(self, gathered):
        """The norm of all gradients of all groups, kept in each group for this step's warm-up clipping."""
        grads = [g for _, _, gs, _ in gathered for g in gs]
        if not grads:
            return
        norm = torch.linalg.vector_norm(torch.stack([_norm(g).to(grads[0].device) for g in grads]))
        for group in self.param_groups:
            group["global_grad_norm"] = norm

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        device = (p[0] if isinstance(p, TensorList) else p).device
        adagc_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["gamma"], step=state["step"],
                     global_norm=group["global_grad_norm"].to(device), lr=group["lr"], beta1=beta1, beta2=beta2,
                     beta=group["beta"], lambda_abs=group["lambda_abs"], lambda_rel=group["lambda_rel"],
                     warmup_steps=group["warmup_steps"], eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaGC",
    cls=AdaGC,
    canon_id="adagc",
    family="adam-family",
    recipe={"lr": 0.05, "weight_decay": 0.0, "warmup_steps": 5},
    recipes={"rosenbrock": {"lr": 0.01, "weight_decay": 0.0, "warmup_steps": 5}},
    skips={"param_groups": "the warm-up clips with the norm of all gradients of all groups together, so one "
                           "optimizer over two groups is not two optimizers over one group each"},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"beta": 1.0}, "beta"), ErrorInput({"lambda_abs": 0.0}, "lambda_abs"),
        ErrorInput({"lambda_rel": -1.0}, "lambda_rel"), ErrorInput({"warmup_steps": -1}, "warmup_steps")),
    parity=(
        # 10 warm-up steps, then 40 with per-tensor clipping (lambda_rel 1.01 makes it clip). lambda_abs 100: the
        # warm-up's global clipping does not act here, since pytorch-optimizer takes the global norm in float32
        # (a 1e-8 relative difference in float64); test_adagc.py checks that clipping by hand.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaGC",
               {"lr": 1e-3, "lambda_abs": 100.0, "lambda_rel": 1.01, "warmup_steps": 10, "weight_decay": 0.1},
               {"lr": 1e-3, "lambda_abs": 100.0, "lambda_rel": 1.01, "warmup_steps": 10, "weight_decay": 0.1}),
    ),
))
