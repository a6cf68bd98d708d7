"""LOMO: SGD with gradient clipping, whose official form updates each parameter inside backward (Lv et al., 2024)."""

from __future__ import annotations

import torch

from torch.optim import Optimizer

from .._base import check_nonnegative, hyperparameters
from .._checkpoint import CheckedStateDict
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register


def check_optional(value, name: str) -> None:
    """``value`` is ``None`` (off) or a finite number >= 0."""
    if value is not None:
        check_nonnegative(value, name)


def clip_coefficient(gathered, max_norm_key: str = "clip_grad_norm") -> None:
    r"""Store in each group with ``clip_grad_norm`` the coefficient $\min(1, \tau / (\lVert g\rVert_2 + 10^{-6}))$.

    $\lVert g\rVert_2$ is the norm of all gradients of the step together (every group), in float32 or the
    gradients' dtype if wider, as the official code measures it in its extra backward pass.
    """
    groups = [group for group, *_ in gathered if group.get(max_norm_key)]
    if not groups:
        return
    norms = [torch.linalg.vector_norm(g.to(torch.promote_types(g.dtype, torch.float32)))
             for _, _, grads, _ in gathered for g in grads]
    total = torch.linalg.vector_norm(torch.stack([n.to(norms[0]) for n in norms])) if norms else torch.zeros(())
    for group in groups:
        group["clip_coef"] = torch.clamp(float(group[max_norm_key]) / (total + 1e-6), max=1.0)


def clipped_gradient(grad: torch.Tensor, group: dict) -> torch.Tensor:
    """The gradient in float32 (or wider) clipped by value, then scaled by the group's norm coefficient."""
    g = grad.to(torch.promote_types(grad.dtype, torch.float32), copy=True)
    value = group.get("clip_grad_value")
    if value is not None and value > 0:
        g.clamp_(min=-value, max=value)
    if group.get("clip_grad_norm") and "clip_coef" in group:
        g.mul_(group["clip_coef"].to(g.device))
    return g


def lomo_update(param: torch.Tensor, grad: torch.Tensor, *, lr: float, weight_decay: float) -> None:
    """theta <- (1 - lr wd) theta - lr g, computed in float32 (or the parameter's dtype if wider) and copied back."""
    work = param.to(torch.promote_types(param.dtype, torch.float32))
    work.mul_(1 - lr * weight_decay).add_(grad.to(work.dtype), alpha=-lr)
    if work is not param:
        param.copy_(work)


class LOMO(CheckedStateDict, Optimizer):
    r"""LOMO (LOw-Memory Optimization): SGD with value and global-norm clipping, the rule of a fused-backward optimizer.

    Protocol: the official LOMO updates each parameter inside the backward pass (a hook
    per parameter applies the step as soon as its gradient exists and frees it), so the
    gradients of the whole model never coexist, and is driven by
    ``optimizer.fused_backward(loss, lr)`` instead of ``backward`` then ``step``; norm
    clipping there needs a first backward pass that only measures the gradient norm
    (``grad_norm(loss)``). This class is the same arithmetic as an ordinary optimizer: call
    ``backward`` and then ``step``; the global norm is taken from the gradients of the step
    directly. It therefore computes what LOMO computes but does not save LOMO's memory,
    which needs the hooks (a parameter used twice in the graph would also get two updates
    in the fused form, one here). The official fp16 dynamic loss scaling is not included
    (use ``torch.amp``). The step is computed in float32 and copied back into 16-bit
    weights, as in the official code.

    $$
    \begin{aligned}
    c_t &= \min\!\left(1, \frac{\tau}{\lVert g_t\rVert_2 + 10^{-6}}\right) \quad \text{(1 when norm clipping is off)} \\
    \tilde g^{(l)}_t &= c_t\, \operatorname{clip}_{[-v, v]}\!\big( g^{(l)}_t \big) \\
    \theta^{(l)}_t &= (1 - \eta\lambda)\, \theta^{(l)}_{t-1} - \eta\, \tilde g^{(l)}_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        clip_grad_norm: threshold $\tau$ of the global gradient norm over all groups (``None``: off).
        clip_grad_value: threshold $v$ of elementwise value clipping (``None``: off).
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.LOMO(model.parameters(), lr=1e-3, clip_grad_norm=1.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lv et al., "Full Parameter Fine-tuning for Large Language Models with Limited Resources", ACL 2024.
        https://arxiv.org/abs/2306.09782
    """

    def __init__(self, params, lr: float = 1e-3, clip_grad_norm: float | None = None,
                 clip_grad_value: float | None = None, weight_decay: float = 0.0, *, maximize: bool = False):
        defaults = hyperparameters(lr=lr, clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                                   weight_decay=weight_decay, maximize=maximize)
        check_optional(clip_grad_norm, "clip_grad_norm")
        check_optional(clip_grad_value, "clip_grad_value")
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step (LOMO keeps no state).

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        gathered = []
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                if p.grad.is_sparse or torch.is_complex(p):
                    raise RuntimeError("LOMO does not support sparse gradients or complex parameters")
            grads = [-p.grad if group["maximize"] else p.grad for p in params]
            gathered.append((group, params, grads, None))
        clip_coefficient(gathered)
        for group, params, grads, _ in gathered:
            for p, grad in zip(params, grads):
                lomo_update(p, clipped_gradient(grad, group), lr=group["lr"], weight_decay=group["weight_decay"])
        return loss


#: Why the norm-clipped variants skip the param_groups check.
GLOBAL_NORM = ("norm clipping uses the norm of all groups' gradients together, as the official code does, "
               "so several groups are not several independent optimizers")

register(OptimizerEntry(
    name="LOMO",
    cls=LOMO,
    canon_id="lomo",
    family="sgd-family",
    recipe={"lr": 0.01},
    recipes={"quadratic": {"lr": 0.015}, "logistic": {"lr": 0.5}, "rosenbrock": {"lr": 1e-3}},
    variants={"clipped": Variant({"clip_grad_norm": 10.0, "clip_grad_value": 20.0}, skips={"param_groups": GLOBAL_NORM})},
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"clip_grad_norm": -1.0}, "clip_grad_norm"),
        ErrorInput({"clip_grad_value": -1.0}, "clip_grad_value"),
    ),
))
