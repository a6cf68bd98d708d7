"""ESAM: SAM with stochastic weight perturbation and sharpness-sensitive data selection (Du et al., 2022)."""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import (COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, closure_required, global_norm,
                        with_grads)
from .sam import SAM


def _check_fraction(value: float, name: str) -> None:
    if not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(f"Invalid {name}: {value!r} (expected a number in (0, 1])")


def sharpness_sensitive(sharpness: torch.Tensor, gamma: float) -> torch.Tensor:
    """Indices of the examples kept: all when gamma >= 0.99, else those strictly above the
    floor(gamma n)-th largest sharpness (as the official code does)."""
    n = sharpness.numel()
    if gamma >= 0.99:
        return torch.arange(n, device=sharpness.device)
    position = math.floor(gamma * n)
    if position < 1:
        raise RuntimeError(f"ESAM: gamma={gamma} keeps no example of a batch of {n}")
    cutoff = torch.topk(sharpness, position).values[-1]
    return torch.nonzero(sharpness > cutoff).flatten()


class ESAM(ExtraSettings, SAM):
    r"""ESAM (Efficient SAM): SAM on a random subset of tensors and the examples whose loss rises most.

    Stochastic weight perturbation: each parameter tensor is perturbed with
    probability $\beta$ (a mask drawn per tensor at the end of every step; the
    first step perturbs all) and the radius is divided by $\beta$.
    Sharpness-sensitive data selection ($\gamma < 0.99$): the gradient at the
    perturbed point is taken on the examples whose loss rose most. The
    perturbation's norm is over all perturbed tensors together. With
    $\beta = \gamma = 1$ it is SAM (with $\varepsilon$ in the norm); with $\rho = 0$
    the base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{B_t}(\theta_t) \ \text{(only tensors with } M_t = 1\text{; the rest get no gradient)} \\
    \epsilon_t &= \frac{\rho}{\beta}\, \frac{M_t \odot g_t}{\lVert M_t \odot g_t \rVert_2 + \varepsilon} \\
    s_i &= \ell_i(\theta_t + \epsilon_t) - \ell_i(\theta_t), \quad i \in B_t \\
    B_t^{+} &= \begin{cases} B_t & \gamma \ge 0.99 \\ \{ i \in B_t : s_i > c_t \},\ c_t = \text{the } \lfloor \gamma \lvert B_t \rvert \rfloor\text{-th largest } s_i & \text{otherwise} \end{cases} \\
    \theta_{t+1} &= \operatorname{BaseStep}\big(\theta_t,\ \nabla L_{B_t^{+}}(\theta_t + \epsilon_t)\big) \\
    M_{t+1} &\sim \operatorname{Bernoulli}(\beta) \ \text{per parameter tensor}
    \end{aligned}
    $$

    Protocol. Without data selection ($\gamma \ge 0.99$, the default) it is
    :class:`SAM`'s: ``step(closure)`` calls a closure that clears gradients,
    computes the loss, calls ``backward`` and returns the loss, twice (the first
    loss is returned), or ``first_step()`` / ``second_step()`` by hand. With data
    selection the closure is ``closure(examples)``: it returns the per-example
    losses (a vector, no ``backward``) of the examples indexed by ``examples``
    (``None``: the whole batch); it is called three times (with gradients, without,
    and on the selected examples) and ESAM calls ``backward`` on the means.
    The mask draws use torch's global random generator.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: perturbation radius $\rho$.
        beta: probability $\beta$ that a tensor is perturbed, in (0, 1].
        gamma: fraction $\gamma$ of the examples kept by the data selection, in (0, 1].
        eps: $\varepsilon$, added to the norm.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x, y = torch.randn(8, 4), torch.randn(8, 2)
        >>> opt = zij.ESAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, beta=0.6, gamma=0.5)
        >>> def closure(examples=None):
        ...     chosen = slice(None) if examples is None else examples
        ...     return (model(x[chosen]) - y[chosen]).square().mean(dim=1)
        >>> loss = opt.step(closure)

    References:
        Du, Yan, Feng, Zhou, Zhen, Goh and Tan, "Efficient Sharpness-aware Minimization for Improved
        Training of Neural Networks", ICLR 2022. https://arxiv.org/abs/2110.03141
    """

    _settings = ("beta", "gamma", "mask")

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, beta: float = 1.0, gamma: float = 1.0,
                 eps: float = 1e-7):
        check_nonnegative(rho, "rho")
        _check_fraction(beta, "beta")
        _check_fraction(gamma, "gamma")
        super().__init__(optimizer, rho=rho, eps=eps)
        self.beta, self.gamma = beta, gamma
        self.mask: list[bool] | None = None  # per tensor, in group order; None: all perturbed

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move the masked tensors to the perturbed point, from the gradients now in ``.grad``."""
        masked = set(range(len(self._all_params()))) if self.mask is None else \
            {i for i, keep in enumerate(self.mask) if keep}
        chosen = {id(p) for i, p in enumerate(self._all_params()) if i in masked}
        params = [p for p in with_grads(self) if id(p) in chosen]
        scale = (self.rho / self.beta) / (global_norm([p.grad for p in params]) + self.eps)
        for p in params:
            e = p.grad * scale
            p.add_(e)
            self.state[p]["e"] = e
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Move back, let the base optimizer step, and draw the next step's mask."""
        super().second_step(zero_grad)
        if self.beta < 1.0:
            self.mask = [bool(torch.rand(()) < self.beta) for _ in self._all_params()]

    def step(self, closure=None):
        """One ESAM step; ``closure`` is required (see the protocol above). Returns the first loss."""
        closure_required(self, closure)
        if self.gamma >= 0.99:
            return super().step(closure)
        self.zero_grad()
        with torch.enable_grad():
            before = closure(None)
            loss = before.mean()
            loss.backward()
        self.first_step(zero_grad=True)
        with torch.no_grad():
            after = closure(None)
        chosen = sharpness_sensitive(after - before.detach(), self.gamma)
        with torch.enable_grad():
            closure(chosen).mean().backward()
        self.second_step(zero_grad=False)
        return loss.detach()


register(OptimizerEntry(
    name="ESAM", cls=ESAM, canon_id="esam", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"beta": 0.0}, "beta"), ErrorInput({"gamma": 1.5}, "gamma")),
    recipe=RECIPE,
    recipes={"rosenbrock": ROSENBROCK},
))
