"""SAM and ASAM: step with the gradient taken at a worst-case perturbation of the weights (Foret et al., 2021; Kwon et al., 2021)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative
from .._checkpoint import CLASS_KEY, check_wrapper
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register
from ._two_pass import two_pass_step


def sam_perturbation(params: list[torch.Tensor], grads: list[torch.Tensor], *, rho: float, adaptive: list[bool],
                     eta: float, eps: float) -> list[torch.Tensor]:
    """The perturbations e of all parameters together (one global norm).

    SAM: e = rho g / (||g|| + eps).  ASAM: T = |theta| + eta (elementwise) on the tensors flagged in
    ``adaptive`` and T = 1 on the others, e = rho T^2 g / (||T g|| + eps). The norm is over every
    parameter of every group; ``eps`` guards a zero gradient.
    """
    scaled = [g * (p.abs() + eta) if a else g for p, g, a in zip(params, grads, adaptive)]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(s) for s in scaled]))
    scale = rho / (norm + eps)
    return [s * (p.abs() + eta) * scale if a else s * scale for p, s, a in zip(params, scaled, adaptive)]


class SAM(Optimizer):
    r"""SAM (Sharpness-Aware Minimization): the base optimizer steps with the gradient at the worst nearby point.

    Each step evaluates the loss twice. The first gradient $g_t$ gives the
    perturbation $\hat e_t$ (a step of length $\rho$ along $g_t$, the norm taken
    over all parameters together); the weights are moved there, the gradient is
    taken again, the weights are moved back, and the base optimizer steps with
    that second gradient. With $\rho = 0$ it is the base optimizer.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_{t-1}) \\
    \hat e_t &= \rho\, \frac{g_t}{\lVert g_t\rVert_2} \\
    g^{\text{SAM}}_t &= \nabla L_{\mathcal{B}}(\theta)\big\rvert_{\theta = \theta_{t-1} + \hat e_t} \\
    \theta_t &= \theta_{t-1} - \eta\, g^{\text{SAM}}_t
    \end{aligned}
    $$

    The last line is the base optimizer's step, shown for SGD. Protocol: either
    ``step(closure)``, where the closure clears gradients, computes the loss,
    calls ``backward`` and returns the loss (it is called twice; the first loss
    is returned), or the two halves by hand: ``first_step()`` after the first
    backward pass, ``second_step()`` after the second. Gradients are not
    cleared between the two calls of a closure that does not clear them itself.
    Learning-rate schedulers act on the base optimizer's groups, which SAM shares.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: neighbourhood radius $\rho$.
        eps: added to the gradient norm so that a zero gradient gives no perturbation.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.SAM(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), rho=0.05)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Foret, Kleiner, Mobahi and Neyshabur, "Sharpness-Aware Minimization for Efficiently
        Improving Generalization", ICLR 2021. https://arxiv.org/abs/2010.01412
    """

    adaptive = False
    #: Indices (in group order) of the parameters the adaptive operator normalizes; None: all.
    normalized = None

    def __init__(self, optimizer: Optimizer, rho: float = 0.05, eps: float = 1e-12, *, eta: float = 0.0):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        check_nonnegative(rho, "rho")
        check_nonnegative(eps, "eps")
        check_nonnegative(eta, "eta")
        self.optimizer = optimizer
        self.rho, self.eps, self.eta = rho, eps, eta
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups  # shared, so schedulers reach the base optimizer

    def __getstate__(self):
        return {**super().__getstate__(), "optimizer": self.optimizer, "rho": self.rho, "eps": self.eps,
                "eta": self.eta, "normalized": self.normalized}

    def _all_params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _with_grads(self) -> tuple[list[torch.Tensor], list[bool]]:
        """Parameters with gradients, and whether the adaptive operator normalizes each."""
        chosen = None if self.normalized is None else set(self.normalized)
        pairs = [(p, self.adaptive and (chosen is None or i in chosen))
                 for i, p in enumerate(self._all_params()) if p.grad is not None]
        return [p for p, _ in pairs], [a for _, a in pairs]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move the weights to the perturbed point, from the gradients now in ``.grad``."""
        params, adaptive = self._with_grads()
        if any(p.grad.is_sparse for p in params):
            raise RuntimeError("SAM does not support sparse gradients")
        perturbations = sam_perturbation(params, [p.grad for p in params], rho=self.rho, adaptive=adaptive,
                                         eta=self.eta, eps=self.eps) if params else []
        for p, e in zip(params, perturbations):
            p.add_(e)
            self.state[p]["e"] = e
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Move the weights back and let the base optimizer step with the gradients now in ``.grad``."""
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state[p].pop("e", None) if p in self.state else None
                if e is not None:
                    p.sub_(e)
        self.optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure=None):
        """One SAM step; ``closure`` is required and is evaluated twice. Returns the first loss."""
        return two_pass_step(self, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        """The base optimizer's state (SAM keeps nothing between steps but its settings)."""
        return {"inner": self.optimizer.state_dict(), "rho": self.rho, "eps": self.eps, "eta": self.eta,
                "normalized": self.normalized, CLASS_KEY: type(self).__name__}

    def load_state_dict(self, state_dict):
        check_wrapper(self, state_dict, ("inner", "rho", "eps", "eta"))
        self.optimizer.load_state_dict(state_dict["inner"])
        self.rho, self.eps, self.eta = state_dict["rho"], state_dict["eps"], state_dict["eta"]
        self.normalized = state_dict.get("normalized")
        self.param_groups = self.optimizer.param_groups


class ASAM(SAM):
    r"""ASAM (Adaptive SAM): SAM's perturbation measured relative to the size of each weight.

    The neighbourhood is stretched by $T_t = \operatorname{diag}(|\theta_{t-1}| + \eta_0)$, so
    large weights are perturbed more and the sharpness it measures does not change when a
    network is rescaled. The same two-pass protocol as :class:`SAM`; the final step is
    the base optimizer's, shown for SGD.

    $$
    \begin{aligned}
    g_t &= \nabla L_{\mathcal{B}}(\theta_{t-1}) \\
    T_t &= \operatorname{diag}\big(\lvert \theta_{t-1}\rvert + \eta_0\big) \ \text{(normalized tensors)}, \qquad T_t = I \ \text{(the others)} \\
    \hat e_t &= \rho\, \frac{T_t^{2}\, g_t}{\lVert T_t\, g_t\rVert_2 + \epsilon} \\
    \tilde g_t &= \nabla L_{\mathcal{B}}(\theta)\big\rvert_{\theta = \theta_{t-1} + \hat e_t} \\
    \theta_t &= \operatorname{BaseStep}\big(\theta_{t-1},\ \tilde g_t\big)
    \end{aligned}
    $$

    By default every tensor is normalized; ``normalize`` names the ones to normalize
    instead (the official code normalizes the parameters whose name contains
    ``weight``: pass ``[p for n, p in model.named_parameters() if "weight" in n]``).
    The final step is the base optimizer's (``BaseStep``).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        rho: neighbourhood radius $\rho$ in normalized units (the paper uses about 10 times SAM's).
        eps: added to the norm so that a zero gradient gives no perturbation.
        eta: $\eta_0$, keeps the operator away from zero for zero weights.
        normalize: the parameters $T_t$ normalizes (default: all); the others get $T_t = I$.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.ASAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.5, eta=0.01)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Kwon, Kim, Park and Choi, "ASAM: Adaptive Sharpness-Aware Minimization for Scale-Invariant
        Learning of Deep Neural Networks", ICML 2021. https://arxiv.org/abs/2102.11600
    """

    adaptive = True

    def __init__(self, optimizer: Optimizer, rho: float = 0.5, eps: float = 1e-12, *, eta: float = 0.01,
                 normalize=None):
        super().__init__(optimizer, rho=rho, eps=eps, eta=eta)
        if normalize is not None:
            chosen = {id(p) for p in normalize}
            self.normalized = [i for i, p in enumerate(self._all_params()) if id(p) in chosen]


_SAM_COMMON = dict(
    family="sharpness-aware",
    wraps=True,
    errors=(ErrorInput({"rho": -0.1}, "rho"), ErrorInput({"eps": -1.0}, "eps")),
    capabilities=Capabilities(needs_closure=True, elementwise=False),
    skips={"param_groups": "the perturbation's norm is taken over all groups together, so one SAM over two "
                           "groups is not two SAMs over one group each; the groups are the base optimizer's, "
                           "which test_sam.py checks through a scheduler"},
)
register(OptimizerEntry(
    name="SAM", cls=SAM, canon_id="sam", **_SAM_COMMON,
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "rho": 0.01},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}), "rho": 0.005}},
))
register(OptimizerEntry(
    name="ASAM", cls=ASAM, canon_id="asam", **_SAM_COMMON,
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "rho": 0.05},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}), "rho": 0.01}},
))
