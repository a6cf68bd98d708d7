"""Schedule-Free wrapper: makes any optimizer schedule-free by iterate averaging (Defazio et al., 2024)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative, check_unit
from .._checkpoint import CheckedStateDict, check_wrapper
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register

#: Keys the wrapper keeps in the (shared) group dicts, prefixed so that they never meet a base optimizer's own.
K, LR_MAX, WEIGHT_SUM, TRAIN = "sf_k", "sf_lr_max", "sf_weight_sum", "sf_train_mode"


def swap_(a: torch.Tensor, b: torch.Tensor) -> None:
    """Exchange the values of two tensors of the same shape and dtype, in place."""
    held = a.clone()
    a.copy_(b)
    b.copy_(held)


class ScheduleFreeWrapper(CheckedStateDict, Optimizer):
    r"""Schedule-Free wrapper: any base optimizer steps a sequence $z$; its running average is evaluated, no schedule.

    The base optimizer runs unchanged on the base sequence $z_t$, with gradients taken at
    $y_t$, a point between $z_t$ and the average $\theta_t$ of the $z$'s. The average, weighted
    by powers of the step size, takes the role of a decaying learning-rate schedule.

    $$
    \begin{aligned}
    y_t &= (1-\beta)\, z_t + \beta\, \theta_t \\
    g_t &= \nabla f(y_t, \zeta_t) \\
    z_{t+1} &= \operatorname{BaseStep}\bigl(z_t - \gamma_t \lambda\, y_t,\ g_t\bigr) \\
    w_t &= t^{r} \bigl(\max_{i \le t} \gamma_i d_i\bigr)^{p}, \qquad c_{t+1} = \frac{w_t}{\sum_{i=1}^{t} w_i} \\
    \theta_{t+1} &= (1-c_{t+1})\, \theta_t + c_{t+1}\, z_{t+1}
    \end{aligned}
    $$

    $\gamma_t$ is the group's learning rate and $d_t$ its ``d`` entry where the base optimizer
    keeps one (D-Adaptation, Prodigy), else 1. Weight decay $\lambda$ is taken at $y_t$
    (``weight_decay_at_y``); a base optimizer's own decay acts at $z_t$. The base
    optimizer's momentum may be turned off: $\beta$ plays its role.

    Protocol: the parameters hold $y_t$ while training. Call ``opt.train()`` before training
    steps and ``opt.eval()`` before evaluating or saving the model: ``eval()`` moves the
    parameters to $\theta_t$ and ``train()`` back to $y_t$; ``step`` in eval mode raises. A new
    wrapper starts in train mode. $z$ lives in the wrapper's state, the base optimizer steps
    it in place of the parameters (the values are swapped around its step); the wrapper's
    counters live in the shared group dicts under keys starting with ``sf_``.
    Learning-rate schedulers act on the base optimizer's groups, which the wrapper shares
    (warm-up is useful; a decay is not needed).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the wrapped optimizer's own step and the average, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer`` whose groups have ``lr``).
        momentum: interpolation $\beta$ in [0, 1) between $z$ and $\theta$ where gradients are taken.
        weight_decay_at_y: weight decay $\lambda$ computed at $y_t$ and applied to $z_t$.
        r: exponent of the polynomial weight $t^{r}$ in the average.
        weight_lr_power: power $p$ of the largest step size so far in the averaging weights.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ScheduleFreeWrapper(torch.optim.RMSprop(model.parameters(), lr=2.5e-3), momentum=0.9)
        >>> opt.train()
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()
        >>> opt.eval()

    References:
        Defazio, Yang, Mehta, Mishchenko, Khaled and Cutkosky, "The Road Less Scheduled", NeurIPS 2024.
        https://arxiv.org/abs/2405.15682
    """

    def __init__(self, optimizer: Optimizer, momentum: float = 0.9, weight_decay_at_y: float = 0.0, r: float = 0.0,
                 weight_lr_power: float = 2.0):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        check_unit(momentum, "momentum")
        if momentum == 0:
            raise ValueError("Invalid momentum: 0 (expected a number in (0, 1): theta is recovered by dividing by it)")
        check_nonnegative(weight_decay_at_y, "weight_decay_at_y")
        check_nonnegative(r, "r")
        check_nonnegative(weight_lr_power, "weight_lr_power")
        self.optimizer = optimizer
        self.momentum, self.weight_decay_at_y = momentum, weight_decay_at_y
        self.r, self.weight_lr_power = r, weight_lr_power
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups  # shared, so schedulers reach the base optimizer
        for group in self.param_groups:
            for key, value in ((K, 0), (LR_MAX, 0.0), (WEIGHT_SUM, 0.0), (TRAIN, True)):
                group.setdefault(key, value)

    def __getstate__(self):
        return {**super().__getstate__(), "optimizer": self.optimizer, "momentum": self.momentum,
                "weight_decay_at_y": self.weight_decay_at_y, "r": self.r, "weight_lr_power": self.weight_lr_power}

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the base optimizer on z, then the average and y; returns the closure's loss."""
        if not all(group[TRAIN] for group in self.param_groups):
            raise RuntimeError("ScheduleFreeWrapper.step() was called in eval mode: call opt.train() before training")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        beta = self.momentum
        stepped = []
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "z" not in state:
                    state["z"] = p.detach().clone(memory_format=torch.preserve_format)
                z = state["z"]
                if self.weight_decay_at_y != 0:
                    z.sub_(p, alpha=lr * self.weight_decay_at_y)
                    p.mul_(1 - lr * self.weight_decay_at_y * (1 - beta))
                p.lerp_(z, 1 - 1 / beta)  # y -> theta
                swap_(p, z)  # the base optimizer steps z; the state holds theta meanwhile
                stepped.append(p)
        if not stepped:
            return loss
        self.optimizer.step()
        for group in self.param_groups:
            if not any(p.grad is not None for p in group["params"]):
                continue
            t = group[K] = group[K] + 1
            lr_max = group[LR_MAX] = max(group["lr"] * group.get("d", 1.0), group[LR_MAX])
            weight = t**self.r * lr_max**self.weight_lr_power
            group[WEIGHT_SUM] += weight
            ckp1 = weight / group[WEIGHT_SUM] if group[WEIGHT_SUM] > 0 else 0.0
            for p in group["params"]:
                if p.grad is None:
                    continue
                z = self.state[p]["z"]
                swap_(p, z)  # p: theta, state: the new z
                p.lerp_(z, ckp1).lerp_(z, 1 - beta)  # theta' = (1 - c) theta + c z';  y' = (1 - beta) z' + beta theta'
        return loss

    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters to the average theta, where the model is evaluated (and saved)."""
        self._move_to(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters back to y, where training gradients are taken."""
        self._move_to(train=True)

    def _move_to(self, train: bool) -> None:
        for group in self.param_groups:
            if group[TRAIN] == train:
                continue
            weight = 1 - self.momentum if train else 1 - 1 / self.momentum
            for p in group["params"]:
                z = self.state[p].get("z") if p in self.state else None
                if z is not None:
                    p.lerp_(z, weight)
            group[TRAIN] = train

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        """The z sequence, plus the base optimizer's state under ``"inner"`` and the wrapper's settings."""
        return {**super().state_dict(), "inner": self.optimizer.state_dict(), "momentum": self.momentum,
                "weight_decay_at_y": self.weight_decay_at_y, "r": self.r, "weight_lr_power": self.weight_lr_power}

    def load_state_dict(self, state_dict):
        check_wrapper(self, state_dict, ("inner", "momentum", "weight_decay_at_y", "r", "weight_lr_power"))
        state_dict = dict(state_dict)
        self.optimizer.load_state_dict(state_dict.pop("inner"))
        for key in ("momentum", "weight_decay_at_y", "r", "weight_lr_power"):
            setattr(self, key, state_dict.pop(key))
        super().load_state_dict(state_dict)
        self.param_groups = self.optimizer.param_groups


register(OptimizerEntry(
    name="ScheduleFreeWrapper",
    cls=ScheduleFreeWrapper,
    canon_id="schedule-free-wrapper",
    family="schedule-free",
    aliases=("Schedule-Free wrapper",),
    wraps=True,
    recipe={"base": (torch.optim.SGD, {"lr": 0.05}), "momentum": 0.9},
    recipes={"rosenbrock": {"base": (torch.optim.Adam, {"lr": 0.02}), "momentum": 0.9}},
    variants={"decay_at_y": {"weight_decay_at_y": 0.01}, "r": {"r": 1.0, "weight_lr_power": 1.0}},
    capabilities=Capabilities(sparse=True),  # whatever the base optimizer accepts; the recipe's SGD takes sparse
    errors=(ErrorInput({"momentum": 1.0}, "momentum"), ErrorInput({"momentum": 0.0}, "momentum"),
            ErrorInput({"weight_decay_at_y": -0.1}, "weight_decay_at_y"), ErrorInput({"r": -1.0}, "r"),
            ErrorInput({"weight_lr_power": -1.0}, "weight_lr_power")),
    # parity with schedulefree's ScheduleFreeWrapper: tests/optim/test_schedule_free_wrapper.py (it starts in
    # eval mode and must be given train() first, which the matrix's parity check does not do)
))
