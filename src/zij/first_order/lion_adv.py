"""LionAdv: Lion with composable flags (cautious mask, OrthoGrad, bf16 stochastic rounding)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Variant, invalid, register
from ..blocks import cautious_, ema_, orthograd, sign_direction
from .adamw_adv import ORTHOGRAD_SKIPS, apply_step_


def lion_adv_update(param, grad, exp_avg, *, lr: float, beta1: float, beta2: float, weight_decay: float,
                    cautious: bool, orthogonal: bool, stochastic_rounding: bool) -> None:
    """One LionAdv step for a tensor or a TensorList, in place.

    g <- OrthoGrad(g, theta) if orthogonal;  u = sign(b1 m + (1 - b1) g), cautious mask of u if cautious;
    theta <- (1 - lr wd) theta - lr u;  m <- b2 m + (1 - b2) g.
    """
    if orthogonal:
        grad = orthograd(grad, param)
    update = sign_direction(exp_avg * beta1 + grad * (1 - beta1))
    if cautious:
        cautious_(update, grad)
    apply_step_(param, update, lr=lr, scale=1.0, weight_decay=weight_decay, stochastic_rounding=stochastic_rounding)
    ema_(exp_avg, grad, beta2)
class LionAdv(ZijOptimizer):
    r"""LionAdv: Lion with the cautious mask, OrthoGrad and bfloat16 stochastic rounding as flags.

    All flags off gives Lion; ``cautious`` alone gives C-Lion (CautiousLion).
    ``orthograd`` projects the gradient away from the weights before the
    interpolation and the momentum see it, and ``stochastic_rounding`` updates
    bfloat16 weights in float32 and rounds them back stochastically.

    $$
    \begin{aligned}
    \tilde g_t &= \begin{cases} g_t - \frac{\langle \theta_{t-1}, g_t\rangle}{\langle \theta_{t-1}, \theta_{t-1}\rangle}\theta_{t-1}, \text{ rescaled to } \|g_t\| & \text{orthograd} \\ g_t & \text{otherwise} \end{cases} \\
    u_t &= \operatorname{sign}\bigl(\beta_1 m_{t-1} + (1-\beta_1)\tilde g_t\bigr) \\
    u_t &\leftarrow \frac{d}{\operatorname{nnz}(\phi_t) + 1}\, \phi_t \odot u_t,\ \phi_t = \mathbf{1}[u_t \odot \tilde g_t > 0] \quad \text{(cautious)} \\
    \theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \eta\, u_t \\
    m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, \tilde g_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, interpolation and momentum coefficients.
        weight_decay: decoupled weight decay $\lambda$.
        cautious: mask coordinates where the update opposes the gradient (Liang et al., 2024).
        orthograd: remove the gradient's component along the weights (Prieto et al., 2025).
        stochastic_rounding: round bfloat16 weights stochastically after the step (Zamirai et al., 2020).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.LionAdv(model.parameters(), lr=1e-4, weight_decay=0.1, cautious=True)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023. https://arxiv.org/abs/2302.06675
        Liang et al., "Cautious Optimizers", arXiv 2024. https://arxiv.org/abs/2411.16085
        Prieto et al., "Grokking at the Edge of Numerical Stability", ICLR 2025. https://arxiv.org/abs/2501.04697
        Zamirai et al., "Revisiting BFloat16 Training", arXiv 2020. https://arxiv.org/abs/2010.06192
    """

    state_names = ("exp_avg",)
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0, *,
                 cautious: bool = False, orthograd: bool = False, stochastic_rounding: bool = False,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, cautious=bool(cautious),
                                                 orthograd=bool(orthograd), stochastic_rounding=bool(stochastic_rounding),
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        lion_adv_update(p, grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2,
                        weight_decay=group["weight_decay"], cautious=group["cautious"], orthogonal=group["orthograd"],
                        stochastic_rounding=group["stochastic_rounding"])


register(OptimizerEntry(
    name="LionAdv",
    cls=LionAdv,
    canon_id="lion-adv",
    family="sign-based",
    aliases=("Lion_adv",),
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 3e-3}},
    variants={
        "cautious": {"cautious": True},
        "orthograd": Variant({"orthograd": True}, skips=ORTHOGRAD_SKIPS),
        "stochastic_rounding": {"stochastic_rounding": True},
        "all": Variant({"cautious": True, "orthograd": True, "stochastic_rounding": True}, skips=ORTHOGRAD_SKIPS),
    },
    errors=invalid("lr", "betas", "weight_decay"),
))
