"""AccSGD: accelerated SGD with a long-step auxiliary sequence (Kidambi et al., 2018)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register


def accsgd_constants(lr: float, kappa: float, xi: float, small_const: float) -> tuple[float, float, float]:
    """(long step, auxiliary weight, mixing weight) = (kappa lr / c, c^2 xi / kappa, c / (c + c^2 xi / kappa))."""
    long_lr = kappa * lr / small_const
    aux_weight = small_const**2 * xi / kappa
    mix = small_const / (small_const + aux_weight)
    return long_lr, aux_weight, mix


def accsgd_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    aux: torch.Tensor,
    *,
    lr: float,
    kappa: float,
    xi: float,
    small_const: float,
    weight_decay: float,
) -> None:
    """One AccSGD step for one tensor, in place; ``aux`` starts as a copy of the parameter.

    z <- (1 - b) z + b (theta - long_lr g);  theta <- zeta (theta - lr g) + (1 - zeta) z.
    """
    long_lr, aux_weight, mix = accsgd_constants(lr, kappa, xi, small_const)
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    aux.mul_(1 - aux_weight).add_(param.add(grad, alpha=-long_lr), alpha=aux_weight)
    param.add_(grad, alpha=-lr).mul_(mix).add_(aux, alpha=1 - mix)


class AccSGD(ZijOptimizer):
    r"""AccSGD: SGD accelerated by coupling short steps with a slowly moving long-step sequence.

    Each step takes a short gradient step from the iterate and a long one
    (a factor $\kappa / c$ larger) that feeds an auxiliary sequence $z$
    moving slowly toward it; the new iterate is a convex combination of the
    short step and $z$. The constants follow the authors' PyTorch code, which
    parameterises the algorithm by the long-to-short step ratio $\kappa$, the
    statistical advantage $\xi$ and a constant $c \le 1$ (0.7 by default).
    The auxiliary sequence starts at the initial parameters. An optional L2
    term is added to the gradient, as in the authors' code.

    $$
    \begin{aligned}
    \bar\eta &= \frac{\kappa\, \eta}{c}, \qquad \bar\beta = \frac{c^{2} \xi}{\kappa}, \qquad \zeta = \frac{c}{c + \bar\beta} \\
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    z_t &= (1-\bar\beta)\, z_{t-1} + \bar\beta\, (\theta_{t-1} - \bar\eta\, \tilde g_t), \qquad z_0 = \theta_0 \\
    \theta_t &= \zeta\, (\theta_{t-1} - \eta\, \tilde g_t) + (1-\zeta)\, z_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: short step size $\eta$.
        kappa: long-to-short step ratio $\kappa$ (a condition-number proxy).
        xi: statistical advantage $\xi$; $c^2 \xi / \kappa$ must not exceed 1.
        small_const: the constant $c$ in $(0, 1]$.
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AccSGD(model.parameters(), lr=0.01, kappa=1000.0, xi=10.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kidambi, Netrapalli, Jain and Kakade, "On the insufficiency of existing momentum schemes
        for Stochastic Optimization", ICLR 2018. https://arxiv.org/abs/1803.05591
    """

    supports_foreach = True
    per_element = True

    def __init__(self, params, lr: float = 1e-3, kappa: float = 1000.0, xi: float = 10.0, small_const: float = 0.7,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, kappa=kappa, xi=xi, small_const=small_const, weight_decay=weight_decay,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(kappa, "kappa")
        check_positive(xi, "xi")
        check_positive(small_const, "small_const")
        if small_const > 1:
            raise ValueError(f"Invalid small_const: {small_const!r} (expected a number in (0, 1])")
        if small_const**2 * xi > kappa:
            raise ValueError(f"Invalid xi: {xi!r} (expected small_const**2 * xi <= kappa = {kappa!r})")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["aux"] = self.copy_like(p, group)

    def update(self, p, grad, state, group):
        accsgd_update(p, grad, state["aux"], lr=group["lr"], kappa=group["kappa"], xi=group["xi"],
                      small_const=group["small_const"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AccSGD",
    cls=AccSGD,
    canon_id="accsgd",
    family="momentum",
    recipe={"lr": 0.01, "kappa": 1000.0, "xi": 10.0, "small_const": 0.7},
    recipes={"rosenbrock": {"lr": 2e-4}},
    errors=invalid("lr", "weight_decay") + (
        ErrorInput({"kappa": 0.0}, "kappa"),
        ErrorInput({"xi": -1.0}, "xi"),
        ErrorInput({"kappa": 10.0, "xi": 100.0}, "xi"),
        ErrorInput({"small_const": 1.5}, "small_const"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:AccSGD",
               {"lr": 0.01, "kappa": 1000.0, "xi": 10.0, "small_const": 0.7, "weight_decay": 0.01},
               {"lr": 0.01, "kappa": 1000.0, "xi": 10.0, "constant": 0.7, "weight_decay": 0.01}),
    ),
))
