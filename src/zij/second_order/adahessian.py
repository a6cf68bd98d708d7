"""AdaHessian: Adam with a Hutchinson estimate of the Hessian diagonal in place of squared gradients (Yao et al., 2021)."""

from __future__ import annotations

import math

import torch

from .._base import check_int, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from .._tensorlist import TensorList
from ..blocks import ema_, ema_sq_
from .sophia import HutchinsonOptimizer


def spatial_average(product: torch.Tensor) -> torch.Tensor:
    """D = |H z| for tensors of order <= 2; for kernels (order >= 3) its mean over the dimensions after the
    first two, kept as size-1 dimensions (the official code averages the two spatial dims of 4-D kernels)."""
    magnitude = product.abs()
    if product.ndim <= 2:
        return magnitude
    return magnitude.mean(dim=tuple(range(2, product.ndim)), keepdim=True)


def _pow_(x, exponent: float):
    """``x ** exponent`` in place, for a tensor or a TensorList."""
    if isinstance(x, TensorList):
        torch._foreach_pow_(x.tensors, exponent)
        return x
    return x.pow_(exponent)


def adahessian_update(param, grad, exp_avg, exp_hessian_diag_sq, *, step: int, lr: float, beta1: float,
                      beta2: float, eps: float, hessian_power: float, weight_decay: float) -> None:
    """The step after the estimate was folded in, for a tensor or a TensorList: m <- b1 m + (1 - b1) g;
    theta <- theta - lr (m / (1 - b1^t) / ((sqrt(v) / sqrt(1 - b2^t))^k + eps) + wd theta)."""
    ema_(exp_avg, grad, beta1)
    bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
    denom = _pow_(exp_hessian_diag_sq.sqrt() / math.sqrt(bias_correction2), hessian_power).add_(eps)
    direction = (exp_avg / bias_correction1).div_(denom)
    if weight_decay != 0:
        direction.add_(param, alpha=weight_decay)
    param.add_(direction.to((param[0] if isinstance(param, TensorList) else param).dtype), alpha=-lr)


class AdaHessian(HutchinsonOptimizer):
    r"""AdaHessian: Adam whose denominator averages squared Hutchinson estimates of the Hessian diagonal.

    Each step draws a Rademacher probe $z$ for all parameters together and takes one
    Hessian-vector product; $\lvert H z\rvert$, the magnitude of Hutchinson's estimate
    $z \odot H z$, is averaged over the spatial positions of convolution kernels and its square
    enters an Adam-style moving average in place of $g^2$. The step is scaled by local
    curvature rather than by gradient magnitude; ``hessian_power`` $k$ interpolates to
    momentum SGD ($k = 0$).

    $$
    \begin{aligned}
    z &\sim \operatorname{Rademacher}, \qquad u = \left\lvert \nabla\!\left(g_t^{\top} z\right) \right\rvert = \lvert H_t z\rvert \\
    D_t &= \begin{cases} u & \text{tensors of order} \le 2 \\ \operatorname{mean}_{\text{spatial}}(u) & \text{convolution kernels} \end{cases} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, D_t \odot D_t \\
    \theta_t &= \theta_{t-1} - \eta \left( \frac{m_t / (1-\beta_1^{t})}{\left(\sqrt{v_t} / \sqrt{1-\beta_2^{t}}\right)^{k} + \epsilon} + \lambda\, \theta_{t-1} \right)
    \end{aligned}
    $$

    Protocol (Hessian-vector products): the gradients must carry a graph on every step.
    ``step(closure)`` arranges it: the closure (which clears the gradients, computes the loss,
    calls ``loss.backward()`` and returns the loss) is run with every ``backward`` forced to
    ``create_graph=True``; without a closure, call ``loss.backward(create_graph=True)``
    yourself before ``step()``. After the product the gradients are detached, which breaks the
    reference cycle ``create_graph`` makes. Probes come from a generator seeded by ``seed``
    whose state is saved in ``state_dict`` (``seed=None``: torch's global generator). Tensors of
    order 3 or more are averaged over every dimension after the first two.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decays of the gradient and curvature averages.
        eps: $\epsilon$, added to the denominator.
        hessian_power: $k$ in [0, 1], the power of the curvature scaling.
        weight_decay: $\lambda$, added to the step inside the learning rate (decoupled from the curvature).
        seed: seed of the probes' generator (``None``: torch's global generator).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.AdaHessian(model.parameters(), lr=0.15)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Yao, Gholami, Shen, Mustafa, Keutzer and Mahoney, "ADAHESSIAN: An Adaptive Second Order Optimizer
        for Machine Learning", AAAI 2021. https://arxiv.org/abs/2006.00719
    """

    state_names = ("exp_avg", "exp_hessian_diag_sq")
    hessian_name = "AdaHessian"
    supports_foreach = True

    def __init__(self, params, lr: float = 0.15, betas=(0.9, 0.999), eps: float = 1e-4, hessian_power: float = 1,
                 weight_decay: float = 0, seed: int | None = 0, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, hessian_power=hessian_power,
                                   weight_decay=weight_decay, seed=seed, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, t=0, k=1, distribution="rademacher", rng_state=None)
        if not isinstance(hessian_power, (int, float)) or not 0 <= hessian_power <= 1:
            raise ValueError(f"Invalid hessian_power: {hessian_power!r} (expected a number in [0, 1])")
        if seed is not None:
            check_int(seed, "seed", minimum=0)
        super().__init__(params, defaults)

    def take_estimate(self, state, group, probe, product) -> None:
        curvature = spatial_average(product).to(state["exp_hessian_diag_sq"].dtype)
        ema_sq_(state["exp_hessian_diag_sq"], curvature, group["betas"][1])

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adahessian_update(p, grad, state["exp_avg"], state["exp_hessian_diag_sq"], step=state["step"], lr=group["lr"],
                          beta1=beta1, beta2=beta2, eps=group["eps"], hessian_power=group["hessian_power"],
                          weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaHessian",
    cls=AdaHessian,
    canon_id="adahessian",
    family="curvature",
    recipe={"lr": 0.1, "eps": 1e-4},
    recipes={"rosenbrock": {"lr": 1.0}},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"hessian_power": 1.5}, "hessian_power"),
        ErrorInput({"seed": -1}, "seed"),
    ),
    capabilities=Capabilities(elementwise=False),
    skips={
        "param_groups": "the Hessian-vector product is taken over all groups together (one probe for the whole "
                        "model), so one optimizer over two groups is not two optimizers over one group each",
        "compile": "the test calls backward without create_graph, and AdaHessian needs a Hessian-vector product "
                   "every step (tests/optim/test_adahessian.py checks the protocol)",
    },
))
