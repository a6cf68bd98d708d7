"""A2Grad: accelerated SGD with a step adapted to the gradient noise (Deng, Cheng and Lan, 2018)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_lr, check_nonnegative, check_positive, check_unit
from .._registry import ErrorInput, OptimizerEntry, Parity, register
from .._tensorlist import TensorList
from ..blocks import ema_, per_tensor
from ._ops import maximum_

#: A2Grad's three ways of accumulating the deviations: uniform, increasing and exponential weights.
VARIANTS = ("uni", "inc", "exp")


def a2grad_update(param, grad, avg_grad, x, v, v_exp, *, step: int, lr: float, beta: float, lips: float, rho: float,
                  variant: str) -> None:
    """One A2Grad step for a tensor or a TensorList, in place (``v_exp`` is None unless variant is "exp").

    gbar <- gbar + (g - gbar) / t;  s = ||g - gbar||^2 (per tensor);
    uni: v <- v + s;  inc: v <- (t / (t + 1))^2 v + s;  exp: vbar <- rho vbar + (1 - rho) s, v <- max(v, vbar);
    h = sqrt(v) (uni) or sqrt((t + 1) v);  c = lr / (2 L / (t + 1) + beta h);
    x <- x - c g;  theta <- (1 - a') (theta - a c g) + a' x  with a' = 2 / (t + 3), a = 1 at t = 1, else 2 / (t + 2).
    """
    ema_(avg_grad, grad, 1.0 - 1.0 / step)
    deviation = per_tensor(lambda g, m: (g - m).square_().sum(), grad, avg_grad)
    if variant == "exp":
        ema_(v_exp, deviation, rho)
        maximum_(v, v_exp)
    else:
        if variant == "inc":
            v.mul_((step / (step + 1)) ** 2)
        v.add_(deviation)
    h = v.sqrt()
    if variant != "uni":
        h.mul_(math.sqrt(step + 1))
    gamma = 2.0 * lips / (step + 1)
    coefficient = (h.mul_(beta).add_(gamma)).reciprocal_().mul_(-lr)  # -c, per tensor
    alpha, alpha_next = (1.0 if step == 1 else 2.0 / (step + 2)), 2.0 / (step + 3)
    x.add_(grad * coefficient)
    param.lerp_(x.to((param[0] if isinstance(param, TensorList) else param).dtype), alpha_next)
    param.add_(grad * coefficient.mul_((1.0 - alpha_next) * alpha))


class A2Grad(ZijOptimizer):
    r"""A2Grad: Nesterov-accelerated SGD whose step shrinks with the gradient noise alone.

    The accelerated scheme keeps an aggressive sequence $x_t$ and takes the
    gradient at an average of it with the past iterates (the parameters
    $\theta_t$ hold that point). Its step $1/(\gamma_t + \beta h_t)$ has a
    smoothness part $\gamma_t = 2L/(t+1)$ and a noise part $h_t$ accumulated
    from how far each gradient deviates from the running mean of all past
    gradients, per tensor: with uniform weights (``uni``), weights that grow
    with $t$ (``inc``), or an exponential moving average with a running
    maximum (``exp``). There is no learning rate in the paper; ``lr``
    multiplies the step (1, the default, is the paper's rule; other values
    equal dividing $L$ and $\beta$ by ``lr``).

    $$
    \begin{aligned}
    \bar g_t &= \bar g_{t-1} + \tfrac{1}{t}\,(g_t - \bar g_{t-1}), \qquad s_t = \lVert g_t - \bar g_t\rVert^{2} \\
    v_t &= \begin{cases} v_{t-1} + s_t & \text{uni} \\ \bigl(\tfrac{t}{t+1}\bigr)^{2} v_{t-1} + s_t & \text{inc} \\ \max\bigl(v_{t-1}, \bar v_t\bigr),\ \bar v_t = \rho\, \bar v_{t-1} + (1-\rho)\, s_t & \text{exp} \end{cases} \\
    h_t &= \sqrt{v_t}\ \text{(uni)}, \qquad h_t = \sqrt{(t+1)\, v_t}\ \text{(inc, exp)}, \qquad c_t = \frac{\eta}{2L/(t+1) + \beta h_t} \\
    x_t &= x_{t-1} - c_t\, g_t \\
    \theta_t &= (1-\alpha_{t+1}) \bigl(\theta_{t-1} - \alpha_t c_t\, g_t\bigr) + \alpha_{t+1}\, x_t, \qquad \alpha_1 = 1,\ \alpha_t = \frac{2}{t+2}\ (t \ge 2)
    \end{aligned}
    $$

    $x_0 = \theta_0$, $\bar v_0 = v_0 = 0$; $g_t$ is the gradient at $\theta_{t-1}$, and $s_t$, $v_t$,
    $h_t$ are numbers per tensor.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: $\eta$, a multiplier of the step (1: the paper's rule).
        beta: $\beta$, the scale of the noise term.
        lips: $L$, the Lipschitz constant of the gradient (the smoothness term).
        rho: $\rho$, the decay of the exponential average (``variant="exp"`` only).
        variant: ``"uni"``, ``"inc"`` or ``"exp"``: how the deviations are accumulated.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.A2Grad(model.parameters(), beta=10.0, lips=10.0, variant="inc")
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Deng, Cheng and Lan, "Optimal Adaptive and Accelerated Stochastic Gradient Descent", arXiv 2018.
        https://arxiv.org/abs/1810.00553
    """

    state_names = ("avg_grad",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, beta: float = 10.0, lips: float = 10.0, rho: float = 0.5,
                 variant: str = "uni", *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        check_lr(lr)
        check_nonnegative(beta, "beta")
        check_positive(lips, "lips")
        check_unit(rho, "rho")
        if variant not in VARIANTS:
            raise ValueError(f"Invalid variant: {variant!r} (expected one of {', '.join(VARIANTS)})")
        super().__init__(params, dict(lr=lr, beta=beta, lips=lips, rho=rho, variant=variant, maximize=maximize,
                                      foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        dtype = group.get("state_dtype") or p.dtype
        state["x"] = self.copy_like(p, group)
        state["v"] = torch.zeros((), dtype=dtype, device=p.device)
        if group["variant"] == "exp":
            state["v_exp"] = torch.zeros((), dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        a2grad_update(p, grad, state["avg_grad"], state["x"], state["v"],
                      state["v_exp"] if "v_exp" in state else None, step=state["step"], lr=group["lr"],
                      beta=group["beta"], lips=group["lips"], rho=group["rho"], variant=group["variant"])


def _parity(variant: str, **extra) -> Parity:
    # pytorch-optimizer counts steps per group (the same count when every parameter steps each time) and has no
    # learning rate (lr=1 here is its rule).
    ours = {"beta": 2.0, "lips": 5.0, "variant": variant, **extra}
    return Parity("pytorch-optimizer", "pytorch_optimizer:A2Grad", ours, {**ours, "foreach": False})


register(OptimizerEntry(
    name="A2Grad",
    cls=A2Grad,
    canon_id="a2grad",
    family="momentum",
    recipe={"lr": 1.0, "beta": 1.0, "lips": 20.0},
    recipes={"rosenbrock": {"lips": 3000.0, "beta": 0.1}},
    variants={"inc": {"variant": "inc"}, "exp": {"variant": "exp"}},
    errors=(
        ErrorInput({"lr": -1.0}, "lr"),
        ErrorInput({"beta": -1.0}, "beta"),
        ErrorInput({"lips": 0.0}, "lips"),
        ErrorInput({"rho": 1.0}, "rho"),
        ErrorInput({"variant": "sum"}, "variant"),
    ),
    parity=(_parity("uni"), _parity("inc"), _parity("exp", rho=0.7)),
))
