"""AdaSmooth: an AdaDelta-style second moment whose averaging window follows the effective ratio (Lu, 2022)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import l2_into_grad


def adasmooth_update(param, grad, displacement, path_length, exp_avg_sq, *, lr: float, rho1: float, rho2: float,
                     eps: float, weight_decay: float) -> None:
    """One AdaSmooth step for a tensor or a TensorList, in place.

    g <- g + wd theta;  e = |s| / (n + eps) (s, n: sums of the past steps and of their magnitudes);
    c = (rho2 - rho1) e + (1 - rho2);  v <- (1 - c^2) v + c^2 g^2;  d = -lr g / sqrt(v + eps);
    theta <- theta + d;  s <- s + d;  n <- n + |d|.
    """
    grad = l2_into_grad(grad, param, weight_decay)
    ratio = displacement.abs().div_(path_length + eps)
    smoothing = ratio.mul_(rho2 - rho1).add_(1.0 - rho2)
    exp_avg_sq.add_((grad * grad).sub_(exp_avg_sq).mul_(smoothing * smoothing))  # v + c^2 (g^2 - v)
    delta = grad / (exp_avg_sq + eps).sqrt_()
    delta.mul_(-lr)
    param.add_(delta)
    displacement.add_(delta)
    path_length.add_(delta.abs_())


class AdaSmooth(ZijOptimizer):
    r"""AdaSmooth: an RMS-normalized step whose averaging window adapts to how steadily each weight moves.

    The effective ratio $e_t$ of a coordinate is its net displacement over the total
    length of the path it travelled: near 1 when it moves steadily in one direction,
    near 0 when it zigzags. It sets the smoothing constant $c_t$ between $1-\rho_2$ and
    $1-\rho_1$, and $c_t^{2}$ is the weight of the new squared gradient in the running
    average: a short memory for steady coordinates, a long one for oscillating ones.
    The displacement and path length are summed over the whole run (the paper's window
    $M$ is the number of steps taken so far), as in pytorch-optimizer's implementation.
    Weight decay is classic L2, added to the gradient.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    e_t &= \frac{\lvert s_{t-1} \rvert}{n_{t-1} + \epsilon}, \qquad s_{t-1} = \sum_{i=1}^{t-1} \Delta\theta_i, \qquad n_{t-1} = \sum_{i=1}^{t-1} \lvert \Delta\theta_i \rvert \\
    c_t &= (\rho_2 - \rho_1)\, e_t + (1-\rho_2) \\
    v_t &= c_t^{2}\, \tilde g_t^{2} + (1 - c_t^{2})\, v_{t-1} \\
    \Delta\theta_t &= -\frac{\eta}{\sqrt{v_t + \epsilon}}\, \tilde g_t, \qquad \theta_t = \theta_{t-1} + \Delta\theta_t
    \end{aligned}
    $$

    All operations are elementwise; $s_0 = n_0 = v_0 = 0$, so the first step has $e_1 = 0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\rho_1, \rho_2)$, the fast and slow decay constants that bound $c_t$.
        eps: $\epsilon$, in the effective ratio and inside the root.
        weight_decay: L2 weight decay $\lambda$, added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaSmooth(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Lu, "AdaSmooth: An Adaptive Learning Rate Method based on Effective Ratio", arXiv 2022.
        https://arxiv.org/abs/2204.00825
    """

    state_names = ("displacement", "path_length", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.5, 0.99), eps: float = 1e-6, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        rho1, rho2 = group["betas"]
        adasmooth_update(p, grad, state["displacement"], state["path_length"], state["exp_avg_sq"], lr=group["lr"],
                         rho1=rho1, rho2=rho2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdaSmooth",
    cls=AdaSmooth,
    canon_id="adasmooth",
    family="adaptive",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 3e-3, "betas": (0.5, 0.9)}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    parity=(
        # pytorch-optimizer's AdaSmooth with its default coupled weight decay (weight_decouple=False); it recovers the
        # past step as theta minus a stored copy of the previous weights, where zij sums the steps themselves.
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaSmooth",
               {"lr": 1e-2, "betas": (0.4, 0.9), "eps": 1e-6, "weight_decay": 0.1},
               {"lr": 1e-2, "betas": (0.4, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ),
))
