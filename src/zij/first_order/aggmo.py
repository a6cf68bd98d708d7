"""AggMo: aggregated momentum (Lucas, Sun, Zemel and Grosse, 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import per_tensor


def aggmo_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    velocities: torch.Tensor,
    *,
    lr: float,
    betas: tuple[float, ...],
    weight_decay: float,
) -> None:
    """One AggMo step for one tensor, in place; ``velocities[i]`` is the velocity of ``betas[i]``.

    g <- g + weight_decay * theta;  v_i <- beta_i * v_i - g;  theta <- theta + lr / K * sum_i v_i.
    """
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    many = isinstance(velocities, TensorList)  # one stacked (K, ...) tensor per parameter
    for i, beta in enumerate(betas):
        velocity = TensorList([v[i] for v in velocities]) if many else velocities[i]
        velocity.mul_(beta).sub_(grad)
    param.add_(per_tensor(lambda v: v.sum(dim=0), velocities), alpha=lr / len(betas))


class AggMo(ZijOptimizer):
    r"""AggMo (aggregated momentum): average several heavy-ball velocities with different dampings.

    Each of $K$ velocities is a heavy-ball momentum buffer with its own damping
    coefficient $\beta^{(i)}$; the step is their average. Large coefficients
    move fast along low-curvature directions while small ones damp the
    oscillations they cause. $K = 1$ is heavy-ball momentum. An optional L2
    term is added to the gradient, as in the authors' code (with
    $\lambda = 0$ this is the paper's algorithm).

    $$
    \begin{aligned}
    v^{(i)}_t &= \beta^{(i)} v^{(i)}_{t-1} - (g_t + \lambda\, \theta_{t-1}), \qquad i = 1, \dots, K \\
    \theta_t &= \theta_{t-1} + \frac{\eta}{K} \sum_{i=1}^{K} v^{(i)}_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: damping coefficients $\beta^{(1)}, \dots, \beta^{(K)}$, each in $[0, 1)$.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AggMo(model.parameters(), lr=0.1, betas=(0.0, 0.9, 0.99))
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lucas, Sun, Zemel and Grosse, "Aggregated Momentum: Stability Through Passive Damping",
        ICLR 2019. https://arxiv.org/abs/1804.00325
    """

    per_element = True
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 0.1, betas=(0.0, 0.9, 0.99), weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, n_betas=None)
        if not defaults["betas"]:
            raise ValueError("Invalid betas: () (expected at least one value)")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["velocities"] = torch.zeros((len(group["betas"]), *p.shape), dtype=group.get("state_dtype") or p.dtype,
                                           device=p.device)

    def update(self, p, grad, state, group):
        aggmo_update(p, grad, state["velocities"], lr=group["lr"], betas=group["betas"],
                     weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AggMo",
    cls=AggMo,
    canon_id="aggmo",
    family="momentum",
    recipe={"lr": 0.01, "betas": (0.0, 0.9, 0.99)},
    recipes={"rosenbrock": {"lr": 2e-4}},
    errors=invalid("lr", "weight_decay", betas=(0.0, 0.9, 1.0)) + (
        ErrorInput({"betas": ()}, "betas"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:AggMo",
               {"lr": 0.05, "betas": (0.0, 0.9, 0.99), "weight_decay": 0.01},
               {"lr": 0.05, "betas": (0.0, 0.9, 0.99), "weight_decay": 0.01, "weight_decouple": False}),
    ),
))
