"""ALI-G: a Polyak step from the mini-batch loss, capped by a maximal learning rate (Berrada et al., 2020)."""

from __future__ import annotations


import math

import torch

from .._base import ZijOptimizer, check_nonnegative, check_positive, check_unit
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register
from ._polyak import LossStepMixin, squared_norm


def alig_update(param, grad, buffer, *, step_size: float, momentum: float, adjusted_momentum: bool) -> None:
    """One ALI-G step for a tensor or a TensorList, in place, with its step size already computed.

    theta <- theta - gamma g; with momentum mu (Nesterov-style, the official default):
    b <- mu b - gamma g, theta <- theta + mu b; adjusted: b <- mu b - g, theta <- theta + gamma mu b.
    """
    param.add_(grad, alpha=-step_size)
    if momentum == 0:
        return
    if adjusted_momentum:
        buffer.mul_(momentum).sub_(grad)
        param.add_(buffer, alpha=step_size * momentum)
    else:
        buffer.mul_(momentum).add_(grad, alpha=-step_size)
        param.add_(buffer, alpha=momentum)


class AliG(LossStepMixin, ZijOptimizer):
    r"""ALI-G: step size = mini-batch loss over squared gradient norm, capped at a maximal learning rate.

    For models that can interpolate the data, every mini-batch loss can reach about zero,
    so the loss itself tells how far a gradient step should go (a Polyak step with
    $f_\star = 0$). Only the cap $\eta$ is chosen. Momentum is the official code's:
    Nesterov-style by default, PyTorch-style with ``adjusted_momentum``.

    $$
    \begin{aligned}
    \gamma_t &= \min\left\{ \frac{\ell_{z_t}(\theta_t)}{\lVert g_t\rVert^{2} + \delta},\ \eta \right\} \\
    b_{t+1} &= \mu\, b_t - \gamma_t\, g_t \\
    \theta_{t+1} &= \Pi_{\Omega}\!\left(\theta_t - \gamma_t\, g_t + \mu\, b_{t+1}\right)
    \end{aligned}
    $$

    With ``adjusted_momentum`` the last two lines are $b_{t+1} = \mu b_t - g_t$ and
    $\theta_{t+1} = \Pi_\Omega(\theta_t - \gamma_t g_t + \gamma_t \mu\, b_{t+1})$; with $\mu = 0$
    both are plain ALI-G. The norm runs over all parameters of all groups; each group
    uses its own cap $\eta$, kept as the group's ``lr`` (so learning-rate schedulers scale it;
    ``max_lr=None`` stores ``inf``).

    Protocol: ``step`` needs the loss, so it must be given a closure that returns it
    (the closure may compute the gradients, or be ``lambda: loss`` after
    ``loss.backward()``). The loss is assumed non-negative with a minimum near zero.
    ``projection_fn`` (no arguments) projects the weights onto $\Omega$ in place; it is
    called once at construction and after every step, as in the official code.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        max_lr: maximal step size $\eta$ (``None``: no cap).
        momentum: momentum factor $\mu$ in [0, 1).
        adjusted_momentum: PyTorch-style momentum instead of the Nesterov-style default.
        eps: $\delta$, added to the squared gradient norm.
        projection_fn: optional callable that projects the parameters in place ($\Pi_\Omega$).
        maximize: maximize the objective instead of minimizing it (the step uses the negated loss).
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AliG(model.parameters(), max_lr=0.1, momentum=0.9)
        >>> loss = model(torch.randn(8, 4)).square().mean()
        >>> loss.backward()
        >>> _ = opt.step(lambda: loss)

    References:
        Berrada, Zisserman and Kumar, "Training Neural Networks for and by Interpolation", ICML 2020.
        https://arxiv.org/abs/1906.05661
    """

    supports_foreach = True

    def __init__(self, params, max_lr: float | None = None, momentum: float = 0.0, adjusted_momentum: bool = False,
                 eps: float = 1e-5, projection_fn=None, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        if max_lr is not None:
            check_positive(max_lr, "max_lr")
        check_unit(momentum, "momentum")
        check_nonnegative(eps, "eps")
        if projection_fn is not None and not callable(projection_fn):
            raise ValueError(f"Invalid projection_fn: {projection_fn!r} (expected a callable or None)")
        super().__init__(params, dict(lr=math.inf if max_lr is None else max_lr, momentum=momentum, adjusted_momentum=adjusted_momentum, eps=eps,
                                      maximize=maximize, foreach=foreach, state_dtype=state_dtype))
        self.projection_fn = projection_fn
        if projection_fn is not None:
            projection_fn()

    def __getstate__(self):
        return {**super().__getstate__(), "projection_fn": self.projection_fn}

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        if group["momentum"] > 0:
            state["momentum_buffer"] = self.zeros_like(p, group)

    def global_step(self, gathered):
        norm = squared_norm([g for _, _, grads, _ in gathered for g in grads])
        for group, _, _, _ in gathered:
            unclipped = self.loss_value / (norm + group["eps"])
            group["step_size"] = min(unclipped, group["lr"])

    def step(self, closure=None):
        loss = super().step(closure)
        if self.projection_fn is not None:
            with torch.no_grad():
                self.projection_fn()
        return loss

    step.__doc__ = LossStepMixin.step.__doc__

    def update(self, p, grad, state, group):
        alig_update(p, grad, state["momentum_buffer"] if group["momentum"] > 0 else None,
                    step_size=group["step_size"], momentum=group["momentum"],
                    adjusted_momentum=group["adjusted_momentum"])


register(OptimizerEntry(
    name="AliG",
    cls=AliG,
    canon_id="ali-g",
    family="parameter-free",
    aliases=("ALI-G",),
    recipe={"max_lr": 0.5, "momentum": 0.9},
    recipes={"rosenbrock": {"max_lr": 1e-3, "momentum": 0.9}},
    capabilities=Capabilities(needs_closure=True),
    variants={"no_momentum": {"momentum": 0.0}, "adjusted_momentum": {"adjusted_momentum": True}},
    skips={"param_groups": "the step size divides the loss by the squared gradient norm over all groups together, "
                           "so one AliG over two groups is not two over one group each (the official code does "
                           "the same)",
           "ndims": "the shared check's loss sum(p^2 + p) is exactly 0 at its 0-d starting point, where a Polyak "
                    "step does not move by design; test_polyak.py steps 0-d to 4-d tensors on a positive loss"},
    errors=(ErrorInput({"max_lr": 0.0}, "max_lr"), ErrorInput({"momentum": 1.0}, "momentum"),
            ErrorInput({"eps": -1.0}, "eps"), ErrorInput({"projection_fn": 3}, "projection_fn")),
))
