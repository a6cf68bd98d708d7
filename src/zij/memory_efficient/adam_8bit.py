"""Adam8bit: Adam with both moments stored in 8 bits by block-wise dynamic quantization (Dettmers et al., 2022)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_, ema_sq_

#: Block sizes accepted: bitsandbytes' 256 and the paper's 2048.
BLOCK_SIZES = (256, 2048)
_CODES: dict[tuple[bool, torch.device], torch.Tensor] = {}


def dynamic_code(signed: bool, device=None) -> torch.Tensor:
    r"""The sorted values of the 8-bit dynamic (tree) code in [-1, 1] (``signed``) or [0, 1], float32.

    Written from the paper's description: after the sign bit (signed code only), a run of
    $e$ zero bits gives the decimal exponent $10^{-e}$, a one bit ends the run, and the
    remaining $r$ bits select one of $2^r$ linearly spaced fractions $0.1 + 0.9 k / 2^r$,
    $k = 1, \dots, 2^r$; the all-zero pattern is 0. The signed code has $e \le 6$ (255
    values, -1 and 1 included), the unsigned one $e \le 7$ (256 values); 1 is exact so the
    block maximum is stored without error. The fractions here are the interval ends, where
    bitsandbytes uses midpoints, so codes are not interchangeable with its states.
    """
    key = (signed, torch.device(device or "cpu"))
    if key not in _CODES:
        bits = 7 if signed else 8
        values = [0.0]
        for e in range(bits):
            r = bits - 1 - e
            values += [10.0 ** -e * (0.1 + 0.9 * k / 2**r) for k in range(1, 2**r + 1)]
        mags = sorted(values)
        code = [-v for v in reversed(mags[1:])] + mags if signed else mags
        _CODES[key] = torch.tensor(code, dtype=torch.float32, device=key[1])
    return _CODES[key]


def quantize_blockwise(x: torch.Tensor, code: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 indices into ``code``, one per entry of ``x`` flattened; float32 absolute maximum per block).

    Each block of ``block_size`` consecutive entries is divided by its absolute maximum
    and every entry is mapped to the nearest code value.
    """
    flat = x.reshape(-1).to(torch.float32)
    n = flat.numel()
    blocks = torch.nn.functional.pad(flat, (0, (-n) % block_size)).view(-1, block_size)
    absmax = blocks.abs().amax(dim=1)
    normed = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax)).unsqueeze(1)
    midpoints = (code[1:] + code[:-1]) / 2
    index = torch.bucketize(normed, midpoints).to(torch.uint8)
    return index.reshape(-1)[:n].clone(), absmax


def dequantize_blockwise(index: torch.Tensor, absmax: torch.Tensor, code: torch.Tensor, block_size: int,
                         shape, dtype=torch.float32) -> torch.Tensor:
    """The tensor ``absmax[block] * code[index]`` of ``shape``, in ``dtype``."""
    n = index.numel()
    values = torch.nn.functional.pad(code[index.long()], (0, (-n) % block_size)).view(-1, block_size)
    return (values * absmax.unsqueeze(1)).reshape(-1)[:n].reshape(shape).to(dtype)


def adam_8bit_update(param, grad, exp_avg, exp_avg_sq, *, step: int, lr: float, beta1: float, beta2: float,
                     eps: float, weight_decay: float) -> None:
    """One Adam step on full-precision moments ``exp_avg``, ``exp_avg_sq`` (already dequantized), in place.

    m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
    theta <- (1 - lr wd) theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
    The update is computed in the moments' dtype and added to ``param`` in its own.
    """
    grad = grad.to(exp_avg.dtype)
    ema_(exp_avg, grad, beta1)
    ema_sq_(exp_avg_sq, grad, beta2)
    denom = (exp_avg_sq / (1 - beta2**step)).sqrt_().add_(eps)
    update = (exp_avg / (1 - beta1**step)).div_(denom)
    decoupled_decay_(param, lr, weight_decay).add_(update.to(param.dtype), alpha=-lr)


class Adam8bit(ZijOptimizer):
    r"""Adam8bit: Adam whose two moments are stored in 8 bits by block-wise dynamic quantization.

    Each moment is cut into blocks of $B$ consecutive entries; a block is scaled by its
    absolute maximum $s$ (kept in float32) and every entry is stored as the one-byte index
    of the nearest value $q_j$ of a non-linear dynamic code (signed for $m$, unsigned for
    $v$; see :func:`dynamic_code`). At every step the moments are decoded to float32,
    updated, used for the step at full precision, and encoded again, so the state takes
    about $2 + 8/B$ bytes per parameter instead of 8. Like bitsandbytes, tensors with fewer
    than ``min_8bit_size`` entries keep ordinary moments, which is plain AdamW; so does
    every tensor when ``state_dtype`` names a floating dtype for the state. Weight decay is decoupled (AdamW8bit is this class with
    ``weight_decay > 0``). The code is written from the paper, not taken from bitsandbytes:
    its fractions are interval ends rather than midpoints, so the rounding differs slightly.

    $$
    \begin{aligned}
    m_{t-1} &= \operatorname{dq}(\bar m_{t-1}, s^{m}_{t-1}), \qquad v_{t-1} = \operatorname{dq}(\bar v_{t-1}, s^{v}_{t-1}) \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^{2} \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, \frac{m_t/(1-\beta_1^{t})}{\sqrt{v_t/(1-\beta_2^{t})} + \epsilon} \\
    s^{x}_{t,b} &= \max_{i \in b} |x_{t,i}|, \qquad \bar x_{t,i} = \operatorname{arg\,min}_{j} \big| q_j - x_{t,i}/s^{x}_{t,b(i)} \big| \quad (x \in \{m, v\}) \\
    \operatorname{dq}(\bar x, s)_i &= s_{b(i)}\, q_{\bar x_i}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the moments.
        eps: $\epsilon$, added to the denominator.
        weight_decay: decoupled weight decay $\lambda$.
        block_size: entries per quantization block $B$: 256 (bitsandbytes) or 2048 (the paper).
        min_8bit_size: tensors with fewer entries keep unquantized moments (bitsandbytes: 4096; 0 quantizes all).
        maximize: maximize the objective instead of minimizing it.
        state_dtype: store every moment unquantized in this floating dtype instead (``None``: 8-bit codes for
            tensors of at least ``min_8bit_size`` entries, the parameter's dtype for smaller ones).

    Example:
        >>> model = torch.nn.Linear(64, 128)
        >>> opt = zij.Adam8bit(model.parameters(), lr=1e-3, weight_decay=0.01)
        >>> model(torch.randn(8, 64)).square().mean().backward()
        >>> opt.step()
        >>> state = opt.state[model.weight]
        >>> state["exp_avg_code"].dtype
        torch.uint8

    References:
        Dettmers et al., "8-bit Optimizers via Block-wise Quantization", ICLR 2022. https://arxiv.org/abs/2110.02861
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 block_size: int = 256, min_8bit_size: int = 4096, *, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, block_size=block_size,
                                   min_8bit_size=min_8bit_size, maximize=maximize, state_dtype=state_dtype)
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size not in BLOCK_SIZES:
            raise ValueError(f"Invalid block_size: {block_size!r} (expected one of {BLOCK_SIZES})")
        check_int(min_8bit_size, "min_8bit_size", minimum=0)
        super().__init__(params, defaults)

    @staticmethod
    def quantized(p: torch.Tensor, group: dict) -> bool:
        """Whether ``p``'s moments are stored in 8 bits: not when ``state_dtype`` is set, nor for small tensors."""
        return group.get("state_dtype") is None and p.numel() >= max(group["min_8bit_size"], 1)

    def init_state(self, p, state, group):
        state["step"] = 0
        if not self.quantized(p, group):
            state["exp_avg"] = self.zeros_like(p, group)
            state["exp_avg_sq"] = self.zeros_like(p, group)
            return
        blocks = -(-p.numel() // group["block_size"])
        for name in ("exp_avg", "exp_avg_sq"):
            state[f"{name}_code"] = torch.full((p.numel(),), self.zero_index(name == "exp_avg"), dtype=torch.uint8,
                                               device=p.device)
            state[f"{name}_absmax"] = torch.zeros(blocks, dtype=torch.float32, device=p.device)

    @staticmethod
    def zero_index(signed: bool) -> int:
        """Index of 0 in the signed (middle) or unsigned (first) code."""
        return 127 if signed else 0

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        kw = dict(step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                  weight_decay=group["weight_decay"])
        if "exp_avg" in state:
            adam_8bit_update(p, grad, state["exp_avg"], state["exp_avg_sq"], **kw)
            return
        size = group["block_size"]
        work = torch.promote_types(p.dtype, torch.float32)
        codes = {"exp_avg": dynamic_code(True, p.device), "exp_avg_sq": dynamic_code(False, p.device)}
        moments = {name: dequantize_blockwise(state[f"{name}_code"], state[f"{name}_absmax"], code, size, p.shape, work)
                   for name, code in codes.items()}
        adam_8bit_update(p, grad, moments["exp_avg"], moments["exp_avg_sq"], **kw)
        for name, code in codes.items():
            index, absmax = quantize_blockwise(moments[name], code, size)
            state[f"{name}_code"].copy_(index)
            state[f"{name}_absmax"].copy_(absmax)

    def load_state_dict(self, state_dict):
        """Load as torch does, but keep the saved float32 block scales (torch casts state to the parameter's dtype)."""
        saved = {i: {k: v for k, v in s.items() if k.endswith("_absmax")} for i, s in state_dict.get("state", {}).items()}
        super().load_state_dict(state_dict)
        ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        for i, p in zip(ids, params):
            for name, value in saved.get(i, {}).items():
                self.state[p][name] = value.to(device=p.device, dtype=torch.float32, copy=True)


register(OptimizerEntry(
    name="Adam8bit",
    cls=Adam8bit,
    canon_id="8-bit-optimizers",
    family="quantized-state",
    aliases=("AdamW8bit", "adamw_8bit"),
    recipe={"lr": 0.05, "min_8bit_size": 0},
    recipes={"rosenbrock": {"lr": 0.01}},
    # The test problems are far smaller than bitsandbytes' 4096-entry threshold, so the recipe
    # quantizes every tensor; the variants cover the paper's block size and the unquantized path.
    variants={"block_2048": {"block_size": 2048}, "small_tensors_32bit": {"min_8bit_size": 4096}},
    errors=invalid("lr", "eps", "weight_decay", betas=(0.9, 1.0)) + (
        ErrorInput({"block_size": 512}, "block_size"),
        ErrorInput({"min_8bit_size": -1}, "min_8bit_size"),
    ),
))
