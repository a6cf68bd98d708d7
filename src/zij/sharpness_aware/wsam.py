"""WSAM: sharpness as a weighted regularization term, applied decoupled or coupled (Yue et al., 2023)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative, check_unit
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RECIPE, RHO_ERROR, ROSENBROCK, ExtraSettings, with_grads
from .sam import SAM


class WSAM(ExtraSettings, SAM):
    r"""WSAM (Weighted SAM): the ordinary loss plus a weighted sharpness term, with any base optimizer.

    Each step evaluates the loss twice, as :class:`SAM`: the ordinary gradient
    $g_t$ gives the perturbation, and $\tilde g_t$ is the gradient at the
    perturbed point. The sharpness term's gradient $\tilde g_t - g_t$ gets the
    weight $\alpha = \gamma/(1-\gamma)$. Decoupled (the default), the base optimizer
    steps with $g_t$ and the sharpness part is applied afterwards as a plain
    step scaled by each group's learning rate; coupled, the base optimizer
    steps with $g_t + \alpha(\tilde g_t - g_t)$. With $\gamma = 0$, or with
    $\rho = 0$ when decoupled, it is the base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_t), \qquad e_t = \rho\, \frac{g_t}{\lVert g_t \rVert_2 + \epsilon} \\
    \tilde g_t &= \nabla L_{\mathcal{B}}(\theta_t + e_t), \qquad \alpha = \frac{\gamma}{1-\gamma} \\
    \text{decoupled:}\quad \theta_{t+1} &= \operatorname{BaseStep}\big(\theta_t,\ g_t\big) - \eta\, \alpha \left( \tilde g_t - g_t \right) \\
    \text{coupled:}\quad \theta_{t+1} &= \operatorname{BaseStep}\big(\theta_t,\ \alpha\, \tilde g_t + (1 - \alpha)\, g_t\big)
    \end{aligned}
    $$

    As in the official code, the norm is over all parameters together and the
    decoupled step uses the learning rate $\eta$ of each parameter's group (read
    after the base step). The official code's optional gradient clipping and
    ASAM-style adaptive perturbation are not included. Protocol:
    ``step(closure)`` calls the closure twice (the first loss is returned), or by
    hand ``first_step()`` after the first backward pass and ``second_step()``
    after the second.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: perturbation radius $\rho$.
        gamma: sharpness weight $\gamma$ in [0, 1).
        sam_eps: $\epsilon$, added to the gradient norm.
        decouple: apply the sharpness term outside the base optimizer (True) or mix it into its gradient.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.WSAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05, gamma=0.9)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Yue, Jiang, Ye, Gao, Liu and Zhang, "Sharpness-Aware Minimization Revisited: Weighted Sharpness
        as a Regularization Term", KDD 2023. https://arxiv.org/abs/2305.15817
    """

    _settings = ("gamma", "decouple")

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, gamma: float = 0.9, sam_eps: float = 1e-12, *,
                 decouple: bool = True):
        check_unit(gamma, "gamma")
        check_nonnegative(sam_eps, "sam_eps")
        super().__init__(optimizer, rho=rho, eps=sam_eps)
        self.gamma, self.decouple = gamma, bool(decouple)

    @property
    def alpha(self) -> float:
        return self.gamma / (1.0 - self.gamma)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Keep the ordinary gradient, then move the weights to the perturbed point."""
        for p in with_grads(self):
            self.state[p]["clean"] = p.grad.clone()
        super().first_step(zero_grad)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Move back; the base optimizer steps, then (decoupled) the sharpness step follows."""
        alpha = self.alpha
        sharpness = []
        for group in self.param_groups:
            for p in group["params"]:
                clean = self.state[p].pop("clean", None) if p in self.state else None
                if clean is None or p.grad is None:
                    continue
                if self.decouple:
                    sharpness.append((group, p, p.grad - clean))
                    p.grad.copy_(clean)
                else:
                    p.grad.copy_(alpha * p.grad + (1.0 - alpha) * clean)
        super().second_step(zero_grad)
        for group, p, diff in sharpness:
            p.add_(diff, alpha=-group["lr"] * alpha)


register(OptimizerEntry(
    name="WSAM", cls=WSAM, canon_id="wsam", **COMMON,
    errors=(RHO_ERROR, ErrorInput({"gamma": 1.0}, "gamma"), ErrorInput({"sam_eps": -1.0}, "sam_eps")),
    recipe={**RECIPE, "gamma": 0.5},
    recipes={"rosenbrock": {**ROSENBROCK, "gamma": 0.5}},
    variants={"coupled": {"decouple": False}},
))
