"""SWATS: switch from Adam to SGD once SGD's learning rate can be read off (Keskar and Socher, 2017)."""

from __future__ import annotations

import math

import torch

from .._base import StateView, ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, invalid, register
from .._tensorlist import TensorList
from ..blocks import ema_, ema_sq_, l2_into_grad, per_tensor


def swats_adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    *,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> torch.Tensor:
    """One Adam-phase step for one tensor (or a TensorList of them), in place; returns the step p taken.

    m <- beta1 m + (1 - beta1) g;  a <- beta2 a + (1 - beta2) g^2;
    p = -lr sqrt(1 - beta2^t) / (1 - beta1^t) * m / (sqrt(a) + eps);  theta <- theta + p.
    """
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    step_size = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    adam_step = exp_avg.div(exp_avg_sq.sqrt().add_(eps)).mul_(-step_size)
    param.add_(adam_step)
    return adam_step


def swats_projected_lr(adam_step: torch.Tensor, grad: torch.Tensor) -> float | None:
    """gamma = p.p / (-p.g): the SGD step size whose step, projected on p, equals p (None if p.g = 0)."""
    p, g = adam_step.reshape(-1).to(grad.dtype), grad.reshape(-1)
    pg = torch.dot(p, g).item()
    if pg == 0:
        return None
    return torch.dot(p, p).item() / -pg


def swats_sgd_update(param: torch.Tensor, grad: torch.Tensor, momentum_buffer: torch.Tensor, *, sgd_lr: float,
                     beta1: float) -> None:
    """One SGD-phase step for one tensor (or a TensorList of them, ``sgd_lr`` then listing each one's Lambda),
    in place: v <- beta1 v + g;  theta <- theta - (1 - beta1) Lambda v."""
    momentum_buffer.mul_(beta1).add_(grad)
    per_tensor(lambda p, v, rate: p.add_(v, alpha=-(1 - beta1) * rate), param, momentum_buffer, sgd_lr)


def _each(state, name: str):
    """A per-tensor Python entry: the value of one state, or the list of them under a StateView."""
    return [s[name] for s in state.states] if isinstance(state, StateView) else state[name]


class SWATS(ZijOptimizer):
    r"""SWATS: start with Adam and switch to momentum SGD with a learning rate estimated from Adam's steps.

    In the Adam phase every step $p_t$ is projected on the gradient to get the
    SGD step size $\gamma_t$ that would give the same step along $p_t$; an
    exponential average of $\gamma_t$ is kept, and once its bias-corrected
    value agrees with $\gamma_t$ to within $\epsilon$ the tensor switches,
    for good, to momentum SGD with that learning rate $\Lambda$. This follows
    the paper's Algorithm 1 with the switch decided per parameter tensor (one
    "layer"), and additionally requires $\Lambda > 0$. The learning rate
    $\eta$ (and so a scheduler) acts on the Adam phase only. An optional L2
    term is added to the gradient in both phases.

    $$
    \begin{aligned}
    \tilde g_t &= g_t + \lambda\, \theta_{t-1} \\
    &\text{Adam phase:} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \tilde g_t, \qquad a_t = \beta_2 a_{t-1} + (1-\beta_2)\, \tilde g_t^{2} \\
    p_t &= -\eta\, \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\, \frac{m_t}{\sqrt{a_t} + \epsilon}, \qquad \theta_t = \theta_{t-1} + p_t \\
    \text{if } p_t^{\top} \tilde g_t \neq 0:\quad \gamma_t &= \frac{p_t^{\top} p_t}{-\,p_t^{\top} \tilde g_t}, \qquad \ell_t = \beta_2\, \ell_{t-1} + (1-\beta_2)\, \gamma_t \\
    &\text{switch if } t > 1,\ \Bigl\lvert \frac{\ell_t}{1-\beta_2^{t}} - \gamma_t \Bigr\rvert < \epsilon \text{ and } \frac{\ell_t}{1-\beta_2^{t}} > 0, \text{ fixing } \Lambda = \frac{\ell_t}{1-\beta_2^{t}},\ u = 0 \\
    &\text{SGD phase:} \\
    u_t &= \beta_1 u_{t-1} + \tilde g_t, \qquad \theta_t = \theta_{t-1} - (1-\beta_1)\, \Lambda\, u_t
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; each tensor switches on its own.
        lr: learning rate $\eta$ of the Adam phase.
        betas: $(\beta_1, \beta_2)$: Adam's decay rates; $\beta_1$ is also the SGD momentum and
            $\beta_2$ the decay of the learning-rate estimate.
        eps: $\epsilon$, Adam's stability term and the tolerance of the switching test (as in the paper).
        weight_decay: L2 penalty $\lambda$ added to the gradient.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SWATS(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Keskar and Socher, "Improving Generalization Performance by Switching from Adam to SGD",
        arXiv 2017. https://arxiv.org/abs/1712.07628
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-9, weight_decay: float = 0.0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["phase"] = "adam"
        state["sgd_lr_avg"] = 0.0  # the average l_t of the estimates gamma_t
        state["sgd_lr"] = 0.0  # Lambda, set at the switch

    def group_step(self, group, params, grads, states):
        """The loop, or with foreach one update per bucket of tensors in the same phase at the same step."""
        if not self.use_foreach(group, params):
            return super().group_step(group, params, grads, states)
        for state in states:
            state["step"] += 1
        for index in self._buckets(params, states):
            phases: dict[str, list[int]] = {}  # split before updating: a tensor that switches waits for the next step
            for i in index:
                phases.setdefault(states[i]["phase"], []).append(i)
            for chosen in phases.values():
                self.update(TensorList([params[i] for i in chosen]), TensorList([grads[i] for i in chosen]),
                            StateView([states[i] for i in chosen]), group)

    def update(self, p, grad, state, group):
        """One tensor and its state, or a TensorList of tensors in one phase and their :class:`StateView`."""
        beta1, beta2 = group["betas"]
        grad = l2_into_grad(grad, p, group["weight_decay"])
        if state["phase"] == "sgd":
            swats_sgd_update(p, grad, state["momentum_buffer"], sgd_lr=_each(state, "sgd_lr"), beta1=beta1)
            return
        step = state["step"]
        adam_step = swats_adam_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=step, lr=group["lr"],
                                      beta1=beta1, beta2=beta2, eps=group["eps"])
        gammas = per_tensor(swats_projected_lr, adam_step, grad)
        if not isinstance(p, TensorList):
            p, state, gammas = [p], StateView([state]), [gammas]
        for param, each, gamma in zip(p, state.states, gammas):
            if gamma is None:
                continue
            each["sgd_lr_avg"] = beta2 * each["sgd_lr_avg"] + (1 - beta2) * gamma
            estimate = each["sgd_lr_avg"] / (1 - beta2**step)
            if step > 1 and estimate > 0 and abs(estimate - gamma) < group["eps"]:
                each["phase"] = "sgd"
                each["sgd_lr"] = estimate
                each["momentum_buffer"] = self.zeros_like(param, group)


register(OptimizerEntry(
    name="SWATS",
    cls=SWATS,
    canon_id="swats",
    family="adam-family",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "betas", "weight_decay", eps=-1e-9),
    # No parity: pytorch-optimizer's SWATS adds 1e-15 under the square root (sqrt(a + 1e-15) + eps), which
    # moves coordinates with small second moments by more than 1e-6, switches a whole group at once and
    # tests the switch with a relative tolerance. tests/optim/test_swats.py checks identities and golden values.
))
