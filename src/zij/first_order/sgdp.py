"""SGDP: SGD with momentum without the radial step on scale-invariant weights (Heo et al., 2021)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import per_tensor
from .adamp import project_scale_invariant


def sgdp_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    delta: float,
    wd_ratio: float,
    nesterov: bool,
) -> None:
    """One SGDP step for one tensor, in place.

    b <- mu * b + (1 - dampening) * g;  p = g + mu * b (Nesterov) or b;  q = p without its radial part if
    theta looks scale-invariant (then r = wd_ratio, else r = 1);
    theta <- theta * (1 - lr * weight_decay * r / (1 - mu)) - lr * q.
    """
    momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
    update = grad + momentum_buffer * momentum if nesterov else momentum_buffer.clone()
    decay = per_tensor(lambda p, g, u: 1 - lr * weight_decay * (wd_ratio if project_scale_invariant(p, g, u, delta=delta)
                                                                else 1.0) / (1 - momentum), param, grad, update)
    param.mul_(decay)
    param.add_(update, alpha=-lr)


class SGDP(ZijOptimizer):
    r"""SGDP: SGD with momentum that drops the radial component of its step on scale-invariant weights.

    The SGD counterpart of AdamP. When the gradient is nearly orthogonal to a
    weight (as for weights followed by a normalization layer), the part of
    the momentum step along the weight, which only grows the weight norm and
    so shrinks the effective step size, is removed, and weight decay is
    scaled down by $\rho$.

    $$
    \begin{aligned}
    b_t &= \mu\, b_{t-1} + (1-\tau)\, g_t, \qquad
    p_t = \begin{cases} g_t + \mu\, b_t & \text{with Nesterov momentum} \\ b_t & \text{otherwise} \end{cases} \\
    (q_t, r_t) &= \begin{cases}
      \bigl(p_t - (\hat\theta_{t-1}^{\top} p_t)\, \hat\theta_{t-1},\ \rho\bigr) & \text{if } \lvert\cos(\theta_{t-1}, g_t)\rvert < \delta / \sqrt{\dim \theta} \\
      (p_t,\ 1) & \text{otherwise}
    \end{cases} \\
    \theta_t &= \theta_{t-1} - \frac{\eta \lambda r_t}{1-\mu}\, \theta_{t-1} - \eta\, q_t, \qquad \hat\theta_{t-1} = \frac{\theta_{t-1}}{\lVert \theta_{t-1}\rVert}
    \end{aligned}
    $$

    The test and projection act per output channel, then on the whole tensor,
    exactly as in :class:`AdamP`; tensors with fewer than two dimensions are
    never projected. The paper defines the momentum step, the test and the
    projection; dampening $\tau$, Nesterov momentum, the weight-decay ratio
    $\rho$ and the decoupled weight decay scaled by $1/(1-\mu)$ (the size L2
    decay reaches through the momentum) follow the official code. As in the
    paper, the buffer $b_t$ itself is never projected; the official code
    without Nesterov momentum projects it in place, which changes later steps.
    The default momentum $0.9$ is the usual one for SGD with momentum; the
    official code defaults to 0.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: momentum coefficient $\mu \in [0, 1)$.
        dampening: dampening $\tau$ of the gradient entering the momentum.
        weight_decay: decoupled weight decay $\lambda$.
        delta: threshold $\delta$ of the scale-invariance test.
        wd_ratio: weight-decay ratio $\rho \in [0, 1]$ used where the projection applies.
        nesterov: use Nesterov momentum.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
        >>> opt = zij.SGDP(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-5)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Heo, Chun, Oh, Han, Yun, Kim, Uh and Ha, "AdamP: Slowing Down the Slowdown for Momentum
        Optimizers on Scale-invariant Weights", ICLR 2021. https://arxiv.org/abs/2006.08217
    """

    state_names = ("momentum_buffer",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, dampening: float = 0.0,
                 weight_decay: float = 0.0, delta: float = 0.1, wd_ratio: float = 0.1, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                   delta=delta, wd_ratio=wd_ratio, nesterov=bool(nesterov), maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_unit(dampening, "dampening", closed=True)
        check_nonnegative(delta, "delta")
        check_unit(wd_ratio, "wd_ratio", closed=True)
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        sgdp_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                    dampening=group["dampening"], weight_decay=group["weight_decay"], delta=group["delta"],
                    wd_ratio=group["wd_ratio"], nesterov=group["nesterov"])


_PARITY = {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01, "delta": 0.1, "wd_ratio": 0.1}

register(OptimizerEntry(
    name="SGDP",
    cls=SGDP,
    canon_id="sgdp",
    family="sgd-family",
    recipe={"lr": 0.01, "momentum": 0.9},
    recipes={"rosenbrock": {"lr": 5e-4}},
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"dampening": -0.5}, "dampening"),
        ErrorInput({"delta": -0.1}, "delta"),
        ErrorInput({"wd_ratio": -0.1}, "wd_ratio"),
    ),
    parity=(
        # The references' eps only guards the norms in the projection; ours is exact, so theirs is made tiny.
        # Without Nesterov the official code projects the momentum buffer itself (the step aliases it),
        # which the paper's rule does not do; with Nesterov the step is a new tensor and both agree.
        Parity("adamp", "adamp:SGDP", {**_PARITY, "nesterov": True}, {**_PARITY, "nesterov": True, "eps": 1e-12}),
        Parity("pytorch-optimizer", "pytorch_optimizer:SGDP", _PARITY,
               {**_PARITY, "eps": 1e-12, "weight_decouple": True, "fixed_decay": False}),
        Parity("pytorch-optimizer", "pytorch_optimizer:SGDP", {**_PARITY, "nesterov": True},
               {**_PARITY, "nesterov": True, "eps": 1e-12, "weight_decouple": True, "fixed_decay": False}),
    ),
))
