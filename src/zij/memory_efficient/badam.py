"""BAdam: block coordinate descent with Adam steps on one block of parameters at a time (Luo et al., 2024)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register
from ..blocks import adam_direction, decoupled_decay_, ema_, ema_sq_

SWITCH_MODES = ("descending", "ascending", "fixed", "random")


def badam_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float, eps: float,
                 weight_decay: float) -> None:
    """AdamW's step for one tensor of the active block, in place (``step``: steps since the block became active)."""
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    direction = adam_direction(exp_avg, exp_avg_sq, step=step, beta1=beta1, beta2=beta2, eps=eps)
    decoupled_decay_(param, lr, weight_decay).add_(direction, alpha=-lr)


class BAdam(ZijOptimizer):
    r"""BAdam: block coordinate descent that runs Adam on one block of parameters for K steps, then switches.

    Protocol: the blocks are the parameter groups, in order (give one group per layer, as
    the official code's default of one block per transformer layer). Only the active
    block is updated; every ``switch_block_every`` steps the optimizer state is dropped
    and the next block becomes active, so Adam's moments and bias corrections restart
    with each visit. With ``freeze_inactive`` (the official behaviour) the class sets
    ``requires_grad`` to false on every parameter outside the active block, at
    construction and at each switch, so backward computes no gradients for them: this is
    where BAdam saves memory and time. Gradients of inactive blocks are ignored either
    way. Weights in 16 or fewer bits are updated through a float32 copy of the active
    block, kept in the state, as in the official code. The official wrapper takes any
    base optimizer; this class is its AdamW form. The official code's first phase lasts
    ``switch_block_every - 1`` steps (it switches after step $s$ with $s + 1 \equiv 0$);
    here every phase lasts $K$ steps, as in the paper.

    $$
    \begin{aligned}
    j &= \pi\big(\lfloor t/K \rfloor \bmod D\big), \qquad \text{if } t \bmod K = 0: \ m^{(j)} \leftarrow 0,\ v^{(j)} \leftarrow 0,\ \tau \leftarrow 0 \\
    \tau &\leftarrow \tau + 1, \qquad g_t = \nabla_{\theta^{(j)}} f\big(\theta^{(1)}_{t-1}, \dots, \theta^{(D)}_{t-1}\big) \\
    m^{(j)} &\leftarrow \beta_1 m^{(j)} + (1-\beta_1)\, g_t, \qquad v^{(j)} \leftarrow \beta_2 v^{(j)} + (1-\beta_2)\, g_t^{2} \\
    \theta^{(j)}_t &= (1 - \eta_t \lambda)\, \theta^{(j)}_{t-1} - \eta_t\, \frac{m^{(j)}/(1-\beta_1^{\tau})}{\sqrt{v^{(j)}/(1-\beta_2^{\tau})} + \epsilon}, \qquad \theta^{(i)}_t = \theta^{(i)}_{t-1} \ (i \neq j)
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; each group is one block.
        lr: learning rate $\eta_t$ (each group may set its own).
        betas: $(\beta_1, \beta_2)$, decay rates of the moments.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$ (AdamW's).
        switch_block_every: steps $K$ spent on a block before switching.
        switch_mode: block order $\pi$: ``"descending"`` (last group first, the official default),
            ``"ascending"``, ``"fixed"`` (always ``start_block``), or ``"random"`` (a fresh permutation per sweep,
            drawn from torch's global generator).
        start_block: index of the first active group (``None``: the last for descending, else the first).
        freeze_inactive: set ``requires_grad=False`` on parameters outside the active block.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the moments (``None``: the parameter's, float32 for 16-bit weights).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> blocks = [{"params": layer.parameters()} for layer in (model[0], model[2])]
        >>> opt = zij.BAdam(blocks, lr=1e-3, switch_block_every=2)
        >>> model[0].weight.requires_grad  # descending: the last block starts
        False
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Luo et al., "BAdam: A Memory Efficient Full Parameter Optimization Method for Large Language Models",
        NeurIPS 2024. https://arxiv.org/abs/2404.02827
    """

    state_names = ("exp_avg", "exp_avg_sq")
    per_element = True
    first_group_keys = ("switch_block_every", "switch_mode", "freeze_inactive", "block_step", "active_block",
                        "block_order")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 switch_block_every: int = 50, switch_mode: str = "descending", start_block: int | None = None,
                 freeze_inactive: bool = True, *, maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize,
                                   state_dtype=state_dtype)
        check_int(switch_block_every, "switch_block_every", minimum=1)
        if switch_mode not in SWITCH_MODES:
            raise ValueError(f"Invalid switch_mode: {switch_mode!r} (expected one of {SWITCH_MODES})")
        super().__init__(params, defaults)
        blocks = len(self.param_groups)
        if start_block is not None and not (isinstance(start_block, int) and 0 <= start_block < blocks):
            raise ValueError(f"Invalid start_block: {start_block!r} (expected None or a group index below {blocks})")
        order = []
        if start_block is None:
            if switch_mode == "random":
                order = torch.randperm(blocks).tolist()
                start_block = order.pop()
            else:
                start_block = blocks - 1 if switch_mode == "descending" else 0
        # Optimizer-wide quantities live in the first group, which state_dict saves.
        self.param_groups[0].update(switch_block_every=switch_block_every, switch_mode=switch_mode,
                                    freeze_inactive=bool(freeze_inactive), block_step=0, active_block=start_block,
                                    block_order=order)
        self._freeze()

    def _freeze(self) -> None:
        first = self.param_groups[0]
        if first["freeze_inactive"]:
            for i, group in enumerate(self.param_groups):
                for p in group["params"]:
                    p.requires_grad_(i == first["active_block"])

    def _switch(self) -> None:
        """Drop all state and activate the next block."""
        first = self.param_groups[0]
        blocks, mode = len(self.param_groups), first["switch_mode"]
        if mode == "random":
            if not first["block_order"]:
                first["block_order"] = torch.randperm(blocks).tolist()
            first["active_block"] = first["block_order"].pop()
        elif mode != "fixed":
            first["active_block"] = (first["active_block"] + (1 if mode == "ascending" else -1)) % blocks
        self.state.clear()
        self._freeze()

    def load_state_dict(self, state_dict):
        """Load as torch does, then freeze the parameters outside the loaded active block."""
        super().load_state_dict(state_dict)
        self._freeze()

    def init_state(self, p, state, group):
        state["step"] = 0
        low = p.dtype in (torch.float16, torch.bfloat16)
        if low:
            state["master"] = p.detach().to(torch.float32, copy=True)
        dtype = group.get("state_dtype") or (torch.float32 if low else p.dtype)
        for name in self.state_names:
            state[name] = torch.zeros_like(p, dtype=dtype)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step on the active block, and switch blocks every ``switch_block_every`` steps.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        group = self.param_groups[first["active_block"]]
        params, grads, states = self._gather(group)
        beta1, beta2 = group["betas"]
        for p, grad, state in zip(params, grads, states):
            state["step"] += 1
            target = state.get("master", p)
            badam_update(target, grad.to(target.dtype), state["exp_avg"], state["exp_avg_sq"], step=state["step"],
                         lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                         weight_decay=group["weight_decay"])
            if target is not p:
                p.copy_(target)
        first["block_step"] += 1
        if first["block_step"] % first["switch_block_every"] == 0:
            self._switch()
        return loss


_MULTI_BLOCK = ("only one block moves at a time, so several groups are not several independent optimizers")

register(OptimizerEntry(
    name="BAdam",
    cls=BAdam,
    canon_id="badam",
    family="masked",
    recipe={"lr": 0.05, "switch_block_every": 100},
    recipes={"rosenbrock": {"lr": 0.01, "switch_block_every": 1000}},
    variants={"ascending": {"switch_mode": "ascending"}, "random": {"switch_mode": "random"},
              "unfrozen": {"freeze_inactive": False}},
    skips={"param_groups": _MULTI_BLOCK},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.0)) + (
        ErrorInput({"switch_block_every": 0}, "switch_block_every"),
        ErrorInput({"switch_mode": "cyclic"}, "switch_mode"),
        ErrorInput({"start_block": 5}, "start_block"),
    ),
))
