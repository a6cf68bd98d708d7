"""MSAM (Momentum-SAM): gradients taken at a point shifted along the negative normalized momentum (Becker et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, register
from .._sharded import gather, is_dtensor, keep_shard_
from .._tensorlist import TensorList

#: Added to the momentum norm, as in the official code.
NORM_EPS = 1e-12


def msam_descend_(p, grad, buf, *, lr: float, momentum: float, weight_decay: float, shift: float) -> None:
    """Undo the previous shift and take SGD's momentum step (a tensor or a TensorList, in place).

    d = g + wd p~ (at the shifted point p~);  p = p~ + shift b;  b <- mu b + d;  p <- p - lr b.
    """
    d = grad.add(p, alpha=weight_decay) if weight_decay != 0 else grad
    p.add_(buf, alpha=shift)
    buf.mul_(momentum).add_(d)
    p.add_(buf, alpha=-lr)


class MSAM(ZijOptimizer):
    r"""MSAM (Momentum-SAM): SGD with momentum whose gradients are taken a step against the momentum.

    SAM's ascent direction is replaced by the negative momentum: the gradient
    is taken at $\tilde\theta_t$, the weights moved by $\rho$ against the
    normalized momentum buffer, so a step costs one gradient, like plain SGD.
    The norm is over all parameters of a group together. With $\rho = 0$ it
    is SGD with momentum and L2 weight decay (``torch.optim.SGD``).

    $$
    \begin{aligned}
    \tilde\theta_t &= \theta_t - \rho\, \frac{m_{t-1}}{\lVert m_{t-1} \rVert_2 + \epsilon} \\
    d_t &= \nabla L_{\mathcal{B}}(\tilde\theta_t) + \lambda\, \tilde\theta_t \\
    m_t &= \mu\, m_{t-1} + d_t \\
    \theta_{t+1} &= \theta_t - \eta\, m_t
    \end{aligned}
    $$

    $m_0 = 0$, so the first gradient is taken at $\theta_1$ itself; $\epsilon = 10^{-12}$.
    Protocol: as in the official code, the parameters hold the shifted point
    $\tilde\theta_t$ between steps (the next gradient is taken there). Call
    ``opt.eval()`` before evaluating or saving the model: it moves the
    parameters to the unshifted $\theta_t$; ``opt.train()`` moves them back
    (the official code's ``move_back_from_momentumAscent`` and
    ``move_up_to_momentumAscent``); ``step`` in eval mode raises. The official
    code accepts one parameter group; here each group's momentum is normalized
    by its own norm.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the momentum, and through its norm into every parameter of the group), as in torch.optim.

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        momentum: momentum coefficient $\mu$ in $[0, 1)$.
        weight_decay: L2 weight decay $\lambda$, added to the gradient at the shifted point.
        rho: shift radius $\rho$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.MSAM(model.parameters(), lr=0.1, momentum=0.9, rho=0.3)
        >>> opt.train()
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()

    References:
        Becker, Altrock and Risse, "Momentum-SAM: Sharpness Aware Minimization without Computational
        Overhead", arXiv 2024. https://arxiv.org/abs/2401.12033
    """

    state_names = ("momentum_buffer",)
    supports_foreach = True

    def __init__(self, params, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 0.01, rho: float = 0.3,
                 *, maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        check_nonnegative(rho, "rho")
        defaults = hyperparameters(n_betas=None, lr=lr, momentum=momentum, weight_decay=weight_decay, rho=rho,
                                   maximize=maximize, foreach=foreach, state_dtype=state_dtype, inverse_norm=0.0,
                                   train_mode=True)
        super().__init__(params, defaults)

    def group_step(self, group, params, grads, states):
        if not group["train_mode"]:
            raise RuntimeError("MSAM.step() was called in eval mode: call opt.train() before training")
        for state in states:
            state["step"] += 1
        buffers = [state["momentum_buffer"] for state in states]
        options = dict(lr=group["lr"], momentum=group["momentum"], weight_decay=group["weight_decay"],
                       shift=group["rho"] * group["inverse_norm"])
        if self.use_foreach(group, params):
            msam_descend_(TensorList(params), TensorList(grads), TensorList(buffers), **options)
        else:
            for p, grad, buf in zip(params, grads, buffers):
                msam_descend_(p, grad, buf, **options)
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(b).double() for b in buffers]))
        group["inverse_norm"] = 1.0 / (norm.item() + NORM_EPS)
        shift = group["rho"] * group["inverse_norm"]
        for p, buf in zip(params, buffers):
            p.sub_(buf, alpha=shift)

    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters to the unshifted weights theta, where the model is evaluated."""
        self._switch(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters back to the shifted point, where training gradients are taken."""
        self._switch(train=True)

    def _switch(self, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            shift = group["rho"] * group["inverse_norm"] * (-1.0 if train else 1.0)
            for p in group["params"]:
                buf = self.state[p].get("momentum_buffer") if p in self.state else None
                if buf is None:
                    continue
                if is_dtensor(p):  # FSDP2: the state is whole-sized (see _sharded)
                    keep_shard_(p, gather(p).add_(buf, alpha=shift))
                else:
                    p.add_(buf, alpha=shift)
            group["train_mode"] = train


register(OptimizerEntry(
    name="MSAM", cls=MSAM, canon_id="msam", family="sharpness-aware",
    aliases=("Momentum-SAM",),
    recipe={"lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "rho": 0.01},
    recipes={"rosenbrock": {"lr": 5e-4, "momentum": 0.9, "weight_decay": 0.0, "rho": 0.005}},
    errors=(ErrorInput({"lr": -0.1}, "lr"), ErrorInput({"momentum": 1.0}, "momentum"),
            ErrorInput({"weight_decay": -1.0}, "weight_decay"), ErrorInput({"rho": -0.1}, "rho")),
))
