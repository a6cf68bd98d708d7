"""BCOS: block-coordinate optimal step sizes from a conditional second-moment estimate (Jiang and Xiao, 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_

MODES = ("c", "g", "m")


def bcos_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta: float, beta2: float | None,
                eps: float, weight_decay: float, mode: str, simple_cond: bool) -> None:
    """One BCOS step for a tensor or a TensorList, in place (``exp_avg`` is None in mode g, ``exp_avg_sq`` in mode c).

    theta' = (1 - lr wd) theta.  Mode c: v = (3b^2 - 2b^3) m^2 + (1 - b)^2 g^2 + 2b(1 - b)^2 m g from the previous
    momentum (simple_cond: b_v m^2 + (1 - b_v) g^2), then m <- b m + (1 - b) g and d = m.  Modes g and m: d = g or
    the momentum, v <- b_v v + (1 - b_v) d^2.  theta <- theta' - lr d / (sqrt(v) + eps).  At the first step the
    momentum and v start from the first gradient (m_0 = g_1, v_0 = g_1^2).
    """
    decoupled_decay_(param, lr, weight_decay)
    if step == 1:
        if exp_avg is not None:
            exp_avg.copy_(grad)
        if exp_avg_sq is not None:
            exp_avg_sq.copy_(grad.square())
    if mode == "c":
        if simple_cond:
            b = 1 - (1 - beta) ** 2 if beta2 is None else beta2
            second = exp_avg.square().mul_(b).add_(grad.square(), alpha=1 - b)
        else:
            second = (exp_avg.square().mul_(3 * beta**2 - 2 * beta**3).add_(grad.square(), alpha=(1 - beta) ** 2)
                      .add_(exp_avg * grad, alpha=2 * beta * (1 - beta) ** 2))
    direction = grad
    if mode in ("m", "c"):
        direction = ema_(exp_avg, grad, beta)
    if mode in ("g", "m"):
        second = ema_sq_(exp_avg_sq, direction, beta if beta2 is None else beta2)
    param.addcdiv_(direction, second.sqrt().add_(eps), value=-lr)


class BCOS(ZijOptimizer):
    r"""BCOS (Block Coordinate Optimal Stepsizes): momentum over a conditional estimate of its own second moment.

    Each coordinate's step size is chosen to minimize the expected distance of the next
    iterate to a target point, which scales the search direction by its estimated second
    moment. The default mode ``"c"`` uses the momentum as direction and estimates its second
    moment from the previous momentum and the current gradient alone, so no second-moment
    state is stored and there is one decay rate. Weight decay is decoupled (BCOSW).

    $$
    \begin{aligned}
    \theta' &= (1 - \eta\lambda)\, \theta_{t-1} \\
    v_t &= (3\beta^{2} - 2\beta^{3})\, m_{t-1}^{2} + (1-\beta)^{2}\, g_t^{2} + 2\beta(1-\beta)^{2}\, m_{t-1}\, g_t \\
    m_t &= \beta\, m_{t-1} + (1-\beta)\, g_t \\
    \theta_t &= \theta' - \eta\, \frac{m_t}{\sqrt{v_t} + \epsilon}
    \end{aligned}
    $$

    The momentum starts at the first gradient ($m_0 = g_1$). Other estimators, as in the
    official code: ``simple_cond`` gives $v_t = b\, m_{t-1}^2 + (1-b)\, g_t^2$ with
    $b = 1-(1-\beta)^2$ (or ``beta2``); mode ``"g"`` is RMSProp-like, direction $g_t$ and
    $v_t$ a moving average of $g_t^2$; mode ``"m"`` takes the direction $m_t$ and a moving
    average of $m_t^2$ (decay ``beta2``, default $\beta$, both started at $g_1^2$).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: base step size $\eta$ (a required argument in the official code).
        beta: $\beta$, the momentum coefficient.
        beta2: decay of the moving average of modes g and m, or $b$ of ``simple_cond`` (``None``: from $\beta$).
        eps: $\epsilon$, added to $\sqrt{v_t}$.
        weight_decay: decoupled weight decay $\lambda$.
        mode: ``"c"`` (conditional estimator), ``"g"`` or ``"m"`` (moving-average estimators).
        simple_cond: in mode c, the simpler conditional estimator.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.BCOS(model.parameters(), lr=1e-3, weight_decay=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Jiang and Xiao, "Stochastic Approximation with Block Coordinate Optimal Stepsizes", arXiv 2025.
        https://arxiv.org/abs/2507.08963
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, beta: float = 0.9, beta2: float | None = None, eps: float = 1e-6,
                 weight_decay: float = 0.1, mode: str = "c", simple_cond: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, beta2=beta2, eps=eps, weight_decay=weight_decay, mode=mode,
                                   simple_cond=bool(simple_cond), maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype)
        check_unit(beta, "beta")
        if beta2 is not None:
            check_unit(beta2, "beta2", closed=True)
        if mode not in MODES:
            raise ValueError(f"Invalid mode: {mode!r} (expected one of {', '.join(MODES)})")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        if group["mode"] in ("m", "c"):
            state["exp_avg"] = self.zeros_like(p, group)
        if group["mode"] in ("g", "m"):
            state["exp_avg_sq"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        bcos_update(p, grad, state["exp_avg"] if "exp_avg" in state else None,
                    state["exp_avg_sq"] if "exp_avg_sq" in state else None, step=state["step"], lr=group["lr"],
                    beta=group["beta"], beta2=group["beta2"], eps=group["eps"], weight_decay=group["weight_decay"],
                    mode=group["mode"], simple_cond=group["simple_cond"])


def _parity(mode: str) -> Parity:
    kwargs = {"lr": 1e-3, "beta": 0.9, "weight_decay": 0.1, "mode": mode}
    return Parity("pytorch-optimizer", "pytorch_optimizer:BCOS", kwargs, kwargs)


register(OptimizerEntry(
    name="BCOS",
    cls=BCOS,
    canon_id="bcos",
    family="adam-family",
    aliases=("BCOSW",),
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={"simple_cond": {"simple_cond": True}, "g": {"mode": "g"}, "m": {"mode": "m", "beta2": 0.99}},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"beta": 1.0}, "beta"), ErrorInput({"beta2": 1.5}, "beta2"), ErrorInput({"mode": "x"}, "mode")),
    # Modes g and m only: in mode c pytorch-optimizer builds v_t from the momentum after its update (m_t), the
    # official code (and the paper's conditional estimator) from m_{t-1}; test_bcos.py checks mode c by hand.
    parity=(_parity("g"), _parity("m")),
))
