"""SGD-SaI: SGD with momentum and per-tensor learning rates set once from the first gradient (Xu et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, hyperparameters
from .._registry import OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_, ema_, per_tensor


def gradient_snr(grad: torch.Tensor, eps: float) -> torch.Tensor:
    """s = ||g||_2 / (std(g) + eps) of one tensor (0-dim); the std of a single entry, undefined, counts as 0."""
    sigma = grad.std().nan_to_num() if grad.numel() > 1 else grad.new_zeros(())
    return torch.linalg.vector_norm(grad) / (sigma + eps)


def sgd_sai_update(param, grad, momentum_buffer, gsnr, *, step: int, lr: float, momentum: float, eps: float,
                   weight_decay: float) -> None:
    """One SGD-SaI step for a tensor or a TensorList, in place (``gsnr`` holds each tensor's 0-dim ratio).

    Step 1: s = ||g_1|| / (std(g_1) + eps) (kept from then on) and m = g_1.  Later: m <- mu m + (1 - mu) g.
    theta <- (1 - lr wd) theta - lr s m.
    """
    if step == 1:
        gsnr.copy_(per_tensor(lambda g: gradient_snr(g, eps), grad))
        momentum_buffer.copy_(grad)
    else:
        ema_(momentum_buffer, grad, momentum)
    decoupled_decay_(param, lr, weight_decay).add_(per_tensor(torch.mul, momentum_buffer, gsnr), alpha=-lr)


class SGDSaI(ZijOptimizer):
    r"""SGD-SaI (SGD with learning-rate Scaling at Initialization): momentum SGD with a fixed step scale per tensor.

    At a tensor's first step its gradient's signal-to-noise ratio $s_b$ (norm over the
    standard deviation of its entries) is computed once and then multiplies that
    tensor's learning rate for the rest of training. This evens out, at the start, the
    imbalance between blocks that Adam's second moment corrects step by step, so no
    second moment is stored: the state is the momentum and one number per tensor.
    Weight decay is decoupled.

    $$
    \begin{aligned}
    s_b &= \frac{\lVert g^{(b)}_1\rVert_2}{\operatorname{std}(g^{(b)}_1) + \epsilon} \qquad \text{(computed once, at the first step)} \\
    m^{(b)}_t &= \begin{cases} g^{(b)}_1 & t = 1 \\ \mu\, m^{(b)}_{t-1} + (1-\mu)\, g^{(b)}_t & t > 1 \end{cases} \\
    \theta^{(b)}_t &= (1 - \eta\lambda)\, \theta^{(b)}_{t-1} - \eta\, s_b\, m^{(b)}_t
    \end{aligned}
    $$

    As in the official code, $\operatorname{std}$ is the unbiased standard deviation over all
    entries of the tensor, and a tensor with a single entry (whose spread is undefined,
    taken as 0) gets $s_b = \lvert g_1\rvert / \epsilon$, a very large scale: give scalar
    parameters their own group with a learning rate to match, or keep them out. The ratio
    is computed at each parameter's own first step (the official code computes it for all
    parameters at the optimizer's first step).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$, scaled per tensor by $s_b$.
        momentum: momentum coefficient $\mu$ in [0, 1).
        weight_decay: decoupled weight decay $\lambda$.
        eps: $\epsilon$, added to the standard deviation.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.SGDSaI(model.parameters(), lr=1e-3, weight_decay=0.01)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Xu, Xiang, Cai and Wen, "No More Adam: Learning Rate Scaling at Initialization is All You Need",
        arXiv 2024. https://arxiv.org/abs/2412.11768
    """

    state_names = ("momentum_buffer",)
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-2, momentum: float = 0.9, weight_decay: float = 1e-2, eps: float = 1e-8,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        super().__init__(params, hyperparameters(lr=lr, momentum=momentum, weight_decay=weight_decay, eps=eps,
                                                 maximize=maximize, foreach=foreach, state_dtype=state_dtype))

    def init_state(self, p, state, group):
        super().init_state(p, state, group)
        state["gsnr"] = torch.zeros((), dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        sgd_sai_update(p, grad, state["momentum_buffer"], state["gsnr"], step=state["step"], lr=group["lr"],
                       momentum=group["momentum"], eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="SGDSaI",
    cls=SGDSaI,
    canon_id="sgd-sai",
    family="sgd-family",
    aliases=("SGD_sai",),
    recipe={"lr": 0.01},
    recipes={"rosenbrock": {"lr": 5e-4}},
    errors=invalid("lr", "momentum", "eps", "weight_decay"),
    parity=(
        # The authors' package. pytorch-optimizer's SGDSaI starts its momentum at zero and skips the division by
        # the std for vectors and single-row matrices; test_sgd_sai.py compares with it where they agree.
        Parity("sgd-sai", "sgd_sai:SGD_sai", {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.1, "eps": 1e-8},
               {"lr": 1e-3, "momentum": 0.9, "weight_decay": 0.1, "eps": 1e-8}),
    ),
))
