"""LookSAM: a full SAM step every k steps, a reused SAM component in between (Liu et al., 2022)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_int, check_nonnegative
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import (COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, closure_required, global_dot,
                        global_norm, with_grads)
from .sam import SAM


class LookSAM(ExtraSettings, SAM):
    r"""LookSAM: SAM's gradient every k steps; in between, its stored orthogonal part is added back.

    On every $k$-th step (the first included) it is SAM, and it keeps $v$, the
    part of the SAM gradient $\tilde g_t$ orthogonal to the ordinary gradient
    $g_t$. On the other steps it takes one gradient only and adds $v$, rescaled
    to the current gradient's norm and weighted by $\alpha$. Norms and inner
    products are over all parameters together. With $k = 1$ it is SAM; with
    $\rho = 0$ and $\alpha = 0$ the base optimizer.

    $$
    \begin{aligned}
    &\text{if } t \bmod k = 0: \quad \tilde g_t = \nabla L\!\left(\theta_t + \rho \frac{g_t}{\lVert g_t \rVert + \epsilon}\right), \quad
    v = \tilde g_t - \frac{\langle g_t, \tilde g_t \rangle}{\lVert g_t \rVert^{2} + \epsilon}\, g_t, \quad d_t = \tilde g_t \\
    &\text{otherwise:} \quad d_t = g_t + \alpha\, \frac{\lVert g_t \rVert}{\lVert v \rVert + \epsilon}\, v \\
    &\theta_{t+1} = \operatorname{BaseStep}\big(\theta_t,\ d_t\big)
    \end{aligned}
    $$

    $t$ counts the steps taken, from 0. Protocol: ``step(closure)`` calls the
    closure twice on SAM steps and once on the others (the first loss is
    returned). By hand: after the first backward pass call ``first_step()``;
    it returns True on SAM steps (the weights are perturbed: compute the
    gradient again and call ``second_step()``) and False on the others, where it
    has already taken the step. The stored $v$ and $t$ are part of ``state_dict``.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: perturbation radius $\rho$.
        k: period $k$ of the full SAM steps.
        alpha: weight $\alpha$ of the reused component.
        eps: $\epsilon$, added to the norms.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.LookSAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, k=5)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> for _ in range(3):
        ...     loss = opt.step(closure)

    References:
        Liu, Mai, Chen, Hsieh and You, "Towards Efficient and Scalable Sharpness-Aware Minimization",
        CVPR 2022. https://arxiv.org/abs/2203.02714
    """

    _settings = ("k", "alpha")

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, k: int = 5, alpha: float = 0.7, eps: float = 1e-12):
        super().__init__(optimizer, rho=rho, eps=eps)
        check_int(k, "k")
        check_nonnegative(alpha, "alpha")
        self.k, self.alpha, self.t = k, alpha, 0

    def __getstate__(self):
        return {**super().__getstate__(), "t": self.t}

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> bool:
        """A SAM step: perturb and return True. Otherwise: step with the reused component and return False."""
        params = with_grads(self)
        if self.t % self.k == 0:
            for p in params:
                self.state[p]["clean"] = p.grad.clone()
            super().first_step(zero_grad)
            return True
        stored = [p for p in params if "v" in self.state[p]]
        if self.alpha != 0 and stored:
            v = [self.state[p]["v"] for p in stored]
            scale = self.alpha * global_norm([p.grad for p in params]) / (global_norm(v) + self.eps)
            for p, vp in zip(stored, v):
                p.grad.add_(vp * scale)
        self.optimizer.step()
        self.t += 1
        if zero_grad:
            self.zero_grad()
        return False

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Store the orthogonal part of the SAM gradient, move back and let the base optimizer step."""
        params = [p for p in with_grads(self) if "clean" in self.state[p]]
        clean = [self.state[p].pop("clean") for p in params]
        robust = [p.grad for p in params]
        scale = global_dot(clean, robust) / (global_norm(clean) ** 2 + self.eps)
        for p, c, r in zip(params, clean, robust):
            self.state[p]["v"] = r - scale * c
        super().second_step(zero_grad)
        self.t += 1

    def step(self, closure=None):
        """One LookSAM step; ``closure`` is required. Returns the first loss."""
        closure_required(self, closure)
        with torch.enable_grad():
            loss = closure()
        if self.first_step():
            with torch.enable_grad():
                closure()
            self.second_step()
        return loss

    def state_dict(self):
        index = {p: i for i, p in enumerate(self._all_params())}
        v = {index[p]: s["v"] for p, s in self.state.items() if "v" in s and p in index}
        return {**super().state_dict(), "t": self.t, "v": v}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.t = state_dict.get("t", 0)
        params = self._all_params()
        for i, v in state_dict.get("v", {}).items():
            p = params[int(i)]
            self.state[p]["v"] = v.to(device=p.device, dtype=p.dtype)


register(OptimizerEntry(
    name="LookSAM", cls=LookSAM, canon_id="looksam", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"k": 0}, "k"), ErrorInput({"alpha": -0.1}, "alpha")),
    recipe={**RECIPE, "k": 2, "alpha": 0.5},
    recipes={"rosenbrock": {**ROSENBROCK, "k": 2, "alpha": 0.5}},
))
