"""Lookahead: slow weights that follow any optimizer's fast weights (Zhang et al., 2019)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_int, check_unit
from .._checkpoint import CheckedStateDict, check_wrapper
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Parity, register

COUNTER = "lookahead_step"


def lookahead_sync(fast: torch.Tensor, slow: torch.Tensor, *, alpha: float) -> None:
    """Move the slow weights toward the fast ones and restart the fast weights there.

    phi <- phi + alpha * (theta - phi);  theta <- phi.
    """
    slow.add_(fast - slow, alpha=alpha)
    fast.copy_(slow)


class Lookahead(CheckedStateDict, Optimizer):
    r"""Lookahead: take k steps with an inner optimizer, then pull slow weights toward them.

    The inner optimizer $A$ runs unchanged on fast weights $\tilde\theta$; after
    every $k$ of its steps the slow weights $\theta$ move a fraction $\alpha$
    of the way to the fast weights, and the fast weights restart from there.

    $$
    \begin{aligned}
    \tilde\theta_{t,0} &= \theta_{t-1} \\
    \tilde\theta_{t,i} &= \tilde\theta_{t,i-1} + A\bigl(\tilde\theta_{t,i-1}, d_{t,i}\bigr), \qquad i = 1, \dots, k \\
    \theta_t &= \theta_{t-1} + \alpha\, \bigl(\tilde\theta_{t,k} - \theta_{t-1}\bigr)
    \end{aligned}
    $$

    The slow weights of a parameter start at its value before its first step.
    Learning-rate schedulers act on the inner optimizer's groups, which this
    optimizer shares.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the perturbation or the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the inner optimizer (any ``torch.optim.Optimizer``).
        k: number of inner steps between synchronizations.
        alpha: slow-weight step size $\alpha$ in $[0, 1]$.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Lookahead(torch.optim.AdamW(model.parameters(), lr=1e-3), k=5, alpha=0.5)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhang, Lucas, Hinton and Ba, "Lookahead Optimizer: k steps forward, 1 step back",
        NeurIPS 2019. https://arxiv.org/abs/1907.08610
    """

    def __init__(self, optimizer: Optimizer, k: int = 5, alpha: float = 0.5):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        check_int(k, "k")
        check_unit(alpha, "alpha", closed=True)
        self.optimizer = optimizer
        self.k = k
        self.alpha = alpha
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups  # share the groups, so schedulers reach the inner optimizer

    def __getstate__(self):
        return {**super().__getstate__(), "optimizer": self.optimizer, "k": self.k, "alpha": self.alpha}

    @torch.no_grad()
    def step(self, closure=None):
        """Take one inner step; every ``k`` steps, synchronize slow and fast weights."""
        params = [p for g in self.param_groups for p in g["params"]]
        if closure is None and all(p.grad is None for p in params):
            return self.optimizer.step()  # nothing to do: no state, no counter
        for p in params:
            if "slow" not in self.state[p] and (p.requires_grad or p.grad is not None):
                self.state[p]["slow"] = p.detach().clone()
        loss = self.optimizer.step(closure)
        self.state[COUNTER] = self.state.get(COUNTER, 0) + 1
        if self.state[COUNTER] % self.k == 0:
            for group in self.param_groups:
                for p in group["params"]:
                    if "slow" in self.state[p]:
                        lookahead_sync(p, self.state[p]["slow"], alpha=self.alpha)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        """Slow weights and counter, plus the inner optimizer's state under ``"inner"``."""
        return {**super().state_dict(), "inner": self.optimizer.state_dict(), "k": self.k, "alpha": self.alpha}

    def load_state_dict(self, state_dict):
        check_wrapper(self, state_dict, ("inner", "k", "alpha"))
        state_dict = dict(state_dict)
        self.optimizer.load_state_dict(state_dict.pop("inner"))
        self.k = state_dict.pop("k")
        self.alpha = state_dict.pop("alpha")
        super().load_state_dict(state_dict)
        self.param_groups = self.optimizer.param_groups


register(OptimizerEntry(
    name="Lookahead",
    cls=Lookahead,
    canon_id="lookahead",
    family="wrapper",
    wraps=True,
    recipe={"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "k": 5, "alpha": 0.5},
    recipes={"rosenbrock": {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9})}},
    errors=(ErrorInput({"k": 0}, "k"), ErrorInput({"alpha": 1.5}, "alpha")),
    capabilities=Capabilities(sparse=True),  # whatever the inner optimizer accepts; the recipe's SGD takes sparse
    parity=(
        Parity("pytorch-optimizer", "pytorch_optimizer:Lookahead",
               {"base": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), "k": 5, "alpha": 0.5},
               {"k": 5, "alpha": 0.5}),
    ),
))

