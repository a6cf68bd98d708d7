"""DualAdam: Adam blended with its inverse counterpart early in training (Shi, Chen, Jin and Zhou, 2026)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_, ema_sq_


def inverse_weight(step: int, switch_rate: float) -> float:
    """alpha_t = max(0, 1 - s t), the weight of the inverse (InvAdam) step."""
    return max(0.0, 1.0 - switch_rate * step)


def dual_adam_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float,
                     eps: float, switch_rate: float, weight_decay: float) -> None:
    """One DualAdam step for a tensor or a TensorList, in place.

    m, v: Adam's moments;  m_hat = m / (1 - b1^t);  n = sqrt(v / (1 - b2^t)) + eps;  a = max(0, 1 - s t);
    u = (1 - a) m_hat / n + a m_hat n while a >= s, else m_hat / n;  theta <- (1 - lr wd) theta - lr u.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    m_hat = exp_avg / bias_correction(beta1, step)
    denom = (exp_avg_sq / bias_correction(beta2, step)).sqrt_().add_(eps)
    alpha = inverse_weight(step, switch_rate)
    if alpha >= switch_rate:
        update = (m_hat / denom).mul_(1.0 - alpha).add_(m_hat.mul(denom).mul_(alpha))
    else:
        update = m_hat.div_(denom)
    decoupled_decay_(param, lr, weight_decay).add_(update, alpha=-lr)


class DualAdam(ZijOptimizer):
    r"""DualAdam: a step that moves from inverse Adam to Adam over the first steps of training.

    Inverse Adam (InvAdam) multiplies the bias-corrected momentum by Adam's denominator
    instead of dividing by it, so coordinates with large gradient variance take larger
    steps and the iterate is pushed out of sharp minima. DualAdam mixes the two with a
    weight $\alpha_t$ that falls linearly from one by the switch rate $s$ per step; once
    $\alpha_t < s$ (after $1/s - 1$ steps) the rule is Adam with decoupled weight decay.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \hat m_t &= \frac{m_t}{1-\beta_1^{t}}, \qquad n_t = \sqrt{\frac{v_t}{1-\beta_2^{t}}} + \epsilon \\
    \alpha_t &= \max(0,\ 1 - s\,t) \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta \begin{cases} (1-\alpha_t)\, \dfrac{\hat m_t}{n_t} + \alpha_t\, \hat m_t \odot n_t & \alpha_t \ge s \\ \dfrac{\hat m_t}{n_t} & \text{otherwise} \end{cases}
    \end{aligned}
    $$

    The step count $t$ is each parameter's own (the official code counts optimizer steps;
    the two agree when every parameter has a gradient at every step).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the moment averages.
        eps: $\epsilon$, added to the root of the second moment.
        switch_rate: $s$ in [0, 1], the decrease of the inverse step's weight per step.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DualAdam(model.parameters(), lr=1e-3, switch_rate=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Shi, Chen, Jin and Zhou, "Combining Adam and its Inverse Counterpart to Enhance Generalization of
        Deep Learning Optimizers", arXiv 2026. https://arxiv.org/abs/2603.07122
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, switch_rate: float = 0.01,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, switch_rate=switch_rate, weight_decay=weight_decay,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(switch_rate, "switch_rate", closed=True)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        dual_adam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                         beta1=beta1, beta2=beta2, eps=group["eps"], switch_rate=group["switch_rate"],
                         weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="DualAdam",
    cls=DualAdam,
    canon_id="dualadam",
    family="adam-family",
    aliases=("InvAdam",),
    recipe={"lr": 0.01, "switch_rate": 0.1},
    # Rosenbrock's first gradients (|g| ~ 155) make any inverse step, which grows like g^2, leave the valley for
    # good; there the recipe switches to Adam at once (alpha_1 = 0), and the inverse phase is tested on the others.
    recipes={"rosenbrock": {"lr": 0.01, "switch_rate": 1.0}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (ErrorInput({"switch_rate": 1.5}, "switch_rate"),),
    parity=(
        # 60 steps so the switch (alpha_t < s after 1/s - 1 steps) happens inside the comparison; pytorch-optimizer's
        # decay defaults to L2, weight_decouple=True gives the official decoupled decay.
        Parity("pytorch-optimizer", "pytorch_optimizer:DualAdam",
               {"lr": 1e-3, "betas": (0.9, 0.99), "switch_rate": 0.05, "weight_decay": 0.1},
               {"lr": 1e-3, "betas": (0.9, 0.99), "switch_rate": 0.05, "weight_decay": 0.1, "weight_decouple": True},
               steps=60),
    ),
))
