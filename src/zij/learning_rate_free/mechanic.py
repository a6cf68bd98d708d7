"""Mechanic: learns one global scale of any optimizer's accumulated updates (Cutkosky, Defazio and Mehta, 2023)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_nonnegative, check_unit
from .._checkpoint import CheckedStateDict, check_wrapper
from .._registry import Capabilities, ErrorInput, OptimizerEntry, register
from .._sharded import gather, is_dtensor

TUNER = "mechanic"
BETAS = (0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999)


def _whole(x: torch.Tensor) -> torch.Tensor:
    """A reduction of FSDP2-sharded tensors (a DTensor) as a plain tensor on every rank; others as they are."""
    return gather(x) if is_dtensor(x) else x


def mechanic_tuner_(tuner: dict, h: torch.Tensor, *, s_init: float, eps: float) -> torch.Tensor:
    """One step of the n parallel scale learners on the feedback h, in place; returns the new scale S = sum_j s_j.

    m <- max(beta m, |h|);  v <- beta^2 v + h^2;  r <- max(beta r - s h, 0);  s <- (m s_init / n + r) / (sqrt(v) + eps).
    """
    betas, s = tuner["betas"], tuner["s"]
    tuner["max_product"].copy_(torch.maximum(betas * tuner["max_product"], h.abs()))
    tuner["sum_squared_products"].mul_(betas**2).add_(h.square())
    tuner["reward"].mul_(betas).sub_(s * h).clamp_(min=0)
    wealth = tuner["max_product"] * s_init / len(betas) + tuner["reward"]
    s.copy_(wealth / (tuner["sum_squared_products"].sqrt() + eps))
    return s.sum()


class Mechanic(CheckedStateDict, Optimizer):
    r"""Mechanic: wraps any optimizer and learns, online, the scale $S$ by which its summed updates are applied.

    The base optimizer proposes its updates as usual; Mechanic keeps the reference
    point $\theta_{\mathrm{ref}}$ (the weights before the first step) and moves the weights to
    $\theta_{\mathrm{ref}} + S_t \Delta_t$, where $\Delta_t$ is the sum of the base updates. $S$ is
    chosen by parameter-free coin-betting learners, one per discount factor $\beta_j$, fed
    the inner product of the gradient with $\Delta$; it starts near zero and grows as long
    as larger steps would have paid off, so a badly chosen base learning rate is corrected.

    $$
    \begin{aligned}
    \Delta_{t-1} &= \frac{\theta_{t-1} - \theta_{\mathrm{ref}}}{S_{t-1} + \epsilon}, \qquad \theta'_t = \operatorname{BaseStep}(\theta_{t-1},\ g_t), \qquad u_t = \theta'_t - \theta_{t-1} \\
    h_t &= \Big\langle \Delta_{t-1},\ g_t + \lambda\, S_{t-1}\, \frac{\lVert g_t \rVert_2}{\lVert \theta'_t \rVert_2 + \epsilon}\, \theta'_t \Big\rangle, \qquad \Delta_t = \Delta_{t-1} + u_t \\
    &\text{for each } j = 1, \dots, n: \\
    &\quad m_{t,j} = \max(\beta_j m_{t-1,j},\ \lvert h_t \rvert), \qquad v_{t,j} = \beta_j^{2}\, v_{t-1,j} + h_t^{2} \\
    &\quad r_{t,j} = \max\big(\beta_j r_{t-1,j} - s_{t-1,j}\, h_t,\ 0\big), \qquad s_{t,j} = \frac{m_{t,j}\, s_{\text{init}} / n + r_{t,j}}{\sqrt{v_{t,j}} + \epsilon} \\
    S_t &= \textstyle\sum_{j} s_{t,j}, \qquad \theta_t = \theta_{\mathrm{ref}} + \max(S_t, 0)\, \Delta_t
    \end{aligned}
    $$

    $S_0 = 0$, $m_{0,j} = 10^{-6}$ and $v$, $r$, $s$ start at zero. Norms and inner products run over
    all parameters with gradients. By default $\Delta_{t-1}$ is recomputed from the weights as
    in the first line (no extra memory); ``store_delta=True`` keeps $\Delta$ in the state and
    accumulates it instead (one more tensor per parameter; the two differ after a step with
    $S_t \le 0$). The base optimizer is stepped without a closure. The learners' state is
    kept in torch's default dtype (float32 unless changed), as in the official code.
    Learning-rate schedulers act on the base optimizer's groups, which Mechanic shares.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the wrapped optimizer's own step and the learned scale (into all of them), as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer`` that steps without a closure).
        s_decay: $\lambda$, the scale's analogue of weight decay.
        betas: discount factors $\beta_j$ of the parallel learners, each in [0, 1).
        s_init: $s_{\text{init}}$, the initial wealth factor (sets how small the first steps are).
        eps: $\epsilon$, for numerical safety.
        store_delta: keep $\Delta$ in the state instead of recomputing it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Mechanic(torch.optim.AdamW(model.parameters(), lr=1e-3))
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Cutkosky, Defazio and Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS 2023.
        https://arxiv.org/abs/2306.00144
    """

    def __init__(self, optimizer: Optimizer, s_decay: float = 0.01, betas=BETAS, s_init: float = 1e-8,
                 eps: float = 1e-8, store_delta: bool = False):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        check_nonnegative(s_decay, "s_decay")
        betas = tuple(betas)
        if not betas:
            raise ValueError("Invalid betas: () (expected at least one discount factor)")
        for i, beta in enumerate(betas):
            check_unit(beta, f"betas[{i}]")
        check_nonnegative(s_init, "s_init")
        check_nonnegative(eps, "eps")
        self.optimizer = optimizer
        self.s_decay, self.betas, self.s_init, self.eps, self.store_delta = s_decay, betas, s_init, eps, store_delta
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups  # shared, so schedulers reach the base optimizer

    def __getstate__(self):
        return {**super().__getstate__(), **self._settings(), "optimizer": self.optimizer}

    def _settings(self) -> dict:
        return {"s_decay": self.s_decay, "betas": self.betas, "s_init": self.s_init, "eps": self.eps,
                "store_delta": self.store_delta}

    def _tuner(self, device) -> dict:
        if TUNER not in self.state:
            n, dtype = len(self.betas), torch.get_default_dtype()
            self.state[TUNER] = {
                "betas": torch.tensor(self.betas, dtype=dtype, device=device),
                "s": torch.zeros(n, dtype=dtype, device=device),
                "max_product": torch.full((n,), 1e-6, dtype=dtype, device=device),
                "sum_squared_products": torch.zeros(n, dtype=dtype, device=device),
                "reward": torch.zeros(n, dtype=dtype, device=device),
                "step": 0,
            }
        return self.state[TUNER]

    @torch.no_grad()
    def step(self, closure=None):
        """One base step, then the scale's update and the move to theta_ref + S Delta; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if not params:
            self.optimizer.step()
            return loss
        grads = [p.grad.clone() for p in params]  # the base step may change .grad (coupled decay)
        before = [p.detach().clone() for p in params]
        self.optimizer.step()
        tuner = self._tuner(params[0].device)
        scale = float(tuner["s"].sum())  # a Python number: it multiplies plain tensors and FSDP2 shards alike
        deltas = []
        for p, old in zip(params, before):
            state = self.state[p]
            if "ref" not in state:
                state["ref"] = old.clone()
                if self.store_delta:
                    state["delta"] = torch.zeros_like(p)
            deltas.append(state["delta"] if self.store_delta else (old - state["ref"]) / (scale + self.eps))
        param_norm = torch.stack([_whole(torch.linalg.vector_norm(p)) for p in params]).square().sum().sqrt()
        grad_norm = torch.stack([_whole(torch.linalg.vector_norm(g)) for g in grads]).square().sum().sqrt()
        decay = float(self.s_decay * scale * grad_norm / (param_norm + self.eps))
        h = sum(_whole((delta * (g + decay * p)).sum()) for delta, g, p in zip(deltas, grads, params))
        for delta, p, old in zip(deltas, params, before):
            delta.add_(p - old)
        new_scale = mechanic_tuner_(tuner, h.to(tuner["s"].dtype), s_init=self.s_init, eps=self.eps)
        tuner["step"] += 1
        applied = max(float(new_scale), 0.0)  # NaN stays NaN: a non-finite gradient shows at once
        for p, delta in zip(params, deltas):
            p.copy_(self.state[p]["ref"] + delta * applied)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        """References, the learners' state and settings, plus the base optimizer's state under ``"inner"``."""
        return {**super().state_dict(), "inner": self.optimizer.state_dict(), **self._settings()}

    def load_state_dict(self, state_dict):
        check_wrapper(self, state_dict, ("inner", *self._settings()))
        state_dict = dict(state_dict)
        self.optimizer.load_state_dict(state_dict.pop("inner"))
        for key in self._settings():
            value = state_dict.pop(key)
            setattr(self, key, tuple(value) if key == "betas" else value)
        super().load_state_dict(state_dict)
        self.param_groups = self.optimizer.param_groups


register(OptimizerEntry(
    name="Mechanic",
    cls=Mechanic,
    canon_id="mechanic",
    family="parameter-free",
    aliases=("mechanize",),
    wraps=True,
    recipe={"base": (torch.optim.SGD, {"lr": 0.01}), "s_init": 1e-4},
    variants={"store_delta": {"store_delta": True}},
    capabilities=Capabilities(elementwise=False),
    skips={"param_groups": "the scale is learnt from all groups together (one inner product and norm over every "
                           "parameter), so one Mechanic over two groups is not two over one group each",
           "rosenbrock": "the one learned scale stalls in Rosenbrock's curved valley: every base and setting tried "
                         "(SGD, SGD with momentum, Adam; s_init 1e-8 to 0.1) ends 0.33 to 0.40 of the start's "
                         "distance from the minimum after 3000 steps, not below 0.3; the same arithmetic as the "
                         "official code (test_mechanic.py), and quadratic and logistic converge"},
    errors=(ErrorInput({"s_decay": -0.1}, "s_decay"), ErrorInput({"betas": (0.9, 1.0)}, r"betas\[1\]"),
            ErrorInput({"betas": ()}, "betas"), ErrorInput({"s_init": -1.0}, "s_init"),
            ErrorInput({"eps": -1.0}, "eps")),
    # parity with the official mechanic-pytorch: tests/optim/test_mechanic.py (it subclasses the base class
    # rather than wrapping an instance, and keeps its learners in torch's default dtype)
))
