"""Adam-atan2: Adam without epsilon, using the two-argument arctangent (Everett et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_, nonfinite_into_


def adam_atan2_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    a: float,
    b: float,
    weight_decay: float,
) -> None:
    """One Adam-atan2 step for one tensor, in place.

    theta <- theta * (1 - lr * weight_decay);  m, v: Adam's moments;
    theta <- theta - lr * a * atan2(m_hat, b * sqrt(v_hat)).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    m_hat = exp_avg / (1 - beta1**step)
    scaled_root = (exp_avg_sq / (1 - beta2**step)).sqrt_().mul_(b)
    direction = nonfinite_into_(m_hat.atan2_(scaled_root), scaled_root)  # m is NaN, or v infinite, if g was
    param.add_(direction, alpha=-lr * a)


class AdamAtan2(ZijOptimizer):
    r"""Adam-atan2: Adam with $\hat m / (\sqrt{\hat v} + \epsilon)$ replaced by an arctangent of the two.

    Adam's ratio needs $\epsilon$ to avoid dividing by zero, and that
    constant must be scaled with the gradients (or it underflows or
    dominates). The two-argument arctangent $\operatorname{atan2}(y, x)$
    behaves like $y/x$ for small ratios, is bounded by $\pi/2$ in magnitude,
    is defined at $x = 0$, and is unchanged when $y$ and $x$ are scaled
    together, so the update needs no $\epsilon$ and is invariant to the
    scale of the gradients. Weight decay is decoupled.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, a\, \operatorname{atan2}\bigl(\hat m_t,\ b \sqrt{\hat v_t}\bigr)
    \end{aligned}
    $$

    $a = b = 1$ gives the plain arctangent form. The defaults $a = 1.27$,
    $b = 1$ are those of the adam-atan2-pytorch package; $a \approx 4/\pi$
    makes a coordinate with $\hat m_t = \sqrt{\hat v_t}$ move by about $\eta$,
    as in Adam. Where $\hat m_t = \hat v_t = 0$ the step is 0.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of $m_t$ and $v_t$.
        weight_decay: decoupled weight decay $\lambda$.
        a: output scale $a > 0$ of the arctangent.
        b: input scale $b > 0$ applied to $\sqrt{\hat v_t}$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdamAtan2(model.parameters(), lr=1e-3, weight_decay=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Everett, Xiao, Wortsman, Alemi, Novak, Liu, Gur, Sohl-Dickstein, Kaelbling, Lee and Pennington,
        "Scaling Exponents Across Parameterizations and Optimizers", ICML 2024.
        https://arxiv.org/abs/2407.05872
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), weight_decay: float = 0.0, a: float = 1.27,
                 b: float = 1.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, a=a, b=b, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(a, "a")
        check_positive(b, "b")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adam_atan2_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                          beta1=beta1, beta2=beta2, a=group["a"], b=group["b"], weight_decay=group["weight_decay"])


_PARITY = {"lr": 1e-2, "betas": (0.9, 0.99), "weight_decay": 0.1, "a": 1.27, "b": 1.5}

register(OptimizerEntry(
    name="AdamAtan2",
    cls=AdamAtan2,
    canon_id="adam-atan2",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "weight_decay") + (
        ErrorInput({"a": 0.0}, r"\ba: "),
        ErrorInput({"b": -1.0}, r"\bb: "),
    ),
    aliases=("Adam-atan2",),
    parity=(
        Parity("adam-atan2-pytorch", "adam_atan2_pytorch:AdamAtan2", _PARITY,
               {**_PARITY, "decoupled_wd": False, "cautious_factor": 1.0, "regen_reg_rate": 0.0}),
    ),
))
