"""LARS: momentum SGD with a layer-wise trust ratio (You, Gitman and Ginsburg, 2017)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import per_tensor


def _trust_ratio(param: torch.Tensor, grad: torch.Tensor, weight_decay: float, trust_coefficient: float) -> torch.Tensor:
    """LARS's local rate of one tensor: kappa ||theta|| / (||g|| + wd ||theta||), or 1 where a norm is 0."""
    weight_norm = torch.linalg.vector_norm(param)
    denominator = torch.linalg.vector_norm(grad) + weight_decay * weight_norm
    return torch.where((weight_norm > 0) & (denominator > 0), trust_coefficient * weight_norm / denominator,
                       torch.ones_like(weight_norm))


def lars_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    trust_coefficient: float,
    adapt: bool = True,
) -> None:
    """One LARS step for one tensor (one layer), in place.

    r = trust_coefficient * ||theta|| / (||g|| + weight_decay * ||theta||)   (1 if ||theta|| or the
    denominator is 0);  b <- momentum * b + lr * r * (g + weight_decay * theta);  theta <- theta - b.
    With ``adapt=False``: b <- momentum * b + lr * g (no ratio, no decay).
    """
    if adapt:
        local_lr = per_tensor(lambda p, g: _trust_ratio(p, g, weight_decay, trust_coefficient), param, grad)
        direction = grad.add(param, alpha=weight_decay) if weight_decay != 0 else grad.clone()
        direction.mul_(local_lr * lr)
    else:
        direction = grad * lr
    momentum_buffer.mul_(momentum).add_(direction)
    param.sub_(momentum_buffer)


class LARS(ZijOptimizer):
    r"""LARS: momentum SGD where every layer's step is scaled by a trust ratio.

    Each parameter tensor (a "layer") gets a local learning rate proportional
    to the ratio of its weight norm to its gradient norm, so layers whose
    gradients are large relative to their weights take smaller steps. As in
    the paper, the learning rate enters the momentum buffer. The local rate is
    1 when the weight norm or the denominator is zero. The paper's polynomial
    learning-rate decay is left to a scheduler.

    $$
    \begin{aligned}
    r_t &= \begin{cases} \dfrac{\kappa\, \lVert \theta_{t-1}\rVert}{\lVert g_t\rVert + \lambda\, \lVert \theta_{t-1}\rVert} & \text{if } \lVert \theta_{t-1}\rVert > 0 \text{ and } \lVert g_t\rVert + \lambda \lVert \theta_{t-1}\rVert > 0 \\ 1 & \text{otherwise} \end{cases} \\
    b_t &= \beta\, b_{t-1} + \eta\, r_t\, (g_t + \lambda\, \theta_{t-1}) \\
    \theta_t &= \theta_{t-1} - b_t
    \end{aligned}
    $$

    With ``exclude_vectors=True``, tensors with fewer than two dimensions
    (biases, normalization weights) take a plain momentum step,
    $b_t = \beta b_{t-1} + \eta\, g_t$: no trust ratio and no weight decay, as
    in common large-batch recipes.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; every tensor is one layer.
        lr: global learning rate $\eta$.
        momentum: momentum coefficient $\beta$ in $[0, 1)$.
        weight_decay: weight decay $\lambda$ (enters the ratio and the direction).
        trust_coefficient: trust coefficient $\kappa$.
        exclude_vectors: give 0-D and 1-D tensors plain momentum steps (default False: the paper's rule for all).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.LARS(model.parameters(), lr=1.0, momentum=0.9, weight_decay=1e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        You, Gitman and Ginsburg, "Large Batch Training of Convolutional Networks",
        arXiv 2017. https://arxiv.org/abs/1708.03888
    """

    state_names = ("momentum_buffer",)
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1.0, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 1e-3, exclude_vectors: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay,
                                   trust_coefficient=trust_coefficient, exclude_vectors=bool(exclude_vectors),
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(trust_coefficient, "trust_coefficient")
        super().__init__(params, defaults)

    def use_foreach(self, group, params):
        # excluded vectors take another rule: the tensor-by-tensor loop decides per tensor
        return not group["exclude_vectors"] and super().use_foreach(group, params)

    def update(self, p, grad, state, group):
        lars_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                    weight_decay=group["weight_decay"], trust_coefficient=group["trust_coefficient"],
                    adapt=not (group["exclude_vectors"] and not isinstance(p, TensorList) and p.ndim < 2))


register(OptimizerEntry(
    name="LARS",
    cls=LARS,
    canon_id="lars",
    family="layer-wise",
    recipe={"lr": 1.0, "momentum": 0.9, "trust_coefficient": 0.01},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"trust_coefficient": 0.0}, "trust_coefficient"),
    ),
    # pytorch-optimizer's LARS adapts only tensors with two or more dimensions and keeps the learning
    # rate outside the buffer; with exclude_vectors=True and a constant learning rate both agree.
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:LARS",
               {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.01, "trust_coefficient": 0.02, "exclude_vectors": True},
               {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.01, "trust_coefficient": 0.02, "dampening": 0.0,
                "nesterov": False}),
    ),
))
