"""Adam-mini: Adam with one second-moment value per parameter block (Zhang et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register
from ..blocks import bias_correction, decoupled_decay_, ema_

#: The block kinds a parameter can be partitioned into.
BLOCKS = ("adam", "head", "row", "tensor")

# Substrings of (lower-cased) parameter names that choose a block, as in the official code (version 1.1.1).
EMBEDDING_NAMES = ("embed", "embd", "wte")
OUTPUT_NAMES = ("lm_head", "output", "final_layer")
QUERY_KEY_NAMES = ("k_proj", "q_proj", "wq", "wk", "query", "key")
VALUE_NAMES = ("v_proj", "wv", "value")
ATTENTION_OUTPUT_NAMES = ("o_proj", "wo", "attn.proj")
MLP_NAMES = ("feed_forward", "linear", "mlp")


def block_of(name: str, param: torch.Tensor) -> str:
    """The block kind the official partition gives the parameter called ``name``.

    Biases: per coordinate (``adam``); query and key matrices: one value per head (``head``);
    embeddings, output layers, values, attention outputs and MLPs: one per output row (``row``);
    anything else (normalization weights): one per tensor (``tensor``). A tensor of fewer than
    two dimensions whose name asks for rows or heads gets one value per tensor.
    """
    name = name.lower()
    if "bias" in name:
        return "adam"
    if param.ndim < 2:
        return "tensor"
    if any(n in name for n in QUERY_KEY_NAMES):
        return "head"
    if any(n in name for n in EMBEDDING_NAMES + OUTPUT_NAMES + VALUE_NAMES + MLP_NAMES + ATTENTION_OUTPUT_NAMES):
        return "row"
    return "tensor"


def block_shape(param: torch.Tensor, block: str, head_numel: int) -> tuple[int, int]:
    """(number of blocks, block size) of ``param`` under the block kind ``block``."""
    n = param.numel()
    if block == "adam":
        return n, 1
    if block == "head":
        if n % head_numel:
            raise ValueError(f"a head block needs a multiple of dim * dim / n_heads = {head_numel} entries, got {n}")
        return n // head_numel, head_numel
    if block == "row" and param.ndim >= 2:
        return param.shape[0], n // param.shape[0]
    return 1, n


def adam_mini_update(param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, *,
                     step: int, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """One Adam-mini step for one tensor, in place; ``exp_avg_sq`` has shape (blocks, 1).

    m <- b1 m + (1 - b1) g;  v_b <- b2 v_b + (1 - b2) mean_{i in b} g_i^2;
    theta <- (1 - lr wd) theta - lr (m / (1 - b1^t)) / (sqrt(v_b / (1 - b2^t)) + eps).
    """
    blocks = exp_avg_sq.shape[0]
    ema_(exp_avg, grad, beta1)
    ema_(exp_avg_sq, grad.reshape(blocks, -1).square().mean(dim=1, keepdim=True), beta2)
    denom = (exp_avg_sq / bias_correction(beta2, step)).sqrt_().add_(eps)
    update = (exp_avg.reshape(blocks, -1) / bias_correction(beta1, step)).div_(denom)
    decoupled_decay_(param, lr, weight_decay).add_(update.view_as(param), alpha=-lr)


class AdamMini(ZijOptimizer):
    r"""Adam-mini: Adam's momentum with one second-moment value per parameter block.

    Each block of coordinates shares one learning rate: the running mean over the
    block of the squared gradient replaces Adam's per-coordinate $v$, which removes
    nearly all of the second-moment memory (the first moment stays full). The
    partition follows the official code and is chosen from parameter names, so
    the optimizer is built from a model: ``AdamMini(model.named_parameters(), ...)``
    or ``AdamMini.from_model(model, ...)``. Named parameters each get their own
    group with ``name`` and ``block``: biases take plain Adam (``"adam"``), query
    and key matrices one value per head of ``dim * dim / n_heads`` entries
    (``"head"``), embeddings, output layers, values, attention outputs and MLP
    matrices one value per output row (``"row"``), and everything else, such as
    normalization weights, one value per tensor (``"tensor"``); names containing
    ``norm``, ``ln`` or ``bias`` get no weight decay. Plain tensors or parameter
    groups are accepted too and use ``block`` (default one value per tensor, the
    official fallback, which the authors warn can be unstable for large
    Transformers); a group may set its own ``"block"``.

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    v_{t,b} &= \beta_2 v_{t-1,b} + (1-\beta_2)\, \frac{1}{\lvert b\rvert} \sum_{i \in b} g_{t,i}^{2} \qquad \text{for each block } b \\
    \theta_{t,i} &= \theta_{t-1,i} - \eta\, \frac{m_{t,i}/(1-\beta_1^{t})}{\sqrt{v_{t,b(i)}/(1-\beta_2^{t})} + \epsilon} - \eta \lambda\, \theta_{t-1,i}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: ``(name, parameter)`` pairs (``model.named_parameters()``), or parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, decay rates of the momentum and of the block second moments.
        eps: $\epsilon$ added to the denominator.
        weight_decay: decoupled weight decay $\lambda$ (not applied to named norm and bias parameters).
        dim: hidden size of the Transformer, which sets the head size ``dim * dim // n_heads``.
        n_heads: number of attention heads.
        block: block kind of parameters given without names: ``"tensor"``, ``"row"``, ``"head"`` or ``"adam"``.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential()
        >>> model.add_module("mlp", torch.nn.Linear(4, 2))
        >>> opt = zij.AdamMini.from_model(model, lr=1e-3, weight_decay=0.1)
        >>> {g["name"]: (g["block"], g["weight_decay"]) for g in opt.param_groups}
        {'mlp.weight': ('row', 0.1), 'mlp.bias': ('adam', 0.0)}
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Zhang et al., "Adam-mini: Use Fewer Learning Rates To Gain More", ICLR 2025.
        https://arxiv.org/abs/2406.16793
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0, *,
                 dim: int = 2048, n_heads: int = 32, block: str = "tensor", maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        check_int(dim, "dim")
        check_int(n_heads, "n_heads")
        if (dim * dim) % n_heads:
            raise ValueError(f"Invalid n_heads: {n_heads!r} (dim * dim = {dim * dim} must be a multiple of it)")
        if block not in BLOCKS:
            raise ValueError(f"Invalid block: {block!r} (expected one of {', '.join(BLOCKS)})")
        defaults = hyperparameters(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, dim=dim, n_heads=n_heads,
                                   block=block, maximize=maximize, state_dtype=state_dtype)
        params = list(params)
        if params and isinstance(params[0], tuple):  # named parameters: one group each, partitioned by name
            groups = []
            for name, p in params:
                if not p.requires_grad:
                    continue
                exempt = any(s in name.lower() for s in ("norm", "ln", "bias"))
                groups.append({"params": [p], "name": name, "block": block_of(name, p),
                               **({"weight_decay": 0.0} if exempt else {})})
            params = groups
        super().__init__(params, defaults)
        for group in self.param_groups:
            if group["block"] not in BLOCKS:
                raise ValueError(f"Invalid block: {group['block']!r} (expected one of {', '.join(BLOCKS)})")

    @classmethod
    def from_model(cls, model: torch.nn.Module, **kwargs) -> AdamMini:
        """Adam-mini over ``model.named_parameters()``, partitioned by parameter names."""
        return cls(model.named_parameters(), **kwargs)

    def init_state(self, p, state, group):
        state["step"] = 0
        state["exp_avg"] = self.zeros_like(p, group)
        blocks, _ = block_shape(p, group["block"], group["dim"] * group["dim"] // group["n_heads"])
        state["exp_avg_sq"] = torch.zeros(blocks, 1, dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        adam_mini_update(p, grad, state["exp_avg"], state["exp_avg_sq"], step=state["step"], lr=group["lr"],
                         beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="AdamMini",
    cls=AdamMini,
    canon_id="adam-mini",
    family="adam-family",
    aliases=("Adam-mini", "Adam_mini"),
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=(*invalid("lr", "betas", "eps", "weight_decay"), ErrorInput({"dim": 0}, "dim"),
            ErrorInput({"n_heads": 3, "dim": 4}, "n_heads"), ErrorInput({"block": "layer"}, "block")),
    # one value per output row; Adam (one value per coordinate) is the block kind of biases.
    # Parity with the adam-mini package needs named parameters: tests/optim/test_adam_mini.py.
    variants={"row": {"block": "row"}, "adam": {"block": "adam"}},
))
