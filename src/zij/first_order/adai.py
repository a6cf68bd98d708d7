"""Adai: adaptive inertia, a momentum coefficient per coordinate (Xie et al., 2022)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_sq_, l2_into_grad


def adai_second_moment_(param, grad, exp_avg_sq, *, step: int, lr: float, beta2: float, weight_decay: float,
                        decoupled: bool) -> torch.Tensor:
    """Adai's first pass for one tensor: the weight decay, then v; returns the sum of v_hat (a 0-dim tensor)."""
    if decoupled:
        decoupled_decay_(param, lr, weight_decay)
    else:
        grad = l2_into_grad(grad, param, weight_decay)
    ema_sq_(exp_avg_sq, grad, beta2)
    return exp_avg_sq.sum() / bias_correction(beta2, step)


def adai_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    beta1_prod: torch.Tensor,
    *,
    step: int,
    mean: torch.Tensor,
    lr: float,
    beta0: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
) -> None:
    """Adai's second pass for one tensor (or a TensorList), in place, after every v has been updated.

    beta1 = clip(1 - beta0 * v_hat / mean(v_hat), 0, 1 - eps);  m <- beta1 m + (1 - beta1) g;
    theta <- theta - lr * m / (1 - prod(beta1)).
    """
    if not decoupled:
        grad = l2_into_grad(grad, param, weight_decay)
    beta1 = (exp_avg_sq / bias_correction(beta2, step)).div_(mean).mul_(-beta0).add_(1).clamp_(0.0, 1 - eps)
    beta1_prod.mul_(beta1)
    exp_avg.mul_(beta1).addcmul_((-beta1).add_(1), grad)
    param.addcdiv_(exp_avg, (-beta1_prod).add_(1), value=-lr)


class Adai(ZijOptimizer):
    r"""Adai: momentum whose coefficient adapts per coordinate to the gradient's second moment.

    Adai disentangles the adaptive learning rate from momentum: it keeps SGD's
    step size but gives each coordinate its own inertia $\beta_{1,t}$, smaller
    where the (bias-corrected) second moment is large relative to its mean
    over all parameters. The authors show this escapes sharp minima faster
    than Adam while keeping SGD's preference for flat ones.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \tilde g_t^{2}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}}, \qquad \bar v_t = \operatorname{mean}(\hat v_t) \\
    \beta_{1,t} &= \operatorname{clip}\Bigl(1 - \beta_0\, \frac{\hat v_t}{\bar v_t},\ 0,\ 1-\epsilon\Bigr) \\
    m_t &= \beta_{1,t}\, m_{t-1} + (1-\beta_{1,t})\, \tilde g_t, \qquad \hat m_t = \frac{m_t}{1 - \prod_{s=1}^{t} \beta_{1,s}} \\
    \theta_t &= \theta_{t-1} - \eta\, \hat m_t
    \end{aligned}
    $$

    $\bar v_t$ is the mean over every coordinate of every parameter with a
    gradient, in all groups, so each step makes two passes: all second
    moments first, then the momenta. ``decoupled=True`` replaces the L2 term
    by $\theta \leftarrow (1-\eta\lambda)\theta$ before the moments (AdaiW).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    With bfloat16 or float16 parameters Adai needs float32 state (``state_dtype=torch.float32``):
    in 16 bits $\beta_{1,t} \le 1 - \epsilon$ rounds to 1, the product $\prod \beta_1$ stops
    shrinking, and the bias correction $1 - \prod \beta_1$ divides by zero.

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (SGD's scale: the official examples use 0.1 to 1).
        betas: $(\beta_0, \beta_2)$: scale of the inertia adaptation and decay rate of $v_t$.
        eps: $\epsilon$, keeps every $\beta_{1,t} \le 1 - \epsilon$.
        weight_decay: weight decay $\lambda$ (L2 unless ``decoupled``).
        decoupled: decay the weights directly instead of adding $\lambda\theta$ to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Adai(model.parameters(), lr=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Xie, Wang, Zhang, Sato and Sugiyama, "Adaptive Inertia: Disentangling the Effects of Adaptive
        Learning Rate and Momentum", ICML 2022.
        https://arxiv.org/abs/2006.15815
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.1, 0.99), eps: float = 1e-3, weight_decay: float = 0.0,
                 decoupled: bool = False, *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 decoupled=bool(decoupled), maximize=maximize, foreach=foreach,
                                                 state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["beta1_prod"] = torch.ones_like(state["exp_avg"])

    def global_step(self, gathered):
        total, count = 0.0, 0
        for group, params, grads, states in gathered:
            for p, grad, state in zip(params, grads, states):
                count += p.numel()
                total = total + adai_second_moment_(
                    p, grad, state["exp_avg_sq"], step=state["step"] + 1, lr=group["lr"], beta2=group["betas"][1],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled"])
        self._mean = total / count if count else None

    def update(self, p, grad, state, group):
        beta0, beta2 = group["betas"]
        adai_update(p, grad, state["exp_avg"], state["exp_avg_sq"], state["beta1_prod"], step=state["step"],
                    mean=self._mean, lr=group["lr"], beta0=beta0, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], decoupled=group["decoupled"])


register(OptimizerEntry(
    name="Adai",
    cls=Adai,
    canon_id="adai",
    family="momentum",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 1e-3}},
    errors=invalid("lr", "betas", "eps", "weight_decay"),
    skips={"param_groups": "the inertia divides by the mean second moment over all groups' parameters (as the "
                           "official code does), so groups are not independent optimizers"},
    variants={"decoupled": {"decoupled": True, "weight_decay": 0.01}},
    parity=(
        # pytorch-optimizer clamps the mean of v_hat below at eps, which the official code does not: a tiny eps
        # makes that clamp inactive on this problem (it also bounds beta1, the same way in both).
        Parity("pytorch-optimizer", "pytorch_optimizer:Adai",
               {"lr": 0.1, "betas": (0.1, 0.99), "eps": 1e-10, "weight_decay": 0.01},
               {"lr": 0.1, "betas": (0.1, 0.99), "eps": 1e-10, "weight_decay": 0.01, "weight_decouple": False,
                "stable_weight_decay": False, "dampening": 1.0}),
    ),
))
