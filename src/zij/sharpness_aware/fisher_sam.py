"""Fisher SAM: SAM's ball replaced by an ellipsoid given by a diagonal Fisher estimate (Kim et al., 2022)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RECIPE, RHO_ERROR, ROSENBROCK, with_grads
from .sam import SAM


def fisher_perturbation(grads: list[torch.Tensor], *, rho: float, eta: float, eps: float) -> list[torch.Tensor]:
    """$\\rho F^{-1} g / (\\sqrt{g^\\top F^{-1} g} + \\epsilon)$ with $F = \\operatorname{diag}(1 + \\eta g \\odot g)$."""
    natural = [g / (1.0 + eta * g * g) for g in grads]
    if not natural:
        return []
    quadratic = torch.stack([(g * n).sum() for g, n in zip(grads, natural)]).sum()
    scale = rho / (quadratic.sqrt() + eps)
    return [n * scale for n in natural]


class FisherSAM(SAM):
    r"""Fisher SAM: the worst-case perturbation sought in a Fisher-information ellipsoid instead of a ball.

    As :class:`SAM`, with the perturbation maximizing the linearized loss
    under $e^{\top} F_t e \le \rho^2$ instead of $\lVert e\rVert \le \rho$. $F_t$ is
    the paper's cheap diagonal estimate from the minibatch gradient,
    $1 + \eta\, g_t \odot g_t$, so the directions where the gradient is large
    (the predictions sensitive) are perturbed less. Sums are over all
    parameters together. With $\eta = 0$ it is SAM; with $\rho = 0$ the base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_{t-1}), \qquad F_t = \operatorname{diag}\big(1 + \eta_F\, g_t \odot g_t\big) \\
    \hat e_t &= \rho\, \frac{F_t^{-1} g_t}{\sqrt{g_t^{\top} F_t^{-1} g_t} + \epsilon} \\
    \theta_t &= \operatorname{BaseStep}\Big(\theta_{t-1},\ \nabla L_{\mathcal{B}}(\theta)\big\rvert_{\theta = \theta_{t-1} + \hat e_t}\Big)
    \end{aligned}
    $$

    Protocol: ``step(closure)`` calls the closure twice (it clears gradients,
    computes the loss, calls ``backward`` and returns the loss; the first loss is
    returned), or by hand ``first_step()`` after the first backward pass and
    ``second_step()`` after the second.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: radius $\rho$ of the Fisher ellipsoid.
        eta: $\eta_F$, the scale of the squared gradient in the Fisher estimate.
        eps: $\epsilon$, added to the denominator so that a zero gradient gives no perturbation.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.FisherSAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.1, eta=1.0)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Kim, Li, Hu and Hospedales, "Fisher SAM: Information Geometry and Sharpness Aware Minimisation",
        ICML 2022. https://arxiv.org/abs/2206.04920
    """

    def __init__(self, optimizer: Optimizer, rho: float = 0.1, eta: float = 1.0, eps: float = 1e-12):
        super().__init__(optimizer, rho=rho, eps=eps, eta=eta)  # SAM keeps eta (and saves it in state_dict)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move the weights to the perturbed point, from the gradients now in ``.grad``."""
        params = with_grads(self)
        for p, e in zip(params, fisher_perturbation([p.grad for p in params], rho=self.rho, eta=self.eta,
                                                    eps=self.eps)):
            p.add_(e)
            self.state[p]["e"] = e
        if zero_grad:
            self.zero_grad()


register(OptimizerEntry(
    name="FisherSAM", cls=FisherSAM, canon_id="fisher-sam", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"eta": -1.0}, "eta"), ErrorInput({"eps": -1.0}, "eps")),
    recipe=RECIPE,
    recipes={"rosenbrock": ROSENBROCK},
))
