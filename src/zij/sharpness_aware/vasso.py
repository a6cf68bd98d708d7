"""VaSSO: SAM perturbed along a moving average of the gradients instead of the current one (Li and Giannakis, 2023)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_unit
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, global_norm, with_grads
from .sam import SAM


class VaSSO(ExtraSettings, SAM):
    r"""VaSSO (Variance Suppressed Sharpness-aware Optimization): SAM's perturbation along averaged gradients.

    Each step evaluates the loss twice, as :class:`SAM`, but the weights are
    perturbed along $d_t$, an exponential moving average of the minibatch
    gradients (started at the first gradient), instead of along the current
    gradient alone. The average is less noisy, so the adversary is more
    stable. The norm is over all parameters together. With $\kappa = 1$ it is
    SAM; with $\rho = 0$ the base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_{t-1}) \\
    d_t &= \begin{cases} g_1 & t = 1 \\ (1 - \kappa)\, d_{t-1} + \kappa\, g_t & t > 1 \end{cases} \\
    \hat e_t &= \rho\, \frac{d_t}{\lVert d_t\rVert_2 + \epsilon} \\
    \tilde g_t &= \nabla L_{\mathcal{B}}(\theta)\big\rvert_{\theta = \theta_{t-1} + \hat e_t} \\
    \theta_t &= \operatorname{BaseStep}\big(\theta_{t-1},\ \tilde g_t\big)
    \end{aligned}
    $$

    $\kappa$ is the argument ``theta`` (the paper's and the official code's
    name). The final step is the base optimizer's (``BaseStep``). Protocol:
    ``step(closure)`` calls the closure twice (it clears gradients, computes
    the loss, calls ``backward`` and returns the loss; the first loss is
    returned), or by hand ``first_step()`` after the first backward pass and
    ``second_step()`` after the second. The averages $d_t$ are part of
    ``state_dict``.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: neighbourhood radius $\rho$.
        theta: $\kappa$, the weight of the newest gradient in the average, in $[0, 1]$.
        eps: $\epsilon$, added to the norm of the average (the official code's $10^{-7}$).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.VaSSO(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, theta=0.9)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Li and Giannakis, "Enhancing Sharpness-Aware Optimization Through Variance Suppression",
        NeurIPS 2023. https://arxiv.org/abs/2309.15639
    """

    _settings = ("theta",)

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, theta: float = 0.9, eps: float = 1e-7):
        super().__init__(optimizer, rho=rho, eps=eps)
        check_unit(theta, "theta", closed=True)
        self.theta = theta

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Update the gradient average and move the weights to the perturbed point."""
        params = with_grads(self)
        averages = []
        for p in params:
            state = self.state[p]
            if "d" not in state:
                state["d"] = p.grad.clone()
            else:
                state["d"].mul_(1 - self.theta).add_(p.grad, alpha=self.theta)
            averages.append(state["d"])
        if params:
            scale = self.rho / (global_norm(averages) + self.eps)
            for p, d in zip(params, averages):
                e = d * scale
                p.add_(e)
                self.state[p]["e"] = e
        if zero_grad:
            self.zero_grad()

    def state_dict(self):
        index = {p: i for i, p in enumerate(self._all_params())}
        d = {index[p]: s["d"] for p, s in self.state.items() if "d" in s and p in index}
        return {**super().state_dict(), "d": d}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        params = self._all_params()
        for state in self.state.values():
            state.pop("d", None)
        for i, d in state_dict.get("d", {}).items():
            p = params[int(i)]
            self.state[p]["d"] = d.to(device=p.device, dtype=p.dtype).clone()


register(OptimizerEntry(
    name="VaSSO", cls=VaSSO, canon_id="vasso", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"theta": 1.5}, "theta"), ErrorInput({"eps": -1.0}, "eps")),
    recipe={**RECIPE, "theta": 0.9},
    recipes={"rosenbrock": {**ROSENBROCK, "theta": 0.9}},
))
