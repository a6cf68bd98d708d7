"""AdaShift: a second moment built from gradients several steps old (Zhou et al., 2019)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import bias_correction, ema_, per_tensor

#: The spatial functions phi AdaShift may apply to the squared old gradient.
REDUCTIONS = ("max", "mean", "none")


def _reduce(x: torch.Tensor, how: str) -> torch.Tensor:
    if how == "max":
        return x.amax()
    if how == "mean":
        return x.mean()
    return x


def adashift_update(param, grad, exp_avg, exp_avg_sq, oldest, *, step: int, keep_num: int, lr: float, beta1: float,
                    beta2: float, eps: float, reduction: str) -> None:
    """One AdaShift step for a tensor or a TensorList, in place.

    ``oldest`` is the queue slot that holds g_{t-n} (n = keep_num) and receives g_t.
    m <- beta1 (m - beta1^(n-1)/W g_{t-n}) + g_t / W with W = sum_i beta1^i  (the n newest gradients, weighted);
    once t > n: v <- beta2 v + (1 - beta2) phi(g_{t-n}^2);  theta <- theta - lr m / (sqrt(v / (1 - beta2^(t-n))) + eps).
    """
    total = sum(beta1**i for i in range(keep_num))
    if step > keep_num:
        ema_(exp_avg_sq, per_tensor(lambda old: _reduce(old.square(), reduction), oldest), beta2)
        exp_avg.sub_(oldest, alpha=beta1 ** (keep_num - 1) / total)
    exp_avg.mul_(beta1).add_(grad, alpha=1.0 / total)
    oldest.copy_(grad)
    if step > keep_num:
        denom = (exp_avg_sq / bias_correction(beta2, step - keep_num)).sqrt_().add_(eps)
        param.add_(exp_avg / denom, alpha=-lr)


class AdaShift(ZijOptimizer):
    r"""AdaShift: Adam whose second moment sees only gradients at least n steps old.

    Adam's step can point the wrong way on average because the current gradient
    also scales itself through $v_t$. AdaShift decorrelates them: the first
    moment is a weighted average of the $n$ newest gradients, and the second
    moment is a moving average of the squared gradient from $n$ steps back,
    passed through a spatial function $\phi$ (by default the maximum over the
    tensor, so $v_t$ is one number per tensor). The parameters stay still for
    the first $n$ steps, while the queue of gradients fills.

    $$
    \begin{aligned}
    m_t &= \frac{\sum_{i=0}^{n-1} \beta_1^{i}\, g_{t-i}}{\sum_{i=0}^{n-1} \beta_1^{i}} \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, \phi\bigl(g_{t-n}^{2}\bigr) \quad (t > n), \qquad v_t = 0 \quad (t \le n) \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{v_t / (1-\beta_2^{t-n})} + \epsilon} \quad (t > n), \qquad \theta_t = \theta_{t-1} \quad (t \le n)
    \end{aligned}
    $$

    The last $n$ gradients are kept per tensor ($n$ times the parameter's memory).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$: the weighting of recent gradients in $m_t$ and the decay of $v_t$.
        keep_num: $n$, the number of recent gradients kept out of $v_t$ (and averaged in $m_t$).
        eps: $\epsilon$, added to the denominator.
        reduction: the spatial function $\phi$: ``"max"`` (over the tensor), ``"mean"`` (over the tensor)
            or ``"none"`` (elementwise, as Adam).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdaShift(model.parameters(), lr=1e-3, keep_num=10)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhou et al., "AdaShift: Decorrelation and Convergence of Adaptive Learning Rate Methods", ICLR 2019.
        https://arxiv.org/abs/1810.00143
    """

    state_names = ("exp_avg",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), keep_num: int = 10, eps: float = 1e-10,
                 reduction: str = "max", *, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, keep_num=keep_num, eps=eps, reduction=reduction,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_int(keep_num, "keep_num")
        if reduction not in REDUCTIONS:
            raise ValueError(f"Invalid reduction: {reduction!r} (expected one of {', '.join(REDUCTIONS)})")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        dtype = group.get("state_dtype") or p.dtype
        full = group["reduction"] == "none"
        state["exp_avg_sq"] = self.zeros_like(p, group) if full else torch.zeros((), dtype=dtype, device=p.device)
        state["grad_queue"] = torch.zeros((group["keep_num"], *p.shape), dtype=dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        step, n = state["step"], group["keep_num"]
        slot = (step - 1) % n  # holds g_{t-n} once the queue is full
        queue = state["grad_queue"]
        oldest = queue.map(lambda q: q[slot]) if not isinstance(queue, torch.Tensor) else queue[slot]
        adashift_update(p, grad, state["exp_avg"], state["exp_avg_sq"], oldest, step=step, keep_num=n,
                        lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"], reduction=group["reduction"])


register(OptimizerEntry(
    name="AdaShift",
    cls=AdaShift,
    canon_id="adashift",
    family="adam-family",
    recipe={"lr": 0.05, "keep_num": 2},
    recipes={"rosenbrock": {"lr": 0.01, "reduction": "none", "betas": (0.9, 0.99)}},
    variants={"mean": {"reduction": "mean"}, "none": {"reduction": "none"}},
    errors=invalid("lr", "eps", betas=(0.9, 1.0)) + (
        ErrorInput({"keep_num": 0}, "keep_num"),
        ErrorInput({"reduction": "min"}, "reduction"),
    ),
    parity=(
        # pytorch-optimizer keeps its queue and step per group; with every parameter stepped each time
        # that is the same count. Its reduce_func=torch.max is our reduction="max".
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaShift",
               {"lr": 1e-2, "betas": (0.9, 0.999), "keep_num": 5, "eps": 1e-10},
               {"lr": 1e-2, "betas": (0.9, 0.999), "keep_num": 5, "eps": 1e-10}),
        Parity("pytorch-optimizer", "pytorch_optimizer:AdaShift",
               {"lr": 1e-2, "betas": (0.8, 0.99), "keep_num": 3, "eps": 1e-8, "reduction": "none"},
               {"lr": 1e-2, "betas": (0.8, 0.99), "keep_num": 3, "eps": 1e-8, "reduce_func": None}),
    ),
))
