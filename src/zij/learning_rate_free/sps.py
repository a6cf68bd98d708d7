"""SPS: SGD with the stochastic Polyak step size (Loizou et al., 2021)."""

from __future__ import annotations

import math


from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register
from ._polyak import LossStepMixin, squared_norm


def sps_step_size(loss: float, grad_sq_norm: float, previous: float, *, c: float, eta_max: float | None, f_star: float,
                  eps: float, growth: float) -> float:
    """gamma_t = min{(f - f*)_+ / (c ||g||^2 + eps), eta_max, growth * gamma_{t-1}} (absent caps are +inf)."""
    polyak = max(loss - f_star, 0.0) / (c * grad_sq_norm + eps)
    return min(polyak, math.inf if eta_max is None else eta_max, growth * previous)


def sps_update(param, grad, *, step_size: float) -> None:
    """theta <- theta - gamma_t g for a tensor or a TensorList, in place."""
    param.add_(grad, alpha=-step_size)


class SPS(LossStepMixin, ZijOptimizer):
    r"""SPS (stochastic Polyak step): SGD stepping by the loss gap over $c$ times the squared gradient norm.

    The step size is the Polyak step of the sampled loss: its gap to that loss's
    minimum $f^{*}$ (zero for models that interpolate the data) divided by
    $c\,\lVert g\rVert^2$, capped by $\gamma_b$ (SPS$_{\max}$). The official code's
    default for deep networks also smooths the cap: the step may grow by at most a factor
    $\omega = \gamma^{1/n}$ per step over the previous one (``smooth=True``).

    $$
    \begin{aligned}
    \gamma_t &= \min\left\{ \frac{\bigl(f_{i_t}(\theta_{t-1}) - f_{i_t}^{*}\bigr)_+}{c\, \lVert g_t\rVert^{2} + \epsilon},\ \gamma_b,\ \omega\, \gamma_{t-1} \right\} \\
    \theta_t &= \theta_{t-1} - \gamma_t\, g_t
    \end{aligned}
    $$

    Without ``eta_max`` there is no cap $\gamma_b$; without ``smooth``, $\omega = \infty$;
    $\gamma_0$ is ``init_step_size``. $\gamma_b$ is kept as the group's ``lr`` (so learning-rate
    schedulers scale it; ``eta_max=None`` stores ``inf``). The norm runs over all parameters of all groups.
    Unlike the official code, a step whose gradient norm is below $10^{-8}$ is not
    skipped (it moves by $\gamma_t g_t$, next to nothing), so its smoothed step size does
    not drop to zero for good.

    Protocol: ``step`` needs the loss, so it must be given a closure that returns it
    (the closure may compute the gradients, or be ``lambda: loss`` after
    ``loss.backward()``).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        c: scaling constant $c$ of the squared gradient norm (0.5 in the paper's theory and code).
        eta_max: upper bound $\gamma_b$ on the step size (``None``: none).
        f_star: $f^{*}$, the minimum of the mini-batch loss (zero for interpolating models).
        eps: $\epsilon$, added to the denominator.
        smooth: let the step size grow by at most $\omega = \gamma^{1/n}$ per step (the official default mode).
        gamma: growth factor $\gamma$ allowed per $n$ steps with ``smooth``.
        n_batches_per_epoch: $n$, the number of steps over which the step size may grow by $\gamma$.
        init_step_size: $\gamma_0$, the previous step size seen by the first smoothed step.
        maximize: maximize the objective instead of minimizing it (the step uses the negated loss).
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SPS(model.parameters(), c=0.5, eta_max=1.0)
        >>> loss = model(torch.randn(8, 4)).square().mean()
        >>> loss.backward()
        >>> _ = opt.step(lambda: loss)

    References:
        Loizou, Vaswani, Laradji and Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An Adaptive
        Learning Rate for Fast Convergence", AISTATS 2021. https://arxiv.org/abs/2002.10542
    """

    supports_foreach = True

    def __init__(self, params, c: float = 0.5, eta_max: float | None = None, f_star: float = 0.0, eps: float = 1e-8,
                 smooth: bool = False, gamma: float = 2.0, n_batches_per_epoch: int = 500, init_step_size: float = 1.0,
                 *, maximize: bool = False, foreach: bool | None = None):
        check_positive(c, "c")
        if eta_max is not None:
            check_positive(eta_max, "eta_max")
        if not isinstance(f_star, (int, float)) or not math.isfinite(f_star):
            raise ValueError(f"Invalid f_star: {f_star!r} (expected a finite number)")
        check_nonnegative(eps, "eps")
        if not isinstance(gamma, (int, float)) or not math.isfinite(gamma) or gamma < 1:
            raise ValueError(f"Invalid gamma: {gamma!r} (expected a number >= 1)")
        check_int(n_batches_per_epoch, "n_batches_per_epoch")
        check_positive(init_step_size, "init_step_size")
        super().__init__(params, dict(lr=math.inf if eta_max is None else eta_max, c=c, f_star=f_star, eps=eps, smooth=smooth, gamma=gamma,
                                      n_batches_per_epoch=n_batches_per_epoch, init_step_size=init_step_size,
                                      maximize=maximize, foreach=foreach,
                                      step_size=init_step_size))

    def global_step(self, gathered):
        norm = squared_norm([g for _, _, grads, _ in gathered for g in grads])
        for group, params, _, _ in gathered:
            if not params:
                continue
            growth = group["gamma"] ** (1 / group["n_batches_per_epoch"]) if group["smooth"] else math.inf
            group["step_size"] = sps_step_size(self.loss_value, norm, group["step_size"], c=group["c"],
                                               eta_max=group["lr"], f_star=group["f_star"], eps=group["eps"],
                                               growth=growth)

    def update(self, p, grad, state, group):
        sps_update(p, grad, step_size=group["step_size"])


register(OptimizerEntry(
    name="SPS",
    cls=SPS,
    canon_id="sps",
    family="parameter-free",
    aliases=("SPS_max", "Stochastic Polyak Step"),
    recipe={"eta_max": 0.5},
    recipes={"rosenbrock": {"eta_max": 1e-3}},
    capabilities=Capabilities(needs_closure=True),
    variants={"smooth": {"smooth": True, "n_batches_per_epoch": 10, "init_step_size": 0.01}},
    skips={"param_groups": "the step size divides the loss by the squared gradient norm over all groups together, "
                           "so one SPS over two groups is not two over one group each",
           "ndims": "the shared check's loss sum(p^2 + p) is exactly 0 at its 0-d starting point, where a Polyak "
                    "step does not move by design; test_polyak.py steps 0-d to 4-d tensors on a positive loss"},
    errors=(ErrorInput({"c": 0.0}, "c"), ErrorInput({"eta_max": -1.0}, "eta_max"),
            ErrorInput({"f_star": math.nan}, "f_star"), ErrorInput({"eps": -1.0}, "eps"),
            ErrorInput({"gamma": 0.5}, "gamma"), ErrorInput({"n_batches_per_epoch": 0}, "n_batches_per_epoch"),
            ErrorInput({"init_step_size": 0.0}, "init_step_size")),
))
