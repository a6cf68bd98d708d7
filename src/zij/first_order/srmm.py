"""SRMM: stochastic regularized majorization-minimization, the double-averaged proximal SGD instance (Lyu, 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, check_positive, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import ema_


def srmm_update(param, grad, avg_grad, avg_param, *, step: int, lr: float, beta: float, proximal: float) -> None:
    """One SRMM step for a tensor or a TensorList, in place.

    w = (t + 1)^-beta;  g_bar <- (1 - w) g_bar + w g;  theta_bar <- (1 - w) theta_bar + w theta;
    with L = 1 / lr:  theta <- (1 - c) theta_bar + c theta - g_bar / (L + proximal),  c = proximal / (L + proximal).
    """
    weight = (step + 1) ** (-beta)
    ema_(avg_grad, grad, 1 - weight)
    ema_(avg_param, param, 1 - weight)
    # with L = 1/lr: c = proximal / (L + proximal) and 1 / (L + proximal), written in lr so that lr = 0
    # (a warm-up schedule's first step) is the limit L -> inf: the iterate becomes theta_bar
    pull = proximal * lr / (1.0 + proximal * lr)
    param.mul_(pull).add_(avg_param, alpha=1 - pull).add_(avg_grad, alpha=-lr / (1.0 + proximal * lr))


class SRMM(ZijOptimizer):
    r"""SRMM: minimize a running average of quadratic surrogates, optionally with a proximal pull.

    At each step the loss on a fresh sample is majorized by the quadratic surrogate
    $f(\theta_{t-1}) + \langle \nabla f(\theta_{t-1}), \theta - \theta_{t-1}\rangle +
    \tfrac{L}{2}\lVert \theta - \theta_{t-1}\rVert^{2}$; SRMM keeps a weighted running average of
    these surrogates (with weights $w_t$ decreasing in $t$) and moves to the minimizer of the
    average plus a proximal term $\tfrac{\lambda}{2}\lVert \theta - \theta_{t-1}\rVert^{2}$. The
    average of quadratics is again a quadratic, held by two running averages: of the gradients
    $\bar g_t$ and of the iterates where they were taken $\bar\theta_t$. This is the
    double-averaged proximal SGD of the official code; the curvature is $L = 1/\eta$, so a
    scheduler may change it through the learning rate.

    $$
    \begin{aligned}
    w_t &= (t+1)^{-\beta} \\
    \bar g_t &= (1 - w_t)\, \bar g_{t-1} + w_t\, \nabla f(\theta_{t-1}; x_t), \qquad \bar\theta_t = (1 - w_t)\, \bar\theta_{t-1} + w_t\, \theta_{t-1}, \qquad \bar g_0 = \bar\theta_0 = 0 \\
    \theta_t &= \Big(1 - \frac{\lambda}{L + \lambda}\Big)\, \bar\theta_t + \frac{\lambda}{L + \lambda}\, \theta_{t-1} - \frac{1}{L + \lambda}\, \bar g_t, \qquad L = 1/\eta
    \end{aligned}
    $$

    The averages start at zero and $w_1 = 2^{-\beta}$, as in the official code, so with
    $\lambda = 0$ the first step also shrinks the weights toward zero by $w_1$. With $\beta = 0$
    every weight is 1 and SRMM is SGD with learning rate $1/(L + \lambda)$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta = 1/L$, the inverse curvature of the surrogates (> 0).
        beta: $\beta$, decay exponent of the averaging weights, in [0, 1].
        proximal: $\lambda$, proximal regularization coefficient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SRMM(model.parameters(), lr=0.01, beta=0.5)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lyu, "Stochastic Regularized Majorization-Minimization with Weakly Convex and Multi-Convex Surrogates",
        JMLR 2024. https://arxiv.org/abs/2201.01652
    """

    state_names = ("avg_grad", "avg_param")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 0.01, beta: float = 0.5, proximal: float = 0.0, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, beta=beta, proximal=proximal, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype)
        check_positive(lr, "lr")
        check_unit(beta, "beta", closed=True)
        check_nonnegative(proximal, "proximal")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        srmm_update(p, grad, state["avg_grad"], state["avg_param"], step=state["step"], lr=group["lr"],
                    beta=group["beta"], proximal=group["proximal"])


register(OptimizerEntry(
    name="SRMM",
    cls=SRMM,
    canon_id="srmm",
    family="averaging",
    recipe={"lr": 0.05, "proximal": 1.0},
    recipes={"logistic": {"lr": 2.0}, "rosenbrock": {"lr": 3e-3, "beta": 0.2, "proximal": 0.0}},
    errors=invalid("lr") + (
        ErrorInput({"lr": 0.0}, "lr"),
        ErrorInput({"beta": 1.5}, "beta"),
        ErrorInput({"proximal": -1.0}, "proximal"),
    ),
    parity=(
        # Only with beta = 0, where both are SGD: pytorch-optimizer's SRMM averages the iterates after their step
        # (the official SMM class, written in place) and refreshes the weights every memory_length steps, so for
        # beta > 0 its rule is not the official SRMM's. tests/optim/test_srmm.py checks hand-computed steps.
        Parity("pytorch-optimizer", "pytorch_optimizer:SRMM", {"lr": 0.05, "beta": 0.0},
               {"lr": 0.05, "beta": 0.0}),
    ),
))
