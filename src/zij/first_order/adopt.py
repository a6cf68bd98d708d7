"""ADOPT: Adam that normalizes by the previous second moment, before the momentum (Taniguchi et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_


def adopt_update(
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
    weight_decay: float,
    decouple: bool,
    clip_exponent: float | None,
) -> None:
    """One ADOPT step for one tensor, in place; ``step`` is t = 1, 2, ... (t = 0 only initializes v).

    g_hat = g / max(sqrt(v_{t-1}), eps), clipped to [-t^p, t^p] if p = clip_exponent is given;
    m <- b1 m + (1 - b1) g_hat;  theta <- theta - lr * (m + wd * theta) [decoupled];  v <- b2 v + (1 - b2) g^2.
    """
    normed = grad / exp_avg_sq.sqrt().clamp_(min=eps)
    if clip_exponent is not None:
        bound = step**clip_exponent
        normed.clamp_(-bound, bound)
    ema_(exp_avg, normed, beta1)
    if decouple:
        decoupled_decay_(param, lr, weight_decay)
    param.add_(exp_avg, alpha=-lr)
    ema_sq_(exp_avg_sq, grad, beta2)
class ADOPT(ZijOptimizer):
    r"""ADOPT: normalize each gradient by the previous second moment, then average it.

    Adam can diverge unless $\beta_2$ is tuned to the problem, because the
    current gradient enters its own normalizer and the momentum is averaged
    before normalization. ADOPT divides $g_t$ by $v_{t-1}$, which does not
    contain $g_t$, and normalizes before the momentum average; it converges
    at the optimal rate for any $\beta_2$. The first step only initializes
    $v_0 = g_0^2$ and leaves the parameters unchanged.

    $$
    \begin{aligned}
    v_0 &= g_0^{2}, \qquad m_0 = 0 \\
    \hat g_t &= \operatorname{clip}\Bigl(\frac{g_t}{\max(\sqrt{v_{t-1}},\, \epsilon)},\, c_t\Bigr) \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, \hat g_t \\
    \theta_t &= \theta_{t-1} - \eta\, m_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2}
    \end{aligned}
    $$

    Here $t = 0$ is the first call of :meth:`step`. $\operatorname{clip}(x, c)$
    clips elementwise to $[-c, c]$; by default $c_t = \infty$ (no clipping),
    which is the paper's ADOPT algorithm. With ``clip_exponent=p``,
    $c_t = t^{p}$: the paper describes such clipping for stability in
    practice, and the official code clips by default with $p = 1/4$,
    evaluating the bound at the same $t$ as here ($c_1 = 1$ at the first update).
    Weight decay is not part of the paper's algorithm: by default it is added to
    the gradient as an L2 term ($g_t + \lambda \theta_{t-1}$, also in $v_0$), and
    with ``decouple=True`` it is applied as
    $\theta_t = \theta_{t-1} - \eta(m_t + \lambda \theta_{t-1})$ for $t \ge 1$,
    as in the official code (which does not decay at the initializing call either).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and the second moment.
        eps: $\epsilon$, lower bound on $\sqrt{v_{t-1}}$.
        weight_decay: weight decay $\lambda$ (L2 unless ``decouple``).
        decouple: apply the weight decay to the parameters instead of the gradient.
        clip_exponent: $p$ in the clipping bound $c_t = t^{p}$; ``None`` disables clipping.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ADOPT(model.parameters(), lr=1e-3, clip_exponent=0.25)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Taniguchi, Harada, Minegishi, Oshima, Jeong, Nagahara, Iiyama, Suzuki, Iwasawa and Matsuo,
        "ADOPT: Modified Adam Can Converge with Any $\beta_2$ with the Optimal Rate", NeurIPS 2024.
        https://arxiv.org/abs/2411.02853
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.9999), eps: float = 1e-6, weight_decay: float = 0.0,
                 decouple: bool = False, clip_exponent: float | None = None, *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decouple=bool(decouple),
                                   clip_exponent=clip_exponent, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        if clip_exponent is not None:
            check_positive(clip_exponent, "clip_exponent")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        if group["weight_decay"] != 0 and not group["decouple"]:
            grad = grad.add(p, alpha=group["weight_decay"])
        t = state["step"] - 1  # the first call is t = 0
        if t == 0:
            state["exp_avg_sq"].addcmul_(grad, grad)
            return
        beta1, beta2 = group["betas"]
        adopt_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=t, lr=group["lr"], beta1=beta1,
                     beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"], decouple=group["decouple"],
                     clip_exponent=group["clip_exponent"])


def _reference_clip(step):
    """pytorch-optimizer's clip_lambda receives its call count, which is our t + 1."""
    return (step - 1) ** 0.25


register(OptimizerEntry(
    name="ADOPT",
    cls=ADOPT,
    canon_id="adopt",
    family="adam-family",
    recipe={"lr": 0.02, "betas": (0.9, 0.99)},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "weight_decay", betas=(1.0, 0.9999), eps=-1e-6) + (
        ErrorInput({"clip_exponent": 0.0}, "clip_exponent"),
    ),
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:ADOPT",
               {"lr": 1e-2, "betas": (0.9, 0.9999), "eps": 1e-6},
               {"lr": 1e-2, "betas": (0.9, 0.9999), "eps": 1e-6, "clip_lambda": None}),
        Parity("pytorch-optimizer", "pytorch_optimizer:ADOPT",
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "clip_exponent": 0.25},
               {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.05, "weight_decouple": False,
                "clip_lambda": _reference_clip}),
    ),
))
