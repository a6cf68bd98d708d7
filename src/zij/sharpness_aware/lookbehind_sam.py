"""Lookbehind-SAM: k chained ascent steps, k descent steps on fast weights, one interpolation (Mordido et al., 2024)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_int, check_unit
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RHO_ERROR, ExtraSettings, global_norm, with_grads
from .sam import SAM

KEYS = ("fast", "slow", "first")


def adaptive_alpha(first: torch.Tensor, last: torch.Tensor, slow: torch.Tensor) -> float:
    """(1 + cos(first - slow, last - slow)) / 2 for one tensor (flattened), as in the official code."""
    cos = torch.nn.functional.cosine_similarity((first - slow).flatten(), (last - slow).flatten(), dim=0)
    return ((cos + 1.0) / 2.0).item()


class LookbehindSAM(ExtraSettings, SAM):
    r"""Lookbehind-SAM: several chained SAM ascent steps per update, their descents averaged Lookahead-style.

    One update spans $k$ calls of ``step``, each evaluating the loss twice on
    its own minibatch. The ascent points $u_j$ are chained from the slow
    weights $\theta_t$: each ascent starts where the previous one ended. The
    gradient at each ascent point is applied by the base optimizer to the fast
    weights $\phi_j$, which start at $\theta_t$. After the $k$-th step the slow
    weights move a fraction $\alpha_t$ of the way to $\phi_k$ and both
    sequences restart there. Norms are over all parameters together.

    $$
    \begin{aligned}
    &\phi_0 = \theta_t, \quad u_0 = \theta_t \\
    &\text{for } j = 1, \dots, k: \quad u_j = u_{j-1} + \rho\, \frac{\nabla L_{\mathcal{B}_j}(u_{j-1})}{\lVert \nabla L_{\mathcal{B}_j}(u_{j-1}) \rVert_2 + \epsilon}, \quad \phi_j = \operatorname{BaseStep}\big(\phi_{j-1},\ \nabla L_{\mathcal{B}_j}(u_j)\big) \\
    &\alpha_t = \begin{cases} \alpha & \alpha \ne -1 \\ \tfrac{1}{2}\big(1 + \cos\angle(\phi_1 - \theta_t,\ \phi_k - \theta_t)\big) & \alpha = -1 \end{cases} \\
    &\theta_{t+1} = \theta_t + \alpha_t \left( \phi_k - \theta_t \right)
    \end{aligned}
    $$

    With $\alpha = -1$ the factor is adaptive; as in the official code its
    cosine is taken tensor by tensor. Between two ``step`` calls inside an
    update the parameters hold the ascent point $u_j$ (the fast and slow
    weights are in the wrapper's state); after every $k$-th call they hold
    the new slow weights $\theta_{t+1}$, the ones to evaluate. With $k = 1$
    and $\alpha = 1$ it is SAM (up to rounding; the weights are restored by
    copying), and with $\rho = 0$ too the base optimizer. Protocol:
    ``step(closure)`` calls the closure twice (it clears gradients, computes
    the loss, calls ``backward`` and returns the loss; the first loss is
    returned), or by hand ``first_step()`` after the first backward pass and
    ``second_step()`` after the second. The fast and slow weights and the
    position in the cycle are part of ``state_dict``.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: ascent step radius $\rho$.
        k_steps: $k$, the number of ascent and descent steps per update.
        alpha: $\alpha$, the slow weights' interpolation factor in $[0, 1]$, or -1 for the adaptive one.
        eps: $\epsilon$, added to the gradient norm (the official code's $10^{-16}$).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.LookbehindSAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, k_steps=2)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> for _ in range(4):
        ...     loss = opt.step(closure)

    References:
        Mordido, Malviya, Baratin and Chandar, "Lookbehind-SAM: k steps back, 1 step forward",
        ICML 2024. https://arxiv.org/abs/2307.16704
    """

    _settings = ("k_steps", "alpha", "count")

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, k_steps: int = 5, alpha: float = 0.5,
                 eps: float = 1e-16):
        super().__init__(optimizer, rho=rho, eps=eps)
        check_int(k_steps, "k_steps")
        if alpha != -1:
            check_unit(alpha, "alpha", closed=True)
        self.k_steps, self.alpha, self.count = k_steps, alpha, 0

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Take the next ascent step from the current ascent point (the weights now held)."""
        params = with_grads(self)
        for p in params:
            state = self.state[p]
            if "slow" not in state:
                state["slow"], state["fast"] = p.clone(), p.clone()
        if params:
            scale = self.rho / (global_norm([p.grad for p in params]) + self.eps)
            for p in params:
                p.add_(p.grad * scale)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Apply the gradient now in ``.grad`` to the fast weights; after the k-th call, interpolate."""
        params = [p for p in self._all_params() if p in self.state and "fast" in self.state[p]]
        ascent = [p.clone() for p in params]
        for p in params:
            p.copy_(self.state[p]["fast"])
        self.optimizer.step()
        for p, u in zip(params, ascent):
            state = self.state[p]
            state["fast"].copy_(p)
            if self.alpha == -1 and self.count == 0:
                state["first"] = p.clone()
            p.copy_(u)
        self.count += 1
        if self.count >= self.k_steps:
            self.count = 0
            for p in params:
                state = self.state[p]
                fast, slow = state["fast"], state["slow"]
                a = self.alpha if self.alpha != -1 else adaptive_alpha(state["first"], fast, slow)
                p.copy_(fast).mul_(a).add_(slow, alpha=1.0 - a)
                fast.copy_(p)
                slow.copy_(p)
        if zero_grad:
            self.zero_grad()

    def state_dict(self):
        index = {p: i for i, p in enumerate(self._all_params())}
        saved = {index[p]: {k: s[k] for k in KEYS if k in s} for p, s in self.state.items()
                 if p in index and "fast" in s}
        return {**super().state_dict(), "lookbehind": saved}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        params = self._all_params()
        for state in self.state.values():
            for k in KEYS:
                state.pop(k, None)
        for i, saved in state_dict.get("lookbehind", {}).items():
            p = params[int(i)]
            for k, v in saved.items():
                self.state[p][k] = v.to(device=p.device, dtype=p.dtype).clone()


register(OptimizerEntry(
    name="LookbehindSAM", cls=LookbehindSAM, canon_id="lookbehind-sam", **COMMON,
    aliases=("Lookbehind-SAM",),
    errors=(RHO_ERROR, ErrorInput({"k_steps": 0}, "k_steps"), ErrorInput({"alpha": 1.5}, "alpha"),
            ErrorInput({"eps": -1.0}, "eps")),
    # lower momentum than the other SAM wrappers: every descent gradient is taken near the slow weights while
    # the fast weights move on, and with momentum 0.9 the adaptive factor (often near 1) diverges on Rosenbrock
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.5}), "rho": 0.01, "k_steps": 2, "alpha": 0.5},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.7}), "rho": 0.005, "k_steps": 2,
                            "alpha": 0.5}},
    variants={"adaptive": {"alpha": -1}},
))
