"""Adalite: Adafactor-style column statistics with LAMB-style norm scaling (euclaise, SlimTrainer, 2023)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_nonnegative, check_unit, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register
from .._tensorlist import TensorList
from ..blocks import per_tensor


def _centred(grad: torch.Tensor) -> torch.Tensor:
    """The gradient minus its mean over all but the first axis; a vector minus its overall mean (torch reads an
    empty ``dim`` as all axes, and the reference implementation centres vectors so); as is for one entry."""
    if sum(grad.shape) > 1:
        return grad - grad.mean(dim=tuple(range(1, grad.ndim)), keepdim=True)
    return grad


def _rsqrt_(x):
    """1 / sqrt(x) in place, on a tensor or a TensorList."""
    if isinstance(x, TensorList):
        torch._foreach_rsqrt_(x.tensors)
        return x
    return x.rsqrt_()


def _rms_floor(direction: torch.Tensor) -> float:
    """max(1, RMS(d)): the divisor of the RMS clip."""
    return max(1.0, direction.square().mean().sqrt().item())


def _norm_scaled_(direction: torch.Tensor, param: torch.Tensor, grad: torch.Tensor, Lambda: float) -> torch.Tensor:
    """d <- |theta| / |g~| d + Lambda (theta - theta / |theta|) in place, where both norms are nonzero."""
    param_norm, grad_norm = param.norm(), grad.norm()
    if param_norm != 0 and grad_norm != 0:
        direction.mul_(param_norm / grad_norm).add_(param - param / param_norm, alpha=Lambda)
    return direction


def adalite_update(param, grad, state, *, step: int, lr: float, eps: float, Lambda: float, beta_decay: float,
                   centralize: bool, use_rms: bool, momentum: bool, momentum_beta: float) -> None:
    """One Adalite step for one tensor, or a TensorList of matrices or of non-matrices, in place (state: ``col`` for
    a matrix, ``v`` otherwise, ``m`` with momentum; a :class:`~zij._base.StateView` for a TensorList).

    g~ = g minus its mean over all but the first axis;  b = 1 - t^-c;  u = (1 - b) g~^2 + b (c broadcast, or v) + eps;
    c <- column means of u (v <- u);  d = g~ / sqrt(u), divided by max(1, RMS(d));
    D = |theta| / |g~| d + Lambda (theta - theta / |theta|) when both norms are nonzero, else d;
    with momentum D <- m = beta_m m + (1 - beta_m) D;  theta <- theta - lr D.
    """
    if centralize:
        grad = per_tensor(_centred, grad)
    beta = 1.0 - math.pow(step, -beta_decay)
    second = grad.square().mul_(1 - beta)
    if "col" in state:
        second.add_(per_tensor(lambda col: col.unsqueeze(0), state["col"]), alpha=beta).add_(eps)
        state["col"].copy_(per_tensor(lambda u: u.mean(dim=0), second))
    else:
        second.add_(state["v"], alpha=beta).add_(eps)
        state["v"].copy_(second)
    direction = _rsqrt_(second).mul_(grad)
    if use_rms:
        direction.div_(per_tensor(_rms_floor, direction))
    per_tensor(lambda d, p, g: _norm_scaled_(d, p, g, Lambda), direction, param, grad)
    if momentum:
        direction = state["m"].mul_(momentum_beta).add_(direction, alpha=1 - momentum_beta)
    param.add_(direction, alpha=-lr)


class Adalite(ZijOptimizer):
    r"""Adalite: a factored second moment and a step scaled to the weight norm, for memory-light fine-tuning.

    A weight matrix keeps one running vector: the column means of its second-moment
    estimate. Each step centres the gradient (subtracting the mean of each row), mixes
    its square with the stored statistic under a decay that grows toward 1, normalizes
    the gradient by the root, clips the result by its RMS, rescales it to the ratio of
    weight norm to gradient norm (as LAMB does), and adds a pull of the weights toward
    unit norm of strength $\Lambda$ in place of weight decay. Tensors that are not
    matrices keep a full second moment $v_t$ in place of $c_t$.

    $$
    \begin{aligned}
    \tilde g_t &= g_t - \operatorname{mean}_{\mathrm{row}}(g_t) \\
    \hat\beta_t &= 1 - t^{-c} \\
    u_t &= (1-\hat\beta_t)\, \tilde g_t^{2} + \hat\beta_t\, 1_m\, c_{t-1} + \epsilon \\
    c_t &= \tfrac{1}{m}\, 1_m^{\top} u_t \\
    d_t &= \frac{\tilde g_t}{\sqrt{u_t}}, \qquad \hat d_t = \frac{d_t}{\max\big(1, \operatorname{RMS}(d_t)\big)} \\
    \Delta_t &= \frac{\lVert \theta_{t-1} \rVert}{\lVert \tilde g_t \rVert}\, \hat d_t + \Lambda \Big( \theta_{t-1} - \frac{\theta_{t-1}}{\lVert \theta_{t-1} \rVert} \Big) \\
    \theta_t &= \theta_{t-1} - \eta_t\, \Delta_t
    \end{aligned}
    $$

    Squares, roots and divisions are elementwise; norms are Frobenius norms. The norm
    rescaling and the $\Lambda$ term are skipped when either norm is zero; centring is
    skipped for tensors with one entry. With ``momentum`` the step uses a moving average
    of $\Delta_t$. The official code runs inside the backward pass, updating each
    parameter as soon as its gradient is ready (as LOMO does); this class computes the
    same update in an ordinary ``step()`` after the backward pass, so it keeps the
    gradients in memory as any optimizer does.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta_t$.
        eps: $\epsilon$, added to the second moment.
        Lambda: $\Lambda$, strength of the pull toward unit weight norm (in place of weight decay).
        beta_decay: $c$, exponent of the growing decay $\hat\beta_t = 1 - t^{-c}$.
        centralize: subtract from the gradient its mean over all but the first axis (a vector's overall mean).
        use_rms: divide the normalized gradient by its RMS when that exceeds 1.
        momentum: average the step with a momentum of coefficient ``momentum_beta``.
        momentum_beta: coefficient of that momentum.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Adalite(model.parameters(), lr=1e-3)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        euclaise, "Adalite: a custom optimizer based on Adafactor and LAMB", SlimTrainer, 2023.
        https://github.com/euclaise/SlimTrainer
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, eps: float = 1e-5, Lambda: float = 0.01, beta_decay: float = 0.8,
                 centralize: bool = True, use_rms: bool = True, momentum: bool = False, momentum_beta: float = 0.9, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, eps=eps, Lambda=Lambda, beta_decay=beta_decay, centralize=bool(centralize),
                                   use_rms=bool(use_rms), momentum_beta=momentum_beta, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype)
        defaults["momentum"] = bool(momentum)  # a flag here, not the coefficient hyperparameters() checks
        check_nonnegative(Lambda, "Lambda")
        check_nonnegative(beta_decay, "beta_decay")
        check_unit(momentum_beta, "momentum_beta")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        if p.ndim == 2:
            state["col"] = p.new_zeros(p.shape[1], dtype=group.get("state_dtype") or p.dtype)
        else:
            state["v"] = self.zeros_like(p, group)
        if group["momentum"]:
            state["m"] = self.zeros_like(p, group)

    def bucket_key(self, p, state):
        """Matrices apart from other tensors: their states differ (``col``, ``v``)."""
        return "col" in state

    def update(self, p, grad, state, group):
        adalite_update(p, grad, state, step=state["step"], lr=group["lr"], eps=group["eps"], Lambda=group["Lambda"],
                       beta_decay=group["beta_decay"], centralize=group["centralize"], use_rms=group["use_rms"],
                       momentum=group["momentum"], momentum_beta=group["momentum_beta"])


register(OptimizerEntry(
    name="Adalite",
    cls=Adalite,
    canon_id="adalite",
    family="factored",
    recipe={"lr": 0.01},
    # The pull toward unit weight norm and the row centring keep a minimum at zero out of reach (the quadratic's, and
    # Rosenbrock's row mean); without them the rule converges there.
    recipes={"quadratic": {"lr": 0.1, "centralize": False, "Lambda": 0.0},
             "rosenbrock": {"lr": 0.1, "centralize": False, "Lambda": 0.0}},
    capabilities=Capabilities(elementwise=False),
    variants={"momentum": {"momentum": True}, "plain": {"centralize": False, "use_rms": False, "Lambda": 0.0}},
    errors=(
        ErrorInput({"lr": -1.0}, "lr"),
        ErrorInput({"eps": -1e-5}, "eps"),
        ErrorInput({"Lambda": -0.1}, "Lambda"),
        ErrorInput({"beta_decay": -0.5}, "beta_decay"),
        ErrorInput({"momentum_beta": 1.0}, "momentum_beta"),
    ),
    # No parity: pytorch-optimizer's Adalite is a different algorithm (factored first and second moments with
    # softmax importance weights); tests/optim/test_adalite.py checks hand-computed steps of the official rule.
))
