"""The schedulers: each a closed form of the step count t (``last_epoch``) and a group's initial rate."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


def _check_int(value, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"Invalid {name}: {value!r} (expected an integer >= {minimum})")


def _check_nonnegative(value, name: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid {name}: {value!r} (expected a finite number >= 0)")


class _ClosedForm(LRScheduler):
    """A scheduler whose rate is ``self.rate(t, eta)`` for each group's initial rate ``eta``."""

    def rate(self, t: int, eta: float) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        return [self.rate(self.last_epoch, eta) for eta in self.base_lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return self.get_lr()


def _warmup(t: int, warmup_steps: int) -> float:
    return t / warmup_steps


class WarmupCosine(_ClosedForm):
    r"""Linear warm-up from zero, then a cosine decay to ``eta_min`` at ``total_steps``.

    $$
    \eta_t = \begin{cases}
    \eta\, \dfrac{t}{W} & t < W \\
    \eta_{\min} + \tfrac{1}{2}\left(\eta - \eta_{\min}\right)\left(1 + \cos\left(\pi\, \dfrac{t - W}{T - W}\right)\right) & W \le t \le T \\
    \eta_{\min} & t > T
    \end{cases}
    $$

    $t$ is the scheduler's step count (``last_epoch``, 0 at construction), $\eta$ each
    group's initial learning rate. The warm-up is a linear ramp from zero (Canon record
    linear-lr, with a start factor of zero) and the cosine part is torch's
    ``CosineAnnealingLR`` (Canon record cosine-annealing-lr) started after it.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        warmup_steps: $W$, steps of linear warm-up (0: none).
        total_steps: $T$, the step at which the rate reaches ``eta_min``; more than ``warmup_steps``.
        eta_min: $\eta_{\min}$, the final rate (absolute, the same for every group).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = zij.schedulers.WarmupCosine(opt, warmup_steps=10, total_steps=100)
        >>> opt.step(); sched.step()

    References:
        Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017
        (the cosine). https://arxiv.org/abs/1608.03983 ; Goyal et al., "Accurate, Large Minibatch SGD:
        Training ImageNet in 1 Hour", 2017 (the linear warm-up). https://arxiv.org/abs/1706.02677
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        _check_int(warmup_steps, "warmup_steps", 0)
        _check_int(total_steps, "total_steps", warmup_steps + 1)
        _check_nonnegative(eta_min, "eta_min")
        self.warmup_steps, self.total_steps, self.eta_min = warmup_steps, total_steps, eta_min
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        if t < self.warmup_steps:
            return eta * _warmup(t, self.warmup_steps)
        if t > self.total_steps:
            return self.eta_min
        progress = (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return self.eta_min + 0.5 * (eta - self.eta_min) * (1.0 + math.cos(math.pi * progress))


_DECAYS = {
    "linear": lambda s: 1.0 - s,
    "cosine": lambda s: 0.5 * (1.0 + math.cos(math.pi * s)),
    "sqrt": lambda s: 1.0 - math.sqrt(s),
}


class WSD(_ClosedForm):
    r"""Warmup-Stable-Decay: linear warm-up, a long constant phase, and a short decay at the end.

    $$
    \eta_t = \begin{cases}
    \dfrac{t}{W}\, \eta & t < W \\
    \eta & W \le t < T \\
    f(t - T)\, \eta & T \le t \le S
    \end{cases}
    $$

    This is the Canon record's rule (wsd) with $\eta_{\min} = 0$. $T = S - D$ is the start of the
    decay window of ``decay_steps`` $D$, and with $s = (t - T)/D$ the decay ``decay`` is
    $f = 1 - s$ (``"linear"``), $\tfrac{1}{2}(1 + \cos \pi s)$ (``"cosine"``) or $1 - \sqrt{s}$
    (``"sqrt"``); with ``eta_min`` the decay phase is $\eta_{\min} + (\eta - \eta_{\min}) f$ and
    after $S$ the rate stays $\eta_{\min}$. $t$ is the scheduler's step count (``last_epoch``).

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        warmup_steps: $W$, steps of linear warm-up (0: none).
        total_steps: $S$, the step at which the decay ends.
        decay_steps: $D$, the length of the decay window, at most ``total_steps - warmup_steps``.
        decay: the shape $f$: ``"linear"``, ``"cosine"`` or ``"sqrt"``.
        eta_min: $\eta_{\min}$, the final rate (absolute, the same for every group).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = zij.schedulers.WSD(opt, warmup_steps=10, total_steps=100, decay_steps=20)
        >>> opt.step(); sched.step()

    References:
        Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with Scalable Training
        Strategies", COLM 2024. https://arxiv.org/abs/2404.06395
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, decay_steps: int,
                 decay: str = "linear", eta_min: float = 0.0, last_epoch: int = -1):
        _check_int(warmup_steps, "warmup_steps", 0)
        _check_int(decay_steps, "decay_steps", 1)
        _check_int(total_steps, "total_steps", warmup_steps + decay_steps)
        if decay not in _DECAYS:
            raise ValueError(f"Invalid decay: {decay!r} (expected one of {', '.join(_DECAYS)})")
        _check_nonnegative(eta_min, "eta_min")
        self.warmup_steps, self.total_steps, self.decay_steps = warmup_steps, total_steps, decay_steps
        self.decay, self.eta_min = decay, eta_min
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        start = self.total_steps - self.decay_steps
        if t < self.warmup_steps:
            return eta * _warmup(t, self.warmup_steps)
        if t < start:
            return eta
        s = min(t - start, self.decay_steps) / self.decay_steps
        return self.eta_min + (eta - self.eta_min) * _DECAYS[self.decay](s)


class REX(_ClosedForm):
    r"""REX: the reflected-exponential profile, above linear decay for most of the budget, zero at its end.

    $$
    \eta_t = \eta_0\, \frac{1 - t/T}{\frac{1}{2} + \frac{1}{2}\left(1 - t/T\right)}
    $$

    $t$ is the scheduler's step count (``last_epoch``, 0 at construction; step it every
    iteration, as the paper recommends), $\eta_0$ each group's initial learning rate; the rate
    is 0 from $t = T$ on.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        total_steps: $T$, the budget in scheduler steps.
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1)
        >>> sched = zij.schedulers.REX(opt, total_steps=100)
        >>> opt.step(); sched.step()

    References:
        Chen, Wolfe and Kyrillidis, "REX: Revisiting Budgeted Training with an Improved Schedule",
        MLSys 2022. https://arxiv.org/abs/2107.04197
    """

    def __init__(self, optimizer: Optimizer, total_steps: int, last_epoch: int = -1):
        _check_int(total_steps, "total_steps", 1)
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        remaining = 1.0 - min(t, self.total_steps) / self.total_steps
        return eta * remaining / (0.5 + 0.5 * remaining)


class InverseSqrt(_ClosedForm):
    r"""Inverse square root (the Transformer's schedule): linear warm-up, then decay as $t^{-1/2}$.

    $$
    \eta_t = d_{\mathrm{model}}^{-1/2} \cdot \min\left( t^{-1/2},\ t \cdot W^{-3/2} \right)
    $$

    This is the paper's rule with $t$ counted from 1 (the rate of scheduler step
    ``last_epoch`` uses $t$ = ``last_epoch`` + 1). The scale $d_{\mathrm{model}}^{-1/2}$ is
    replaced by each group's initial learning rate $\eta$ times $\sqrt{W}$, so the rate peaks at
    $\eta$ at $t = W$: $\eta_t = \eta \sqrt{W} \min(t^{-1/2}, t W^{-3/2})$; the paper's
    schedule is $\eta = (d_{\mathrm{model}} W)^{-1/2}$.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        warmup_steps: $W$, steps of linear warm-up (at least 1).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.Adam(torch.nn.Linear(2, 1).parameters(), lr=1e-3, betas=(0.9, 0.98))
        >>> sched = zij.schedulers.InverseSqrt(opt, warmup_steps=4000)
        >>> opt.step(); sched.step()

    References:
        Vaswani et al., "Attention Is All You Need", NeurIPS 2017. https://arxiv.org/abs/1706.03762
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int = 4000, last_epoch: int = -1):
        _check_int(warmup_steps, "warmup_steps", 1)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        step, w = t + 1, self.warmup_steps
        return eta * math.sqrt(w) * min(step ** -0.5, step * w ** -1.5)


class PolynomialWithWarmup(_ClosedForm):
    r"""Linear warm-up from zero, then a polynomial decay to ``end_lr`` at ``total_steps``.

    $$
    \eta_t = \begin{cases}
    \eta\, \dfrac{t}{W} & t < W \\
    \left(\eta - \eta_{\mathrm{end}}\right) \left(1 - \dfrac{t - W}{T - W}\right)^{p} + \eta_{\mathrm{end}} & W \le t \le T \\
    \eta_{\mathrm{end}} & t > T
    \end{cases}
    $$

    $t$ is the scheduler's step count (``last_epoch``), $\eta$ each group's initial rate; the
    warm-up is a linear ramp from zero (Canon record linear-lr). With
    $W = 0$ and $\eta_{\mathrm{end}} = 0$ it is torch's ``PolynomialLR`` (Canon record
    polynomial-lr) with ``total_iters`` $T$; ``power`` 1 is linear decay.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        warmup_steps: $W$, steps of linear warm-up (0: none).
        total_steps: $T$, the step at which the rate reaches ``end_lr``; more than ``warmup_steps``.
        power: $p$, the exponent of the decay.
        end_lr: $\eta_{\mathrm{end}}$, the final rate (absolute, the same for every group).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = zij.schedulers.PolynomialWithWarmup(opt, warmup_steps=10, total_steps=100, power=2.0)
        >>> opt.step(); sched.step()

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017 (the linear
        warm-up). https://arxiv.org/abs/1706.02677
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, total_steps: int, power: float = 1.0,
                 end_lr: float = 0.0, last_epoch: int = -1):
        _check_int(warmup_steps, "warmup_steps", 0)
        _check_int(total_steps, "total_steps", warmup_steps + 1)
        _check_nonnegative(power, "power")
        _check_nonnegative(end_lr, "end_lr")
        self.warmup_steps, self.total_steps, self.power, self.end_lr = warmup_steps, total_steps, power, end_lr
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        if t < self.warmup_steps:
            return eta * _warmup(t, self.warmup_steps)
        if t > self.total_steps:
            return self.end_lr
        remaining = 1.0 - (t - self.warmup_steps) / (self.total_steps - self.warmup_steps)
        return (eta - self.end_lr) * remaining ** self.power + self.end_lr


class WarmupConstant(_ClosedForm):
    r"""Linear warm-up from zero to the initial rate, then constant.

    $$
    \eta_t = \eta\, \min\left(1,\ \frac{t}{W}\right)
    $$

    $t$ is the scheduler's step count (``last_epoch``), $\eta$ each group's initial rate: a
    linear ramp from zero (Canon record linear-lr, with a start factor of zero). The
    untuned warm-up of Ma and Yarats (Canon record untuned-warmup) is this rule with
    $W = 2 (1 - \beta_2)^{-1}$ and $t$ counted from 1.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        warmup_steps: $W$, steps of linear warm-up (0: constant from the start).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
        >>> sched = zij.schedulers.WarmupConstant(opt, warmup_steps=10)
        >>> opt.step(); sched.step()

    References:
        Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", 2017.
        https://arxiv.org/abs/1706.02677
    """

    def __init__(self, optimizer: Optimizer, warmup_steps: int, last_epoch: int = -1):
        _check_int(warmup_steps, "warmup_steps", 0)
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def rate(self, t: int, eta: float) -> float:
        return eta if t >= self.warmup_steps else eta * _warmup(t, self.warmup_steps)


class WarmupCosineRestarts(_ClosedForm):
    r"""SGDR (cosine annealing with warm restarts) after a linear warm-up.

    $$
    \begin{aligned}
    \eta_t &= \eta_{\min}^{i} + \frac{1}{2}\left(\eta_{\max}^{i} - \eta_{\min}^{i}\right)\left(1 + \cos\left(\frac{T_{\text{cur}}}{T_i}\,\pi\right)\right) \\
    T_{i+1} &= T_{\text{mult}}\, T_i
    \end{aligned}
    $$

    This is SGDR's rule (Canon record sgdr) counted in scheduler steps, as torch's
    ``CosineAnnealingWarmRestarts`` with integer steps: $\eta_{\max}^{i}$ is each group's
    initial rate $\eta$ and $\eta_{\min}^{i}$ = ``eta_min`` for every run, $T_0$ = ``T_0``.
    Before it come $W$ steps of linear warm-up, $\eta_t = \eta\, t / W$; from $t = W$ on,
    $T_{\text{cur}}$ counts the steps since $W$ or the last restart.

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        T_0: $T_0$, the length of the first run in scheduler steps.
        T_mult: $T_{\text{mult}}$, the factor by which each run is longer than the previous one.
        eta_min: $\eta_{\min}$, the rate at the end of each run (absolute, the same for every group).
        warmup_steps: $W$, steps of linear warm-up (0: none).
        last_epoch: as in torch's schedulers (-1: start fresh).

    Example:
        >>> opt = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
        >>> sched = zij.schedulers.WarmupCosineRestarts(opt, T_0=10, T_mult=2, warmup_steps=5)
        >>> opt.step(); sched.step()

    References:
        Loshchilov and Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
        https://arxiv.org/abs/1608.03983
    """

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, warmup_steps: int = 0,
                 last_epoch: int = -1):
        _check_int(T_0, "T_0", 1)
        _check_int(T_mult, "T_mult", 1)
        _check_nonnegative(eta_min, "eta_min")
        _check_int(warmup_steps, "warmup_steps", 0)
        self.T_0, self.T_mult, self.eta_min, self.warmup_steps = T_0, T_mult, eta_min, warmup_steps
        super().__init__(optimizer, last_epoch)

    def cycle(self, t: int) -> tuple[int, int]:
        """$(T_{\\text{cur}}, T_i)$ at step ``t`` (from the end of the warm-up)."""
        s, length = t - self.warmup_steps, self.T_0
        if self.T_mult == 1:
            return s % length, length
        while s >= length:
            s -= length
            length *= self.T_mult
        return s, length

    def rate(self, t: int, eta: float) -> float:
        if t < self.warmup_steps:
            return eta * _warmup(t, self.warmup_steps)
        current, length = self.cycle(t)
        return self.eta_min + 0.5 * (eta - self.eta_min) * (1.0 + math.cos(math.pi * current / length))
