"""Amos: Adam-style steps with an adaptive weight decay toward a model-oriented scale (Tian and Parikh, 2022)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_lr, check_nonnegative, check_positive, check_unit
from .._registry import ErrorInput, OptimizerEntry, Parity, register
from ..blocks import ema_, per_tensor


def default_eta(param: torch.Tensor) -> float:
    """The expected magnitude of a tensor's entries from its shape alone (used where no ``eta`` is given):
    0.5 for vectors and scalars, sqrt(2 / fan_in) for a matrix (out, in), sqrt(1 / shape[1]) otherwise."""
    if param.dim() <= 1:
        return 0.5
    if param.dim() == 2:
        return math.sqrt(2.0 / param.shape[1])
    return math.sqrt(1.0 / param.shape[1])


def amos_update(param, grad, exp_avg_sq, decay, exp_avg, *, step: int, lr: float, eta, beta: float, momentum: float,
                extra_l2: float, c_coef: float, d_coef: float, eps: float, shared: bool) -> None:
    """One Amos step for a tensor or a TensorList, in place (``exp_avg`` is None unless momentum > 0).

    ``eta`` is the model-oriented scale: a number for a tensor, a list of numbers for a TensorList.
    gbar2 = g^2 (or its mean if shared);  v <- beta v + (1 - beta) gbar2;  r = (1 - beta^t) / max(v, eps);
    gamma = xi^2 r gbar2 / sqrt(1 + c sqrt(xi) b);  d = 1 / (1 + d_coef sqrt(xi eta) b);
    u = -d ((gamma / 2 + l2) theta + xi eta sqrt(r) g);  b <- b + gamma (1 + b);
    m <- mu m + (1 - mu) u, u = m if momentum;  theta <- theta + u.
    """
    squared = per_tensor(lambda g: g.square().mean(), grad) if shared else grad.square()
    ema_(exp_avg_sq, squared, beta)
    ratio = exp_avg_sq.clamp_min(eps).reciprocal_().mul_(1.0 - beta**step)
    gamma = (decay * (c_coef * math.sqrt(lr))).add_(1.0).sqrt_().reciprocal_().mul_(lr**2).mul_(ratio).mul_(squared)
    init_lr = [lr * e for e in eta] if isinstance(eta, list) else lr * eta
    d_scale = [d_coef * math.sqrt(x) for x in init_lr] if isinstance(init_lr, list) else d_coef * math.sqrt(init_lr)
    factor_d = (decay * d_scale).add_(1.0).reciprocal_()
    update = param * (gamma * 0.5).add_(extra_l2)
    update.add_((grad * ratio.sqrt_()).mul_(init_lr)).mul_(factor_d).neg_()
    decay.mul_(gamma.add(1.0)).add_(gamma)
    if exp_avg is not None:
        ema_(exp_avg, update, momentum)
        update = exp_avg
    param.add_(update)


class Amos(ZijOptimizer):
    r"""Amos: Adam-style steps whose size and weight decay shrink on their own, toward a model-oriented scale.

    Each tensor has a model-oriented scale $\eta$, the magnitude its entries
    are expected to settle at; the first steps move it by about $\xi\eta$,
    relative to a running average $v_t$ of the squared gradient. An adaptive
    weight decay $\gamma_t$ pulls the weights toward that scale, and its
    accumulated amount $b_t$ shrinks both the decay and the step, so no
    schedule tied to the number of training steps is needed. $v$ and $b$ are
    elementwise by default, or one number per tensor with
    ``shared_moment=True`` (the official code's memory-saving shape
    function reducing every axis). Momentum (an average of the updates,
    without bias correction) and elementwise gradient clipping are optional.

    $$
    \begin{aligned}
    v_t &= \beta\, v_{t-1} + (1-\beta)\, \overline{g_t^{2}}, \qquad r_t = \frac{1-\beta^{t}}{\max(v_t, \varepsilon)} \\
    \gamma_t &= \frac{\xi^{2}\, r_t\, \overline{g_t^{2}}}{\sqrt{1 + c\sqrt{\xi}\, b_{t-1}}}, \qquad d_t = \frac{1}{1 + d\sqrt{\xi\eta}\, b_{t-1}} \\
    u_t &= -d_t \Big( \xi\eta\, \sqrt{r_t}\, g_t + \big(\tfrac{1}{2}\gamma_t + \lambda\big)\, \theta_{t-1} \Big), \qquad b_t = b_{t-1} + \gamma_t\, (1 + b_{t-1}) \\
    m_t &= \mu\, m_{t-1} + (1-\mu)\, u_t \quad (\text{if } \mu > 0,\ \text{then } u_t \leftarrow m_t) \\
    \theta_t &= \theta_{t-1} + u_t
    \end{aligned}
    $$

    $\overline{g_t^{2}}$ is $g_t^2$, or its mean over the tensor with ``shared_moment``; $v_0 = b_0 = m_0 = 0$.
    With ``clip_value`` the gradient's entries are first clipped to $[-c_g, c_g]$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: $\xi$, the global learning rate (the official code suggests about $1/\sqrt{N}$ for $N$ batches).
        beta: $\beta$, the decay of the squared-gradient average.
        momentum: $\mu$, the decay of the optional average of updates (0: off).
        extra_l2: $\lambda$, an extra L2 coefficient.
        c_coef: $c$, the coefficient of $b$ in the decay's own decay factor.
        d_coef: $d$, the coefficient of $b$ in the step's decay factor.
        eps: $\varepsilon$, the floor of $v_t$ (the smallest positive normal float32 by default).
        eta: $\eta$, the model-oriented scale of the group's tensors; ``None``: from each tensor's shape
            (0.5 for vectors and scalars, $\sqrt{2/\text{fan-in}}$ for matrices, $\sqrt{1/\text{shape}[1]}$ beyond).
        shared_moment: keep $v$ and $b$ as one number per tensor.
        clip_value: $c_g$, clip the gradient's entries to $[-c_g, c_g]$ first (``None``: no clipping).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Amos(model.parameters(), lr=1e-2)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Tian and Parikh, "Amos: An Adam-style Optimizer with Adaptive Weight Decay towards Model-Oriented Scale",
        arXiv 2022. https://arxiv.org/abs/2210.11693
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.999, momentum: float = 0.0, extra_l2: float = 0.0,
                 c_coef: float = 0.25, d_coef: float = 0.25, eps: float = 2.0**-125, eta: float | None = None,
                 shared_moment: bool = False, clip_value: float | None = None, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        check_lr(lr)
        check_unit(beta, "beta")
        check_unit(momentum, "momentum")
        for value, name in ((extra_l2, "extra_l2"), (c_coef, "c_coef"), (d_coef, "d_coef")):
            check_nonnegative(value, name)
        check_positive(eps, "eps")
        if eta is not None:
            check_positive(eta, "eta")
        if clip_value is not None:
            check_positive(clip_value, "clip_value")
        super().__init__(params, dict(lr=lr, beta=beta, momentum=momentum, extra_l2=extra_l2, c_coef=c_coef,
                                      d_coef=d_coef, eps=eps, eta=eta, shared_moment=bool(shared_moment),
                                      clip_value=clip_value, maximize=maximize, foreach=foreach,
                                      state_dtype=state_dtype))

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or p.dtype
        shape = () if group["shared_moment"] else p.shape
        state["exp_avg_sq"] = torch.zeros(shape, dtype=dtype, device=p.device)
        state["decay"] = torch.zeros(shape, dtype=dtype, device=p.device)
        if group["momentum"] > 0:
            state["exp_avg"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        if group["clip_value"] is not None:
            grad = grad.clone().clamp_(-group["clip_value"], group["clip_value"])
        eta = per_tensor(lambda t: default_eta(t) if group["eta"] is None else group["eta"], p)
        amos_update(p, grad, state["exp_avg_sq"], state["decay"], state["exp_avg"] if "exp_avg" in state else None,
                    step=state["step"], lr=group["lr"], eta=eta, beta=group["beta"], momentum=group["momentum"],
                    extra_l2=group["extra_l2"], c_coef=group["c_coef"], d_coef=group["d_coef"], eps=group["eps"],
                    shared=group["shared_moment"])


register(OptimizerEntry(
    name="Amos",
    cls=Amos,
    canon_id="amos",
    family="adaptive",
    recipe={"lr": 0.1, "eta": 1.0},
    recipes={"rosenbrock": {"lr": 0.02, "eta": 1.0, "beta": 0.99}},
    variants={"shared_moment": {"shared_moment": True}, "momentum": {"momentum": 0.9},
              "clip_value": {"clip_value": 100.0}},
    errors=(
        ErrorInput({"lr": -1.0}, "lr"),
        ErrorInput({"beta": 1.0}, "beta"),
        ErrorInput({"momentum": 1.0}, "momentum"),
        ErrorInput({"extra_l2": -1.0}, "extra_l2"),
        ErrorInput({"c_coef": -1.0}, "c_coef"),
        ErrorInput({"eps": 0.0}, "eps"),
        ErrorInput({"eta": 0.0}, "eta"),
        ErrorInput({"clip_value": 0.0}, "clip_value"),
    ),
    parity=(
        # pytorch-optimizer keeps v and b per tensor (shared_moment=True), takes eta from the shape (eta=None),
        # adds its eps (1e-18) to v where the official code floors v (a difference far below rtol here), and
        # scales extra_l2 differently from the official code, so the references run without it.
        Parity("pytorch-optimizer", "pytorch_optimizer:Amos",
               {"lr": 1e-2, "beta": 0.99, "shared_moment": True},
               {"lr": 1e-2, "beta": 0.99, "eps": 1e-18}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Amos",
               {"lr": 3e-2, "beta": 0.999, "momentum": 0.9, "c_coef": 0.5, "d_coef": 0.1, "shared_moment": True},
               {"lr": 3e-2, "beta": 0.999, "momentum": 0.9, "c_coef": 0.5, "d_coef": 0.1, "eps": 1e-18}),
    ),
))
