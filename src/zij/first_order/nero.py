"""Nero: per-neuron normalized steps on centred, unit-norm weights (Liu et al., 2021)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_lr, check_nonnegative, check_unit
from .._registry import ErrorInput, OptimizerEntry, Parity, Variant, register
from ..blocks import per_tensor


def neuron_norm(x: torch.Tensor) -> torch.Tensor:
    """The norm of each neuron's incoming weights (rows of a matrix, first-axis slices), shaped to broadcast;
    the absolute value of a vector's or scalar's entries."""
    if x.dim() <= 1:
        return x.abs()
    return x.reshape(x.shape[0], -1).norm(dim=1).view(x.shape[0], *[1] * (x.dim() - 1))


def neuron_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of each neuron's incoming weights, shaped to broadcast (tensors of two or more dimensions)."""
    return x.reshape(x.shape[0], -1).mean(dim=1).view(x.shape[0], *[1] * (x.dim() - 1))


def project_(param: torch.Tensor, eps: float) -> torch.Tensor:
    """Centre each neuron and scale it to unit norm, in place: w <- (w - mean w) / (||w - mean w|| + eps).

    A neuron whose weights are all equal centres to zero and stays zero (the official code, with eps = 0,
    divides 0 by 0 there and fills the layer with NaN).
    """
    param.sub_(neuron_mean(param))
    norm = neuron_norm(param).add_(eps)
    return param.div_(norm.masked_fill_(norm == 0, 1.0))


def _initial_scale(param: torch.Tensor) -> torch.Tensor:
    """sigma: the mean neuron norm of a tensor at its first step, 0.01 if that is zero (0-dim tensor)."""
    scale = neuron_norm(param).mean()
    return torch.where(scale == 0, torch.full_like(scale, 0.01), scale)


def _zero_undefined_(normed: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Set the 0 / 0 entries of ``normed`` (NaN where the gradient is 0) to 0, in place."""
    return normed.masked_fill_(normed.isnan() & (grad == 0), 0.0)


def project_where_(param, constrained, eps: float):
    """:func:`project_` on one tensor if ``constrained``, or on those tensors of a TensorList whose flag is set."""
    return per_tensor(lambda p, c: project_(p, eps) if c else p, param, constrained)


def nero_update(param, grad, exp_avg_sq, scale, *, step: int, lr: float, beta: float, eps: float, constrained) -> None:
    """One Nero step for one tensor (or a TensorList of them, ``constrained`` a flag per tensor), in place.

    v <- beta v + (1 - beta) ||g_i||^2 per neuron;  u = g / (sqrt(v / (1 - beta^t)) + eps), 0 / 0 set to 0;
    w <- w - lr sigma u;  w <- (w - mean w) / (||w - mean w|| + eps) per neuron if constrained.
    """
    norm = per_tensor(neuron_norm, grad)
    exp_avg_sq.mul_(beta).addcmul_(norm, norm, value=1 - beta)
    normed = grad / (exp_avg_sq / (1 - beta**step)).sqrt_().add_(eps)  # v broadcasts over each neuron's weights
    per_tensor(_zero_undefined_, normed, grad)  # 0 / 0: a neuron never given a gradient
    param.add_(normed.mul_(scale), alpha=-lr)
    project_where_(param, constrained, eps)


class Nero(ZijOptimizer):
    r"""Nero: turn each neuron's weight vector by a controlled angle, kept centred and at unit norm.

    The unit of optimisation is a neuron: the incoming weights $w_i$ of one
    output (a row of a matrix, a slice of a convolution kernel along its
    first axis). Each step divides the neuron's gradient by a running root
    mean of its squared norm, so the step is a relative (angular) one, and
    then re-centres the neuron and projects it back to unit norm. Tensors of
    one dimension (biases, gains) are treated entrywise: their step is scaled
    by $\sigma$, their mean initial magnitude, and they are not projected.
    A matrix is centred and normalized at its first step, before the update;
    the projection is off everywhere with ``constraints=False``.

    $$
    \begin{aligned}
    v_{t,i} &= \beta v_{t-1,i} + (1-\beta)\, \lVert g_{t,i}\rVert^{2}, \qquad \hat v_{t,i} = \frac{v_{t,i}}{1-\beta^{t}} \\
    w_{t,i} &= w_{t-1,i} - \eta\, \sigma\, \frac{g_{t,i}}{\sqrt{\hat v_{t,i}} + \epsilon} \\
    w_{t,i} &\leftarrow \frac{w_{t,i} - \bar w_{t,i}}{\lVert w_{t,i} - \bar w_{t,i}\rVert + \epsilon}
    \end{aligned}
    $$

    Entries of the normalized gradient that come out $0/0$ (a neuron whose gradient has always been zero,
    with $\epsilon = 0$) are set to zero, and so is a neuron whose weights are all equal when it is centred
    (the official code divides $0/0$ in both places). $\sigma = 1$ for a projected matrix; otherwise the mean of
    the neuron norms at the first step (0.01 if that is zero).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: $\eta$, the relative step size.
        beta: $\beta$, the decay of the running average of squared neuron-gradient norms.
        constraints: centre and normalize the neurons of tensors with two or more dimensions.
        eps: $\epsilon$, added to both denominators (0: the official code, which has none).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Nero(model.parameters(), lr=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Liu, Bernstein, Meister and Yue, "Learning by Turning: Neural Architecture Aware Optimisation",
        ICML 2021. https://arxiv.org/abs/2102.07227
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 0.01, beta: float = 0.999, constraints: bool = True, eps: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        check_lr(lr)
        check_unit(beta, "beta")
        check_nonnegative(eps, "eps")
        super().__init__(params, dict(lr=lr, beta=beta, constraints=bool(constraints), eps=eps, maximize=maximize,
                                      foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or p.dtype
        state["exp_avg_sq"] = torch.zeros_like(neuron_norm(p.detach()), dtype=dtype)
        state["scale"] = torch.zeros((), dtype=dtype, device=p.device)  # sigma, set at the first step

    def update(self, p, grad, state, group):
        constrained = per_tensor(lambda t: group["constraints"] and t.dim() > 1, p)
        if state["step"] == 1:  # the official code projects at construction; here, before the first update
            project_where_(p, constrained, group["eps"])
            state["scale"].copy_(per_tensor(_initial_scale, p))
        nero_update(p, grad, state["exp_avg_sq"], state["scale"], step=state["step"], lr=group["lr"],
                    beta=group["beta"], eps=group["eps"], constrained=constrained)


register(OptimizerEntry(
    name="Nero",
    cls=Nero,
    canon_id="nero",
    family="layer-wise",
    recipe={"lr": 0.05, "constraints": False},
    recipes={"logistic": {"lr": 5.0}, "rosenbrock": {"lr": 0.002, "beta": 0.9}},
    variants={"constraints": Variant({"constraints": True}, skips={
        check: "with constraints every row of a matrix is kept centred at unit norm, so the weights cannot reach "
               "this problem's minimum; the constraint is meant for the matrices of networks with normalized layers"
        for check in ("quadratic", "logistic", "rosenbrock")})},
    errors=(
        ErrorInput({"lr": -1.0}, "lr"),
        ErrorInput({"beta": 1.0}, "beta"),
        ErrorInput({"eps": -1e-8}, "eps"),
    ),
    parity=(
        # pytorch-optimizer adds eps to both denominators (the official code has none: eps=0 here); the projection
        # at the first step is its (and our) lazy form of the official code's projection at construction.
        Parity("pytorch-optimizer", "pytorch_optimizer:Nero", {"lr": 0.01, "beta": 0.999, "eps": 1e-8},
               {"lr": 0.01, "beta": 0.999, "eps": 1e-8}),
        Parity("pytorch-optimizer", "pytorch_optimizer:Nero",
               {"lr": 0.02, "beta": 0.99, "eps": 1e-8, "constraints": False},
               {"lr": 0.02, "beta": 0.99, "eps": 1e-8, "constraints": False}),
    ),
))
