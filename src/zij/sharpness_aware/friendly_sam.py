"""F-SAM (Friendly SAM): perturb along the batch gradient minus an estimate of the full gradient (Li et al., 2024)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative, check_unit
from .._registry import ErrorInput, OptimizerEntry, register
from ..blocks import ema_
from ._two_pass import COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, with_grads
from .sam import SAM


class FriendlySAM(ExtraSettings, SAM):
    r"""F-SAM (Friendly SAM): SAM whose perturbation leaves out the full-gradient component of the batch gradient.

    SAM's benefit comes mainly from the batch-specific part of its perturbation
    direction; the full-gradient part can hurt. F-SAM estimates the full gradient by
    a moving average $m_t$ of past batch gradients and perturbs along
    $d_t = g_t - \sigma m_{t-1}$ instead of $g_t$; the base optimizer then steps with
    the gradient at the perturbed point. At the first step the average starts at the
    gradient and nothing is removed. With $\sigma = 0$ it is SAM; with $\rho = 0$ the
    base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_t) \\
    d_t &= \begin{cases} g_1 & t = 1 \\ g_t - \sigma\, m_{t-1} & t > 1 \end{cases}, \qquad m_t = \begin{cases} g_1 & t = 1 \\ \lambda\, m_{t-1} + (1-\lambda)\, g_t & t > 1 \end{cases} \\
    \tilde g_t &= \nabla L_{\mathcal{B}}\!\left( \theta_t + \rho\, \frac{d_t}{\lVert d_t \rVert_2 + \epsilon} \right) \\
    \theta_{t+1} &= \operatorname{BaseStep}\big(\theta_t,\ \tilde g_t\big)
    \end{aligned}
    $$

    As in the official code the norm is over all parameters together, and ``adaptive``
    scales the perturbation as ASAM does with $T = \operatorname{diag}(\lvert\theta_t\rvert)$:
    $\rho\, \theta_t^{2} d_t / (\lVert \theta_t d_t \rVert_2 + \epsilon)$. The average
    $m_t$ is kept per parameter and saved with ``state_dict``. Protocol: ``step(closure)``
    calls the closure twice (the first loss is returned), or by hand ``first_step()``
    after the first backward pass and ``second_step()`` after the second.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: perturbation radius $\rho$ (the official training script uses 0.1).
        sigma: $\sigma \ge 0$, how much of the estimated full gradient is removed.
        lmbda: $\lambda$ in [0, 1), decay of the moving average (the official training script uses 0.95).
        eps: $\epsilon$, added to the norm.
        adaptive: scale the perturbation by the squared weights (ASAM-style).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.FriendlySAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.1, lmbda=0.95)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Li, Zhou, He, Cheng and Huang, "Friendly Sharpness-Aware Minimization", CVPR 2024.
        https://arxiv.org/abs/2403.12350
    """

    _settings = ("sigma", "lmbda", "adaptive")

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, sigma: float = 1.0, lmbda: float = 0.9,
                 eps: float = 1e-12, *, adaptive: bool = False):
        check_nonnegative(sigma, "sigma")
        check_unit(lmbda, "lmbda")
        super().__init__(optimizer, rho=rho, eps=eps, eta=0.0)
        self.sigma, self.lmbda, self.adaptive = sigma, lmbda, bool(adaptive)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Replace each gradient by d_t (updating the average), then perturb along it as SAM does."""
        for p in with_grads(self):
            state = self.state[p]
            if "momentum" not in state:
                state["momentum"] = p.grad.clone()
                continue
            raw = p.grad.clone()
            p.grad.sub_(state["momentum"], alpha=self.sigma)
            ema_(state["momentum"], raw, self.lmbda)
        super().first_step(zero_grad)

    def state_dict(self):
        index = {p: i for i, p in enumerate(self._all_params())}
        momentum = {index[p]: s["momentum"] for p, s in self.state.items() if "momentum" in s and p in index}
        return {**super().state_dict(), "momentum": momentum}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        params = self._all_params()
        for i, m in state_dict.get("momentum", {}).items():
            p = params[int(i)]
            self.state[p]["momentum"] = m.to(device=p.device, dtype=p.dtype)


register(OptimizerEntry(
    name="FriendlySAM", cls=FriendlySAM, canon_id="fsam", aliases=("F-SAM",), **COMMON,
    errors=(RHO_ERROR, ErrorInput({"sigma": -1.0}, "sigma"), ErrorInput({"lmbda": 1.0}, "lmbda"),
            ErrorInput({"eps": -1.0}, "eps")),
    recipe={**RECIPE, "lmbda": 0.9},
    recipes={"rosenbrock": {**ROSENBROCK, "lmbda": 0.9}},
    variants={"adaptive": {"adaptive": True}},
))
