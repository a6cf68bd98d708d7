"""SM3: AdaGrad with one accumulator per row and per column (Anil et al., 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import ema_


def sm3_update(param: torch.Tensor, grad: torch.Tensor, accumulators: list[torch.Tensor],
               momentum_buffer: torch.Tensor | None, *, lr: float, momentum: float, eps: float) -> None:
    """One SM3-II step for one tensor, in place.

    ``accumulators[k]`` holds one value per slice along dimension k (shape 1 x .. x n_k x .. x 1),
    so the cover sets of a matrix are its rows and columns; a scalar keeps one accumulator.
    nu = min_k acc_k + g^2;  acc_k <- max of nu over every dimension but k;
    u = g / sqrt(nu + eps);  m <- momentum m + (1 - momentum) u (if momentum > 0);  theta <- theta - lr m.
    """
    nu = accumulators[0].clone()
    for acc in accumulators[1:]:
        nu = torch.minimum(nu, acc)
    nu = nu.addcmul_(grad, grad) if nu.shape == grad.shape else nu + grad * grad
    for k, acc in enumerate(accumulators):
        others = tuple(d for d in range(grad.ndim) if d != k)
        acc.copy_(nu.amax(dim=others, keepdim=True) if others else nu)
    update = nu.add_(eps).rsqrt_().mul_(grad)
    if momentum_buffer is not None:
        update = ema_(momentum_buffer, update, momentum)
    param.add_(update, alpha=-lr)


class SM3(ZijOptimizer):
    r"""SM3: AdaGrad whose squared-gradient sums are kept per row and per column.

    SM3 (Square-root of Minima of Sums of Maxima of Squared-gradients) covers the
    coordinates of a tensor with sets (for a matrix: its rows and its columns) and
    stores one accumulator per set. Each coordinate's AdaGrad sum is bounded on the
    fly by the smallest accumulator among the sets that contain it plus its new
    squared gradient, and every set then keeps the largest bound among its
    coordinates (SM3-II). An $n \times m$ matrix keeps $n + m$ values instead of
    $nm$; a tensor of shape $(n_1, \dots, n_k)$ keeps $\sum_i n_i$, a vector one per
    entry (plain AdaGrad). Optional momentum on the preconditioned gradient, as in the
    official code, adds a full-size buffer.

    $$
    \begin{aligned}
    \nu_t(i) &= \min_{r:\, S_r \ni i} \mu_{t-1}(r) + g_t(i)^{2} \\
    u_t(i) &= \frac{g_t(i)}{\sqrt{\nu_t(i) + \epsilon}} \\
    m_t &= \beta m_{t-1} + (1-\beta)\, u_t \\
    \theta_t(i) &= \theta_{t-1}(i) - \eta\, m_t(i) \\
    \mu_t(r) &= \max_{j \in S_r} \nu_t(j)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (the authors warm it up quadratically and then keep it constant).
        momentum: $\beta$, momentum of the preconditioned gradient (0: none, and no buffer is kept).
        eps: $\epsilon$ inside the square root, which keeps coordinates with no gradient yet finite.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SM3(model.parameters(), lr=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Anil, Gupta, Koren and Singer, "Memory Efficient Adaptive Optimization", NeurIPS 2019.
        https://arxiv.org/abs/1901.11150
    """

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.0, eps: float = 1e-30, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, momentum=momentum, eps=eps, maximize=maximize,
                                                 state_dtype=state_dtype))

    def init_state(self, p, state, group):
        state["step"] = 0
        dtype = group.get("state_dtype") or p.dtype
        shapes = [p.shape] if p.ndim <= 1 else [[1] * k + [n] + [1] * (p.ndim - 1 - k) for k, n in enumerate(p.shape)]
        for k, shape in enumerate(shapes):
            state[f"accumulator_{k}"] = torch.zeros(shape, dtype=dtype, device=p.device)
        if group["momentum"] > 0:
            state["momentum_buffer"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        accumulators = [state[f"accumulator_{k}"] for k in range(max(p.ndim, 1))]
        sm3_update(p, grad, accumulators, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
                   eps=group["eps"])


register(OptimizerEntry(
    name="SM3",
    cls=SM3,
    canon_id="sm3",
    family="factored",
    recipe={"lr": 0.3},
    recipes={"rosenbrock": {"lr": 0.5}},
    errors=invalid("lr", "momentum", "eps"),
    variants={"momentum": {"momentum": 0.9}},
    parity=(
        # pytorch-optimizer's SM3 with beta = 0 (its default) is SM3-II; its foreach path and loop agree.
        Parity("pytorch-optimizer", "pytorch_optimizer:SM3", {"lr": 0.1, "momentum": 0.0, "eps": 1e-30},
               {"lr": 0.1, "momentum": 0.0, "eps": 1e-30}),
        Parity("pytorch-optimizer", "pytorch_optimizer:SM3", {"lr": 0.1, "momentum": 0.9, "eps": 1e-30},
               {"lr": 0.1, "momentum": 0.9, "eps": 1e-30}),
    ),
))
