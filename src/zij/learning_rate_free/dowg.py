"""DoWG: DoG with squared gradient norms weighted by the squared distance estimate (Khaled, Mishchenko and Jin, 2023)."""

from __future__ import annotations

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from .dog import descend_, differences, squared_norms, total


def dowg_step_size(rbar_sq: float, v: float, *, lr: float, eps: float) -> float:
    """eta_t = lr rbar_t^2 / (sqrt(v_t) + eps)."""
    return lr * rbar_sq / (v**0.5 + eps)


class DoWG(ZijOptimizer):
    r"""DoWG (Distance over Weighted Gradients): a parameter-free step size, universal for smooth and nonsmooth problems.

    Like DoG, the step size grows with the largest distance from the start, but each
    squared gradient norm in the denominator is weighted by the squared distance
    estimate of its step, so that the method adapts to smoothness without knowing it.
    Distances and norms run over all parameters of all groups.

    $$
    \begin{aligned}
    \bar r_t^{2} &= \max\left( \lVert \theta_t - \theta_0 \rVert^{2},\ \bar r_{t-1}^{2} \right), \qquad \bar r_{-1}^{2} = \epsilon \\
    v_t &= v_{t-1} + \bar r_t^{2}\, \lVert g_t \rVert^{2} \\
    \eta_t &= c\, \frac{\bar r_t^{2}}{\sqrt{v_t} + \epsilon} \\
    \theta_{t+1} &= \theta_t - \eta_t\, g_t
    \end{aligned}
    $$

    This is the official code's DoWG: $\epsilon$ serves as the initial squared distance
    estimate and in the denominator. The multiplier $c$ (``lr``, default 1) is zij's, so
    that schedulers and parameter groups have a learning rate to act on; the estimate is
    shared by all groups, kept in every group dict. Norms run over the tensors that have
    a gradient (the official code requires every tensor to have one).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: $c$, multiplier of the step size (1 is the method).
        eps: $\epsilon$, initial squared distance estimate and denominator guard.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DoWG(model.parameters())
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Khaled, Mishchenko and Jin, "DoWG Unleashed: An Efficient Universal Parameter-Free Gradient Descent
        Method", NeurIPS 2023. https://arxiv.org/abs/2305.16284
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, eps: float = 1e-4, *, maximize: bool = False,
                 foreach: bool | None = None):
        defaults = hyperparameters(lr=lr, eps=eps, maximize=maximize, foreach=foreach, rt2=None, vt=0.0, k=0)
        check_positive(eps, "eps")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["x0"] = p.detach().clone()

    def global_step(self, gathered):
        grad_sqs, distance_sqs = [], []  # per tensor, over all groups in order, each group by its own path
        for group, params, grads, states in gathered:
            foreach = self.use_foreach(group, params)
            grad_sqs += squared_norms(grads, foreach)
            distance_sqs += squared_norms(differences(params, [s["x0"] for s in states], foreach), foreach)
        if not grad_sqs:
            return
        first = self.param_groups[0]
        grad_sq, distance_sq = total(grad_sqs), total(distance_sqs)
        rt2 = max(first["eps"] if first["rt2"] is None else first["rt2"], distance_sq)
        vt = first["vt"] + rt2 * grad_sq
        for group in self.param_groups:
            group.update(rt2=rt2, vt=vt, k=first["k"] + 1)

    def group_step(self, group, params, grads, states):
        eta = dowg_step_size(group["rt2"], group["vt"], lr=group["lr"], eps=group["eps"])
        for state in states:
            state["step"] += 1
        descend_(params, grads, eta, self.use_foreach(group, params))


register(OptimizerEntry(
    name="DoWG",
    cls=DoWG,
    canon_id="dowg",
    family="parameter-free",
    aliases=("Distance over Weighted Gradients",),
    recipe={"lr": 1.0},
    capabilities=Capabilities(elementwise=False),
    skips={"param_groups": "the distance and the weighted sum are taken over all groups together, so one DoWG over "
                           "two groups is not two over one group each (the official code does the same)"},
    errors=invalid("lr") + (ErrorInput({"eps": 0.0}, "eps"),),
))
