"""QHAdam: quasi-hyperbolic Adam (Ma and Yarats, 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import ema_


def qhadam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    nu1: float,
    nu2: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One QHAdam step for one tensor, in place.

    g <- g + weight_decay * theta;  m, v: Adam's moments, bias-corrected to m_hat, v_hat;
    theta <- theta - lr * ((1 - nu1) g + nu1 m_hat) / (sqrt((1 - nu2) g^2 + nu2 v_hat) + eps).
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    grad_sq = grad * grad
    ema_(exp_avg, grad, beta1)
    ema_(exp_avg_sq, grad_sq, beta2)
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    numerator = m_hat.mul_(nu1).add_(grad, alpha=1 - nu1)
    denominator = v_hat.mul_(nu2).add_(grad_sq, alpha=1 - nu2).sqrt_().add_(eps)
    param.addcdiv_(numerator, denominator, value=-lr)


class QHAdam(ZijOptimizer):
    r"""QHAdam (quasi-hyperbolic Adam): Adam whose moments are mixed with the current gradient.

    The numerator mixes the current gradient with Adam's bias-corrected
    first moment (weight $\nu_1$ on the moment), and the denominator mixes the
    current squared gradient with the bias-corrected second moment (weight
    $\nu_2$). $\nu_1 = \nu_2 = 1$ is Adam. An optional L2 term is added to the
    gradient, as in the authors' code (with $\lambda = 0$ this is the paper's
    algorithm).

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad \hat m_t = \frac{m_t}{1-\beta_1^{t}} \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{(1-\nu_1)\, \tilde g_t + \nu_1 \hat m_t}{\sqrt{(1-\nu_2)\, \tilde g_t^{2} + \nu_2 \hat v_t} + \epsilon}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moment estimates.
        nus: $(\nu_1, \nu_2)$ in $[0, 1]$, immediate discounts of the numerator and the denominator.
        eps: $\epsilon$, added to the denominator.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.QHAdam(model.parameters(), lr=1e-3, nus=(0.7, 1.0))
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Ma and Yarats, "Quasi-hyperbolic momentum and Adam for deep learning", ICLR 2019.
        https://arxiv.org/abs/1810.06801
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), nus=(0.7, 1.0), eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, nus=nus, eps=eps, weight_decay=weight_decay, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        nus = defaults["nus"] = tuple(nus)
        if len(nus) != 2:
            raise ValueError(f"Invalid nus: {nus!r} (expected 2 values)")
        for i, nu in enumerate(nus):
            check_unit(nu, f"nus[{i}]", closed=True)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        nu1, nu2 = group["nus"]
        qhadam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                      beta1=beta1, beta2=beta2, nu1=nu1, nu2=nu2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="QHAdam",
    cls=QHAdam,
    canon_id="qhadam",
    family="adam-family",
    recipe={"lr": 0.05},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"nus": (0.7, 1.5)}, r"nus\[1\]"),
    ),
    # Not pytorch-optimizer's QHAdam: it keeps its bias-correction weights in float32 tensors and so
    # drifts from a float64 computation by more than 1e-6 within 50 steps.
    parity=(
        Parity("qhoptim", "qhoptim.pyt:QHAdam",
               {"lr": 1e-2, "betas": (0.9, 0.999), "nus": (0.7, 0.8), "eps": 1e-8, "weight_decay": 0.01},
               {"lr": 1e-2, "betas": (0.9, 0.999), "nus": (0.7, 0.8), "eps": 1e-8, "weight_decay": 0.01,
                "decouple_weight_decay": False}),
    ),
))
