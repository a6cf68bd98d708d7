"""GSAM: SAM plus a step against the ordinary gradient's part orthogonal to the SAM gradient (Zhuang et al., 2022)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, global_dot, global_norm, with_grads
from .sam import SAM


def gsam_direction(clean: list[torch.Tensor], robust: list[torch.Tensor], *, alpha: float,
                   eps: float) -> list[torch.Tensor]:
    """$\\tilde g - \\alpha g^\\perp$, with $g^\\perp$ the part of ``clean`` orthogonal to ``robust`` (global)."""
    if alpha == 0:
        return robust
    unit_scale = 1.0 / (global_norm(robust) + eps)
    projection = global_dot(clean, robust) * unit_scale  # <g, u>, u = g~ / ||g~||
    return [r - alpha * (c - projection * unit_scale * r) for c, r in zip(clean, robust)]


class GSAM(ExtraSettings, SAM):
    r"""GSAM (Surrogate Gap Guided SAM): SAM's gradient, minus a step that shrinks the surrogate gap.

    Each step evaluates the loss twice, as :class:`SAM`. The ordinary gradient
    $g_t$ gives the perturbation; the gradient $\tilde g_t$ at the perturbed
    point is the descent direction, and the part $g_t^{\perp}$ of $g_t$
    orthogonal to $\tilde g_t$ is subtracted with weight $\alpha$: it lowers the
    surrogate gap (perturbed minus unperturbed loss) without raising the
    perturbed loss to first order. Norms and inner products are over all
    parameters together. With $\alpha = 0$ it is SAM, with $\rho = 0$ and
    $\alpha = 0$ the base optimizer.

    $$
    \begin{aligned}
    \epsilon_t &= \rho_t\, \frac{g_t}{\lVert g_t \rVert}, \qquad \tilde g_t = \nabla L(\theta_t + \epsilon_t) \\
    g_t^{\perp} &= g_t - \frac{\langle g_t, \tilde g_t \rangle}{\lVert \tilde g_t \rVert^{2}}\, \tilde g_t \\
    \theta_{t+1} &= \theta_t - \eta_t \left( \tilde g_t - \alpha\, g_t^{\perp} \right)
    \end{aligned}
    $$

    The last line is the base optimizer's step, shown for SGD: the base optimizer
    receives $\tilde g_t - \alpha g_t^{\perp}$ as its gradient. ``eps`` guards the
    norms ($\lVert g_t\rVert + \epsilon$, $\lVert \tilde g_t\rVert + \epsilon$).
    The paper schedules $\rho_t$ in proportion to the learning rate; here
    $\rho$ is the attribute ``rho``, which a training loop may set each step.
    Protocol: ``step(closure)`` calls the closure twice (it clears gradients,
    computes the loss, calls ``backward`` and returns the loss; the first loss
    is returned), or by hand ``first_step()`` after the first backward pass and
    ``second_step()`` after the second.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: perturbation radius $\rho$.
        alpha: weight $\alpha$ of the surrogate-gap correction.
        eps: added to the norms so that a zero gradient gives no perturbation.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.GSAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, alpha=0.1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Zhuang, Gong, Yuan, Cui, Adam, Dvornek, Tatikonda, Duncan and Liu, "Surrogate Gap Minimization
        Improves Sharpness-Aware Training", ICLR 2022. https://arxiv.org/abs/2203.08065
    """

    _settings = ("alpha",)

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, alpha: float = 0.1, eps: float = 1e-12):
        super().__init__(optimizer, rho=rho, eps=eps)
        check_nonnegative(alpha, "alpha")
        self.alpha = alpha

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Keep the ordinary gradient, then move the weights to the perturbed point."""
        for p in with_grads(self):
            self.state[p]["clean"] = p.grad.clone()
        super().first_step(zero_grad)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Replace the perturbed gradient by the GSAM direction, move back and let the base optimizer step."""
        params = [p for p in with_grads(self) if "clean" in self.state[p]]
        clean = [self.state[p].pop("clean") for p in params]
        direction = gsam_direction(clean, [p.grad for p in params], alpha=self.alpha, eps=self.eps)
        for p, d in zip(params, direction):
            if d is not p.grad:
                p.grad.copy_(d)
        for state in self.state.values():
            state.pop("clean", None)
        super().second_step(zero_grad)


register(OptimizerEntry(
    name="GSAM", cls=GSAM, canon_id="gsam", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"alpha": -0.1}, "alpha"), ErrorInput({"eps": -1.0}, "eps")),
    recipe={**RECIPE, "alpha": 0.1},
    recipes={"rosenbrock": {**ROSENBROCK, "alpha": 0.1}},
))
