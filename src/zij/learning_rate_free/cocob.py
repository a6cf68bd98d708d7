"""COCOB-Backprop: coin betting on each coordinate in place of a learning rate (Orabona and Tommasi, 2017)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from .._tensorlist import TensorList


def cocob_update(param, grad, x0, max_grad, abs_sum, reward, neg_sum, *, alpha: float, lr: float) -> None:
    """One COCOB-Backprop step for a tensor or a TensorList, in place (w = theta - theta_0 is the current bet).

    L <- max(L, |g|);  G <- G + |g|;  z <- z - g;  R <- max(R - g w, 0);
    w' = lr z (L + R) / (L max(G + L, alpha L));  theta <- theta_0 + w'.
    """
    dtype = (param[0] if isinstance(param, TensorList) else param).dtype
    start = x0.to(dtype)
    bet = param - start
    magnitude = grad.abs()
    if isinstance(max_grad, TensorList):
        torch._foreach_maximum_(max_grad.tensors, magnitude.tensors)
    else:
        torch.maximum(max_grad, magnitude, out=max_grad)
    abs_sum.add_(magnitude)
    neg_sum.sub_(grad)
    reward.sub_(grad * bet).clamp_min_(0.0)
    denominator = abs_sum + max_grad
    if isinstance(denominator, TensorList):
        torch._foreach_maximum_(denominator.tensors, (max_grad * alpha).tensors)
    else:
        torch.maximum(denominator, max_grad * alpha, out=denominator)
    new_bet = (max_grad + reward).mul_(neg_sum).div_(denominator.mul_(max_grad))
    param.copy_(start).add_(new_bet, alpha=lr)


class COCOB(ZijOptimizer):
    r"""COCOB-Backprop: each coordinate bets a fraction of its winnings on the gradient's direction; no learning rate.

    The offset from the initial weights is a bet sized by the wealth (reward) each
    coordinate has won so far, scaled by the largest gradient magnitude seen; a step
    against a bet that lost reduces the reward, which is kept non-negative.

    $$
    \begin{aligned}
    L_t &= \max(L_{t-1}, \lvert g_t\rvert), \qquad G_t = G_{t-1} + \lvert g_t\rvert, \qquad z_t = z_{t-1} - g_t \\
    R_t &= \max\!\left( R_{t-1} - g_t\, w_{t-1},\ 0 \right) \\
    w_t &= \frac{z_t}{L_t \max(G_t + L_t,\ \alpha L_t)}\, (L_t + R_t) \\
    \theta_t &= \theta_0 + w_t
    \end{aligned}
    $$

    All operations act elementwise, with $L_0 = 10^{-8}$. ``lr`` (default 1, the method)
    is zij's multiplier of the bet $w_t$, so that schedulers and parameter groups have a
    learning rate to act on; the bet is read back as $w_{t-1} = \theta_{t-1} - \theta_0$.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: multiplier of the bet (1 is the method).
        alpha: $\alpha$, caps the betting fraction in the first steps.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.COCOB(model.parameters())
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Orabona and Tommasi, "Training Deep Networks without Learning Rates Through Coin Betting", NeurIPS 2017.
        https://arxiv.org/abs/1705.07795
    """

    supports_foreach = True
    supports_compile = True
    per_element = True

    def __init__(self, params, lr: float = 1.0, alpha: float = 100.0, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, alpha=alpha, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_positive(alpha, "alpha")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["x0"] = self.copy_like(p, group)
        state["max_grad"] = self.zeros_like(p, group).fill_(1e-8)
        for name in ("abs_sum", "reward", "neg_sum"):
            state[name] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        cocob_update(p, grad, state["x0"], state["max_grad"], state["abs_sum"], state["reward"], state["neg_sum"],
                     alpha=group["alpha"], lr=group["lr"])


register(OptimizerEntry(
    name="COCOB",
    cls=COCOB,
    canon_id="cocob",
    family="parameter-free",
    aliases=("COCOB-Backprop",),
    recipe={"lr": 1.0},
    errors=invalid("lr") + (ErrorInput({"alpha": 0.0}, "alpha"),),
))
