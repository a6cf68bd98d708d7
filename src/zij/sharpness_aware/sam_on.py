"""SAM-ON: SAM whose perturbation reaches only the normalization layers' parameters (Mueller et al., 2023)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RHO_ERROR, ExtraSettings, global_norm, with_grads
from .sam import SAM

#: Name fragments that mark a normalization parameter in the official code (``named_parameters``).
NORM_NAMES = ("norm", "bn")


def stand_in(p: torch.Tensor) -> bool:
    """The test recipes' stand-in for the norm layers: every tensor but matrices of more than 20 entries
    (so the single tensor of each test problem, and the biases but not the weights of the test MLP)."""
    return p.dim() != 2 or p.numel() <= 20


class SAMON(ExtraSettings, SAM):
    r"""SAM-ON (SAM-OnlyNorm): SAM with the perturbation restricted to the normalization-layer parameters.

    Each step evaluates the loss twice, as :class:`SAM`, but only the affine
    parameters of the normalization layers (BatchNorm, LayerNorm, ... scales
    and shifts) are perturbed; the norm of the perturbation is taken over
    those parameters only. The base optimizer then updates every parameter
    with the gradient taken at the perturbed point. With $\rho = 0$ it is the
    base optimizer; with every parameter selected it is SAM.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_{t-1}), \qquad \tilde g_t = M \odot g_t \\
    \hat e_t &= \rho\, \frac{\tilde g_t}{\lVert \tilde g_t\rVert_2 + \epsilon} \\
    h_t &= \nabla L_{\mathcal{B}}(\theta)\big\rvert_{\theta = \theta_{t-1} + \hat e_t} \\
    \theta_t &= \operatorname{BaseStep}\big(\theta_{t-1},\ h_t\big)
    \end{aligned}
    $$

    $M$ selects the normalization parameters, which the wrapper cannot tell
    apart by itself: pass ``norm_params``, either the model (then, as in the
    official code, its parameters whose name contains ``norm`` or ``bn`` are
    selected), a list of the parameters, or a function of a parameter tensor
    that returns whether it is one; or pass ``norm_params=None`` and put
    ``"sam_on": True`` in the base optimizer's param groups that hold them. A
    wrapper that selects no parameter raises ``ValueError``. As in the official
    code, the perturbed parameters are restored by copying them back (not by
    subtracting $\hat e_t$). Protocol: ``step(closure)`` calls the closure
    twice (it clears gradients, computes the loss, calls ``backward`` and
    returns the loss; the first loss is returned), or by hand
    ``first_step()`` after the first backward pass and ``second_step()``
    after the second. ``BaseStep`` is the base optimizer's step.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: neighbourhood radius $\rho$ (the official code's default 0.5; the paper tunes it
            separately from SAM's, usually larger).
        eps: $\epsilon$, added to the norm (the official code's $10^{-16}$).
        norm_params: the normalization parameters: an ``nn.Module`` (names containing ``norm``
            or ``bn``), an iterable of parameters, or a function ``param -> bool``; default: the
            parameters of the groups flagged ``"sam_on": True``.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> x = torch.randn(8, 4)
        >>> norm = list(model[1].parameters())
        >>> opt = zij.SAMON(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.5, norm_params=norm)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Mueller, Vlaar, Rolnick and Hein, "Normalization Layers Are All That Sharpness-Aware
        Minimization Needs", NeurIPS 2023. https://arxiv.org/abs/2306.04226
    """

    _settings = ("perturbed",)

    def __init__(self, optimizer: Optimizer, rho: float = 0.5, eps: float = 1e-16, *, norm_params):
        super().__init__(optimizer, rho=rho, eps=eps)
        params = self._all_params()
        if norm_params is None:
            chosen = {id(p) for g in self.param_groups if g.get("sam_on", False) for p in g["params"]}
            selected = [i for i, p in enumerate(params) if id(p) in chosen]
        elif isinstance(norm_params, torch.nn.Module):
            chosen = {id(p) for n, p in norm_params.named_parameters() if any(k in n for k in NORM_NAMES)}
            selected = [i for i, p in enumerate(params) if id(p) in chosen]
        elif callable(norm_params):
            selected = [i for i, p in enumerate(params) if norm_params(p)]
        else:
            chosen = {id(p) for p in norm_params}
            selected = [i for i, p in enumerate(params) if id(p) in chosen]
        if not selected:
            raise ValueError("Invalid norm_params: SAMON selects no parameter of the base optimizer to perturb "
                             "(pass the model, the normalization parameters or a predicate, or flag their "
                             "param groups with 'sam_on': True)")
        self.perturbed = selected

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Keep the selected weights and move them to the perturbed point."""
        chosen = set(self.perturbed)
        all_params = self._all_params()
        with_grads(self)  # refuses sparse gradients
        params = [p for i, p in enumerate(all_params) if i in chosen and p.grad is not None]
        if params:
            scale = self.rho / (global_norm([p.grad for p in params]) + self.eps)
            for p in params:
                self.state[p]["old_p"] = p.clone()
                p.add_(p.grad * scale)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Put the selected weights back and let the base optimizer step with the gradients now in ``.grad``."""
        for p in self._all_params():
            old = self.state[p].pop("old_p", None) if p in self.state else None
            if old is not None:
                p.copy_(old)
        self.optimizer.step()
        if zero_grad:
            self.zero_grad()


register(OptimizerEntry(
    name="SAMON", cls=SAMON, canon_id="sam-on", **COMMON,
    aliases=("SAM-ON",),
    errors=(RHO_ERROR, ErrorInput({"eps": -1.0}, "eps"), ErrorInput({"norm_params": []}, "norm_params")),
    # the test problems have no normalization layers: stand_in selects stand-ins for them
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "rho": 0.05, "norm_params": stand_in},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}), "rho": 0.01,
                            "norm_params": stand_in}},
))
