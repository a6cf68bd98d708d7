"""MoMo: a Polyak-type step on a momentum model of the loss, for SGD with momentum (Schaipp et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ._polyak import LossStepMixin


def momo_step_size(*, loss_avg: float, dot: float, gamma: float, norm: float, rho: float, lr: float,
                   weight_decay: float, lb: float) -> float:
    """tau = min{lr / rho, ((1 + lr wd)(f_avg - rho lb) + <d, theta> - (1 + lr wd) gamma)_+ / norm}."""
    factor = 1 + lr * weight_decay
    numerator = max(factor * (loss_avg - rho * lb) + dot - factor * gamma, 0.0)
    adaptive = numerator / norm if norm > 0 else math.inf  # norm 0: d = 0, nothing moves but the decay
    return min(lr / rho, adaptive)


def momo_update(param, grad_avg, *, tau: float, lr: float, weight_decay: float) -> None:
    """theta <- (theta - tau d) / (1 + lr wd) for a tensor or a TensorList, in place."""
    param.add_(grad_avg, alpha=-tau)
    if weight_decay > 0:
        param.div_(1 + lr * weight_decay)


class Momo(LossStepMixin, ZijOptimizer):
    r"""MoMo: SGD with momentum whose step is a truncated Polyak step on a momentum model of the loss.

    Moving averages of the losses, the gradients and the products $\langle g, \theta\rangle$
    build a model of the loss; its Polyak step, truncated at the user learning rate
    $\eta$ and using a lower bound $f_*$ of the loss (zero by default), sets the step
    along the momentum $d_t$. The learning rate becomes much less critical to tune.

    $$
    \begin{aligned}
    d_t &= \beta d_{t-1} + (1-\beta)\, g_t \\
    \bar f_t &= \beta \bar f_{t-1} + (1-\beta)\, f_t(\theta_t) \\
    \gamma_t &= \beta \gamma_{t-1} + (1-\beta)\, \langle g_t, \theta_t \rangle \\
    \tau_t &= \min\left\{ \frac{\eta}{\rho_t},\ \frac{\big( (1+\eta\lambda)(\bar f_t - \rho_t f_*) + \langle d_t, \theta_t \rangle - (1+\eta\lambda)\,\gamma_t \big)_+}{\lVert d_t \rVert_2^{2}} \right\} \\
    \theta_{t+1} &= \frac{\theta_t - \tau_t\, d_t}{1 + \eta\lambda}
    \end{aligned}
    $$

    By default ($\rho_t = 1$) the three averages start at the first step's gradient, loss
    and product; with ``bias_correction`` they start at zero and $\rho_t = 1 - \beta^{t}$.
    Inner products and norms run over all parameters of all groups, $\bar f$ is shared; each
    group uses its own $\eta$ and $\lambda$. The official code's online estimate of $f_*$
    (``use_fstar``) is not included.

    Protocol: ``step`` needs the loss, so it must be given a closure that returns it
    (the closure may compute the gradients, or be ``lambda: loss`` after ``loss.backward()``).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: user learning rate $\eta$, the cap of the adaptive step.
        beta: momentum coefficient $\beta$ in [0, 1).
        lb: lower bound $f_*$ of the loss.
        weight_decay: weight decay $\lambda$ (applied as a proximal division).
        bias_correction: averages started at zero, with the correction $\rho_t = 1 - \beta^{t}$.
        maximize: maximize the objective instead of minimizing it (the model uses the negated loss).
        foreach: use the multi-tensor path for the step (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Momo(model.parameters(), lr=1.0)
        >>> loss = model(torch.randn(8, 4)).square().mean()
        >>> loss.backward()
        >>> _ = opt.step(lambda: loss)

    References:
        Schaipp, Ohana, Eickenberg, Defazio and Gower, "MoMo: Momentum Models for Adaptive Learning
        Rates", ICML 2024. https://arxiv.org/abs/2305.07583
    """

    state_names = ("grad_avg",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, beta: float = 0.9, lb: float = 0.0, weight_decay: float = 0.0,
                 bias_correction: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, weight_decay=weight_decay)
        if not isinstance(lb, (int, float)) or not math.isfinite(lb):
            raise ValueError(f"Invalid lb: {lb!r} (expected a finite number)")
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta: {beta!r} (expected a number in [0, 1))")
        defaults.update(beta=beta, lb=lb, bias_correction=bias_correction, maximize=maximize, foreach=foreach,
                        state_dtype=state_dtype, k=0, loss_avg=0.0)
        super().__init__(params, defaults)

    def global_step(self, gathered):
        self._move = False
        if not any(params for _, params, _, _ in gathered):
            return
        first = self.param_groups[0]
        beta, corrected = first["beta"], first["bias_correction"]
        k = first["k"] + 1
        loss_avg = first["loss_avg"] if (k > 1 or corrected) else self.loss_value
        loss_avg = beta * loss_avg + (1 - beta) * self.loss_value
        dot = gamma = norm = 0.0
        for _, params, grads, states in gathered:
            for p, g, state in zip(params, grads, states):
                product = torch.dot(p.flatten(), g.flatten())
                if "grad_dot_w" not in state:
                    zero = torch.zeros((), dtype=p.dtype, device=p.device)
                    state["grad_dot_w"] = zero if corrected else product.clone()
                    if not corrected:
                        state["grad_avg"].copy_(g)
                d = state["grad_avg"]
                d.mul_(beta).add_(g, alpha=1 - beta)
                state["grad_dot_w"].mul_(beta).add_(product, alpha=1 - beta)
                dot += float(torch.dot(p.flatten(), d.flatten().to(p.dtype)))
                gamma += float(state["grad_dot_w"])
                norm += float(torch.dot(d.flatten(), d.flatten()))
        rho = 1 - beta**k if corrected else 1.0
        for group in self.param_groups:
            group.update(k=k, loss_avg=loss_avg)
            group["tau"] = momo_step_size(loss_avg=loss_avg, dot=dot, gamma=gamma, norm=norm, rho=rho, lr=group["lr"],
                                          weight_decay=group["weight_decay"], lb=group["lb"])
        self._move = True

    def group_step(self, group, params, grads, states):
        if self._move:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        momo_update(p, state["grad_avg"], tau=group["tau"], lr=group["lr"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Momo",
    cls=Momo,
    canon_id="momo",
    family="parameter-free",
    recipe={"lr": 1.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(needs_closure=True, elementwise=False),
    variants={"bias_correction": {"bias_correction": True}, "decay": {"weight_decay": 0.001}},
    skips={"param_groups": "the model's inner products and norms and the loss average are shared by all groups, "
                           "so one Momo over two groups is not two over one group each (as in the official code)",
           "ndims": "the shared check's loss sum(p^2 + p) is exactly 0 at its 0-d starting point, where a Polyak "
                    "step with lower bound 0 does not move by design; test_momo.py steps 0-d to 4-d tensors"},
    errors=invalid("lr", "weight_decay") + (ErrorInput({"beta": 1.0}, "beta"), ErrorInput({"lb": math.inf}, "lb")),
    # parity with the official momo-opt: tests/optim/test_momo.py (it keeps some state in float32 tensors
    # created with torch's default dtype, so the comparison runs with float64 as the default)
))
