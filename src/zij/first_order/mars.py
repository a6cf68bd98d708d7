"""MARS: variance-reduced gradients fed to AdamW (Yuan et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_, per_tensor


def mars_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    last_grad: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    gamma: float,
    eps: float,
    weight_decay: float,
) -> None:
    """One MARS-AdamW step (approximate form) for one tensor, in place; ``last_grad`` holds g_{t-1} (0 at t = 1).

    c = g + gamma * b1 / (1 - b1) * (g - g_prev);  c <- c / max(1, ||c||);
    m <- b1 m + (1 - b1) c;  v <- b2 v + (1 - b2) c^2;
    theta <- theta - lr * ((m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + wd * theta).
    """
    correction = (grad - last_grad).mul_(gamma * beta1 / (1 - beta1)).add_(grad)
    correction.div_(per_tensor(lambda c: torch.linalg.vector_norm(c).clamp(min=1.0), correction))
    ema_(exp_avg, correction, beta1)
    ema_sq_(exp_avg_sq, correction, beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    decoupled_decay_(param, lr, weight_decay).addcdiv_(exp_avg, denom, value=-lr / (1 - beta1**step))
    last_grad.copy_(grad)


class MARS(ZijOptimizer):
    r"""MARS (MARS-AdamW): AdamW on a variance-reduced, norm-clipped gradient estimate.

    MARS adds to each stochastic gradient a scaled difference from the
    previous one, a recursive-momentum (STORM-style) correction that lowers
    the variance of the momentum estimate, clips the corrected gradient to
    Euclidean norm at most one (per tensor), and hands it to AdamW's moments.
    Weight decay is decoupled.

    $$
    \begin{aligned}
    c_t &= g_t + \gamma\, \frac{\beta_1}{1-\beta_1}\, \bigl(g_t - g_{t-1}\bigr) \\
    \tilde c_t &= \frac{c_t}{\max\bigl(1,\, \lVert c_t\rVert_2\bigr)} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde c_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde c_t^{2} \\
    \theta_t &= \theta_{t-1} - \eta \Bigl(\frac{m_t / (1-\beta_1^{t})}{\sqrt{v_t / (1-\beta_2^{t})} + \epsilon} + \lambda\, \theta_{t-1}\Bigr)
    \end{aligned}
    $$

    with $g_0 = 0$. This is the approximate form of MARS-AdamW, the official
    code's default: the paper's exact form evaluates the current mini-batch's
    gradient at the previous parameters as well, which costs a second
    backward pass; the approximation reuses the previous step's gradient. The
    official code by default updates one-dimensional parameters with plain
    AdamW and separate settings; this class applies MARS to every tensor (use
    another optimizer for biases if that is wanted). MARS-Lion and
    MARS-Shampoo are not part of this class. With $\gamma = 0$ and gradients of
    norm at most one, the rule is AdamW.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the two moments ($\beta_1$ also scales the correction).
        gamma: $\gamma$, scale of the gradient-difference correction.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.MARS(model.parameters(), lr=3e-3, gamma=0.025, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Yuan, Liu, Wu, Zhou and Gu, "MARS: Unleashing the Power of Variance Reduction for Training
        Large Models", ICML 2025. https://arxiv.org/abs/2411.10438
    """

    state_names = ("exp_avg", "exp_avg_sq", "last_grad")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 3e-3, betas=(0.95, 0.99), gamma: float = 0.025, eps: float = 1e-8,
                 weight_decay: float = 0.0, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, gamma=gamma, eps=eps, weight_decay=weight_decay,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(gamma, "gamma")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        mars_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["last_grad"], step=state["step"],
                    lr=group["lr"], beta1=beta1, beta2=beta2, gamma=group["gamma"], eps=group["eps"],
                    weight_decay=group["weight_decay"])


# pytorch-optimizer adds its eps to sqrt(v) before bias correction and 1e-15 inside the square root;
# with eps = 0 both compute the same (up to that 1e-15). optimize_1d=True: MARS for every tensor, as here.
register(OptimizerEntry(
    name="MARS",
    cls=MARS,
    canon_id="mars",
    family="variance-reduced",
    aliases=("MARS-AdamW",),
    recipe={"lr": 0.05, "gamma": 0.025},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.95, 1.0)) + (
        ErrorInput({"gamma": -0.1}, "gamma"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:MARS",
               {"lr": 3e-3, "betas": (0.9, 0.99), "gamma": 0.1, "eps": 0.0, "weight_decay": 0.1},
               {"lr": 3e-3, "betas": (0.9, 0.99), "gamma": 0.1, "eps": 0.0, "weight_decay": 0.1,
                "mars_type": "adamw", "optimize_1d": True, "weight_decouple": True, "fixed_decay": False,
                "ams_bound": False, "cautious": False}),
    ),
))
