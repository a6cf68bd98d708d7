"""AvaGrad: Adam with a delayed second moment and normalized step sizes (Savarese et al., 2021)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def avagrad_step_sizes(exp_avg_sq: torch.Tensor, *, eps: float) -> torch.Tensor:
    """Per-coordinate step sizes from the previous second moment: 1 / (sqrt(v_{t-1}) + eps)."""
    return exp_avg_sq.sqrt().add_(eps).reciprocal_()


def avagrad_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step_size: torch.Tensor,
    *,
    rms: torch.Tensor,
    lr: float,
    beta1: float,
    beta2: float,
    weight_decay: float,
) -> None:
    """One AvaGrad step for one tensor, in place, given its step sizes and their RMS over the group.

    theta <- theta * (1 - lr * weight_decay);  m <- beta1 * m + (1 - beta1) * g;
    theta <- theta - lr * (step_size / rms) * m;  v <- beta2 * v + (1 - beta2) * g^2.
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    param.addcmul_(step_size.div_(rms), exp_avg, value=-lr)
    ema_sq_(exp_avg_sq, grad, beta2)
class AvaGrad(ZijOptimizer):
    r"""AvaGrad: Adam with a one-step-delayed second moment and step sizes normalized by their RMS.

    The per-coordinate step sizes $\eta_t = 1/(\sqrt{v_{t-1}} + \epsilon)$ use
    the second moment from before the current gradient, so they do not
    depend on it. They are then divided by their root mean square over the
    $d$ coordinates of the parameter group, which keeps the overall step
    size set by $\alpha$ alone, so the learning rate and the adaptivity
    $\epsilon$ can be tuned independently. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    \eta_t &= \frac{1}{\sqrt{v_{t-1}} + \epsilon} \\
    \theta_t &= \theta_{t-1} - \alpha \lambda\, \theta_{t-1} - \alpha\, \frac{\eta_t}{\lVert \eta_t / \sqrt{d}\rVert_2} \odot m_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}
    \end{aligned}
    $$

    With $\lambda = 0$ this is the paper's algorithm (no bias correction; at
    $t = 1$, $v_0 = 0$ makes $\eta_1$ uniform, so the first step is
    $\alpha\, m_1$). The norm runs over the group's parameters that have
    gradients at this step, as in the official code, which also bias-corrects
    $v$; with a single group this is the paper's whole parameter vector.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\alpha$.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        eps: adaptivity $\epsilon > 0$; large values make the method SGD-like.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AvaGrad(model.parameters(), lr=0.1, eps=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Savarese, McAllester, Babu and Maire, "Domain-Independent Dominance of Adaptive Methods",
        CVPR 2021. https://arxiv.org/abs/1912.01823
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 0.1, betas=(0.9, 0.999), eps: float = 0.1, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        check_positive(eps, "eps")  # AvaGrad's eps must be > 0, not only >= 0 as hyperparameters() checks
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def group_step(self, group, params, grads, states):
        beta1, beta2 = group["betas"]
        step_sizes = [avagrad_step_sizes(state["exp_avg_sq"], eps=group["eps"]) for state in states]
        device = step_sizes[0].device
        low = (torch.float16, torch.bfloat16)
        squares = sum(s.square().sum(dtype=torch.float32 if s.dtype in low else s.dtype).to(device) for s in step_sizes)
        count = sum(s.numel() for s in step_sizes)
        rms = (squares / max(count, 1)).sqrt()
        for p, grad, state, step_size in zip(params, grads, states, step_sizes):
            state["step"] += 1
            avagrad_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step_size, rms=rms.to(p.device, p.dtype),
                           lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AvaGrad",
    cls=AvaGrad,
    canon_id="avagrad",
    family="adam-family",
    recipe={"lr": 0.05, "eps": 0.1},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "weight_decay", eps=0.0),
))
