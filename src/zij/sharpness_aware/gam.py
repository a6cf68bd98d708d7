"""GAM: SAM combined with an ascent on the gradient norm (first-order flatness) (Zhang et al., 2023)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, ExtraSettings, global_dot, global_norm, with_grads
from .sam import SAM


def gam_direction(g0, g1, g2, g3, *, beta_1: float, beta_2: float, beta_3: float, gamma: float,
                  eps: float) -> list[torch.Tensor]:
    """$\\tilde d$: the combined direction with part of its component orthogonal to $p$ removed."""
    p = [a + abs(beta_2) * c for a, c in zip(g0, g2)]
    d = [beta_1 * b + beta_3 * e for b, e in zip(g1, g3)]
    if gamma == 0:
        return d
    p_norm, d_norm = global_norm(p), global_norm(d)
    cosine = global_dot(p, d) / (p_norm * d_norm + eps)
    return [dd - gamma * (pp - cosine * p_norm * dd / (d_norm + eps)) for pp, dd in zip(p, d)]


class GAM(ExtraSettings, SAM):
    r"""GAM (Gradient norm Aware Minimization): SAM plus an ascent on the gradient norm, four gradients a step.

    GAM regularizes first-order flatness, the largest gradient norm in a
    neighbourhood. As the official code does, each step takes four gradients of
    the same minibatch: $g_0$ at $\theta_t$, $g_1$ at the SAM point, $g_2$ at the
    point $\theta^{(2)}$ reached by an ascent on the gradient norm (the difference
    $g_1 - g_0$ standing in for a Hessian-vector product), and $g_3$ at the SAM
    point of $\theta^{(2)}$. Their combination $d$, with part of its component
    orthogonal to the reference $p$ removed (as in GSAM), is handed to the base
    optimizer at $\theta_t$. Norms and inner products are over all parameters
    together. With $\rho = \rho' = 0$, $\beta_2 = \beta_3 = \gamma = 0$ and $\beta_1 = 1$
    it is the base optimizer.

    $$
    \begin{aligned}
    g_0 &= \nabla L_{\mathcal{B}}(\theta_t), \qquad g_1 = \nabla L_{\mathcal{B}}\!\left(\theta_t + \rho\, \frac{g_0}{\lVert g_0 \rVert_2 + \epsilon}\right) \\
    \theta^{(2)} &= \theta_t + \rho'\, \frac{g_1 - g_0}{\lVert g_1 - g_0 \rVert_2 + \epsilon}, \qquad g_2 = \nabla L_{\mathcal{B}}(\theta^{(2)}) \\
    g_3 &= \nabla L_{\mathcal{B}}\!\left(\theta^{(2)} + \rho\, \frac{g_2}{\lVert g_2 \rVert_2 + \epsilon}\right) \\
    p &= g_0 + \lvert \beta_2 \rvert\, g_2, \qquad d = \beta_1 g_1 + \beta_3 g_3, \qquad c = \frac{\langle p, d \rangle}{\lVert p \rVert_2 \lVert d \rVert_2 + \epsilon} \\
    \tilde d &= d - \gamma \left( p - c\, \lVert p \rVert_2\, \frac{d}{\lVert d \rVert_2 + \epsilon} \right) \\
    \theta_{t+1} &= \operatorname{BaseStep}\big(\theta_t,\ \tilde d\big)
    \end{aligned}
    $$

    Protocol: ``step(closure)`` calls the closure FOUR times (it clears gradients,
    computes the loss, calls ``backward`` and returns the loss; the first loss is
    returned). By hand: ``first_step()``, ``second_step()`` and ``third_step()``
    after the first three backward passes each move the weights to the next point,
    and ``fourth_step()`` after the fourth moves them back and lets the base
    optimizer step. The paper schedules the radii with the learning rate; here
    they are the attributes ``grad_rho`` and ``grad_norm_rho``.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        grad_rho: SAM-type radius $\rho$.
        grad_norm_rho: radius $\rho'$ of the ascent on the gradient norm.
        grad_beta_1: weight $\beta_1$ of $g_1$.
        grad_beta_2: weight $\beta_2$ of $g_2$ in the reference $p$ (its absolute value is used).
        grad_beta_3: weight $\beta_3$ of $g_3$.
        grad_gamma: weight $\gamma$ of the removed orthogonal component.
        perturb_eps: $\epsilon$, added to the norms.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.GAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Zhang, Xu, Yu, Zou and Cui, "Gradient Norm Aware Minimization Seeks First-Order Flatness and
        Improves Generalization", CVPR 2023. https://arxiv.org/abs/2303.03108
    """

    _settings = ("grad_norm_rho", "grad_beta_1", "grad_beta_2", "grad_beta_3", "grad_gamma")

    def __init__(self, optimizer: Optimizer, grad_rho: float = 0.02, grad_norm_rho: float = 0.2,
                 grad_beta_1: float = 1.0, grad_beta_2: float = -1.0, grad_beta_3: float = 1.0,
                 grad_gamma: float = 0.03, perturb_eps: float = 1e-12):
        check_nonnegative(grad_rho, "grad_rho")
        check_nonnegative(grad_norm_rho, "grad_norm_rho")
        check_nonnegative(perturb_eps, "perturb_eps")
        for name, value in (("grad_beta_1", grad_beta_1), ("grad_beta_2", grad_beta_2), ("grad_beta_3", grad_beta_3),
                            ("grad_gamma", grad_gamma)):
            if not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
                raise ValueError(f"Invalid {name}: {value!r} (expected a finite number)")
        super().__init__(optimizer, rho=grad_rho, eps=perturb_eps)
        self.grad_norm_rho = grad_norm_rho
        self.grad_beta_1, self.grad_beta_2, self.grad_beta_3 = grad_beta_1, grad_beta_2, grad_beta_3
        self.grad_gamma = grad_gamma

    @property
    def grad_rho(self) -> float:
        return self.rho

    @grad_rho.setter
    def grad_rho(self, value: float) -> None:
        self.rho = value

    def _move(self, params, direction, radius: float, *, accumulate: bool) -> None:
        scale = radius / (global_norm(direction) + self.eps)
        for p, d in zip(params, direction):
            e = d * scale
            p.add_(e)
            self.state[p]["e"] = self.state[p]["e"] + e if accumulate else e

    def _keep(self, key: str) -> list[torch.Tensor]:
        params = [p for p in with_grads(self)]
        for p in params:
            self.state[p][key] = p.grad.clone()
        return params

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """From $g_0$: move to $\\theta_t + \\rho g_0 / \\lVert g_0\\rVert$."""
        params = self._keep("g0")
        self._move(params, [p.grad for p in params], self.rho, accumulate=False)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """From $g_1$: move back to $\\theta_t$, then up the gradient norm to $\\theta^{(2)}$."""
        params = [p for p in self._keep("g1") if "g0" in self.state[p]]
        for p in params:
            p.sub_(self.state[p].pop("e"))
        difference = [self.state[p]["g1"] - self.state[p]["g0"] for p in params]
        self._move(params, difference, self.grad_norm_rho, accumulate=False)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def third_step(self, zero_grad: bool = False) -> None:
        """From $g_2$: move to the SAM point of $\\theta^{(2)}$."""
        params = [p for p in self._keep("g2") if "e" in self.state[p]]
        self._move(params, [p.grad for p in params], self.rho, accumulate=True)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def fourth_step(self, zero_grad: bool = False) -> None:
        """From $g_3$: combine the four gradients, move back to $\\theta_t$ and let the base optimizer step."""
        params = [p for p in with_grads(self) if "g2" in self.state[p]]
        states = [self.state[p] for p in params]
        direction = gam_direction([s.pop("g0") for s in states], [s.pop("g1") for s in states],
                                  [s.pop("g2") for s in states], [p.grad for p in params],
                                  beta_1=self.grad_beta_1, beta_2=self.grad_beta_2, beta_3=self.grad_beta_3,
                                  gamma=self.grad_gamma, eps=self.eps)
        for p, d in zip(params, direction):
            if d is not p.grad:
                p.grad.copy_(d)
        SAM.second_step(self, zero_grad)  # move back by the stored e and let the base optimizer step

    def step(self, closure=None):
        """One GAM step; ``closure`` is required and is evaluated four times. Returns the first loss."""
        if closure is None:
            raise ValueError("GAM needs a closure (or call first_step() ... fourth_step() yourself)")
        with torch.enable_grad():
            loss = closure()
        for half in (self.first_step, self.second_step, self.third_step):
            half()
            with torch.enable_grad():
                closure()
        self.fourth_step()
        return loss


register(OptimizerEntry(
    name="GAM", cls=GAM, canon_id="gam", **COMMON,
    errors=(ErrorInput({"grad_rho": -0.1}, "grad_rho"), ErrorInput({"grad_norm_rho": -0.1}, "grad_norm_rho"),
            ErrorInput({"perturb_eps": -1.0}, "perturb_eps")),
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "grad_rho": 0.01, "grad_norm_rho": 0.01},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}), "grad_rho": 0.005,
                            "grad_norm_rho": 0.005}},
))
