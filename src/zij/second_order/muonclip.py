"""MuonClip: Moonlight's Muon followed by QK-Clip of attention projections (Kimi Team, 2025)."""

from __future__ import annotations

import math

import torch

from .._base import check_positive, check_unit
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, newton_schulz
from .muon_aux_adam import MuonWithAuxAdam, routed_defaults

__all__ = ["MuonClip", "muonclip_matrix_update", "qk_clip_"]

#: Roles a group may declare with ``qk_clip``, and the power of the head's factor each is scaled by
#: (``alpha``: ``qk_clip_alpha``); shared rotary keys are left unchanged.
QK_CLIP_ROLES = ("query", "key", "query_rotary", "key_rotary")


def muonclip_matrix_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor,
    *,
    lr: float,
    momentum: float,
    ns_steps: int,
    ns_dtype: torch.dtype | None,
    weight_decay: float,
) -> None:
    r"""One step of Moonlight's Muon for one matrix (a kernel is flattened to ``size(0)`` rows), in place.

    M <- mu M + G;  O = 0.2 sqrt(max(m, n)) NS(M);  theta <- (1 - lr wd) theta - lr O.
    """
    momentum_buffer.mul_(momentum).add_(grad.to(momentum_buffer.dtype))
    matrix = momentum_buffer.to(grad.dtype).reshape(grad.size(0), -1)
    rows, cols = matrix.shape
    update = newton_schulz(matrix.to(ns_dtype or matrix.dtype), ns_steps).to(grad.dtype)
    decoupled_decay_(param, lr, weight_decay).add_(update.view(param.shape), alpha=-lr * 0.2 * math.sqrt(max(rows, cols)))


def qk_clip_(param: torch.Tensor, max_logits: torch.Tensor, *, threshold: float, exponent: float) -> None:
    r"""QK-Clip in place: scale the rows of head $h$ by $\gamma_h^{p}$, $\gamma_h = \min(1, \tau / S^h_{\max})$.

    ``max_logits`` holds one maximum pre-softmax logit per head; the rows of ``param`` must be
    contiguous blocks of equal size, one per head.
    """
    heads = max_logits.numel()
    if param.ndim == 0 or param.size(0) % heads != 0:
        raise ValueError(f"QK-Clip needs a first dimension divisible by the {heads} heads, got shape {tuple(param.shape)}")
    dtype = torch.promote_types(param.dtype, torch.float32)  # the factor in at least float32
    gamma = threshold / max_logits.detach().to(device=param.device, dtype=dtype).clamp_min(threshold)
    scale = gamma.pow_(exponent).to(param.dtype).repeat_interleave(param.size(0) // heads)
    param.mul_(scale.view(-1, *([1] * (param.ndim - 1))))


class MuonClip(MuonWithAuxAdam):
    r"""MuonClip: Moonlight's Muon with weight decay and RMS matching, then QK-Clip of attention heads.

    The matrix rule is the Muon of Moonlight and Kimi K2: momentum without dampening,
    no Nesterov blend, the quintic Newton-Schulz orthogonalization, the update scaled by
    $0.2\sqrt{\max(m, n)}$ so its RMS matches AdamW's, and decoupled weight decay; tensors of
    fewer than two dimensions are stepped by AdamW (a group's ``use_muon`` key overrides the
    routing by shape, see :class:`MuonWithAuxAdam`). QK-Clip needs the model's attention
    logits, which an optimizer cannot see, so it follows a protocol: a group of query or key
    projection weights declares ``qk_clip`` (``"query"``, ``"key"``, ``"query_rotary"`` or
    ``"key_rotary"``) and ``attention_name``, with its heads' rows in contiguous blocks; after
    the forward pass the caller collects each attention's largest pre-softmax logit per head
    over the batch (reduced over micro-batches and ranks) and passes them as
    ``step(attention_max_logits={name: tensor of shape (heads,)})``. After the update, each head
    over the threshold $\tau$ has its query rows scaled by $\gamma_h^{\alpha}$ and its key rows by
    $\gamma_h^{1-\alpha}$ (rotary query parts of multi-head latent attention by $\gamma_h$; the shared
    rotary key is left alone), which caps that head's logit at $\tau$. Without
    ``attention_max_logits`` the step is Muon alone.

    $$
    \begin{aligned}
    M_t &= \mu M_{t-1} + G_t \\
    O_t &= 0.2\, \sqrt{\max(m, n)}\; \operatorname{NS}_K(M_t) \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, O_t \\
    X_0 &= \frac{M_t}{\lVert M_t\rVert_F + 10^{-7}}, \qquad X_{k+1} = a X_k + \left(b A_k + c A_k^{2}\right) X_k, \quad A_k = X_k X_k^{\top}, \quad (a, b, c) = (3.4445, -4.7750, 2.0315) \\
    &\text{QK-Clip, after the step:} \quad \gamma_h = \min\!\left(1, \frac{\tau}{S^{h}_{\max}}\right), \qquad W^{h}_{q} \leftarrow \gamma_h^{\alpha}\, W^{h}_{q}, \qquad W^{h}_{k} \leftarrow \gamma_h^{1-\alpha}\, W^{h}_{k}, \qquad W^{h}_{qr} \leftarrow \gamma_h\, W^{h}_{qr} \\
    &\text{other tensors (AdamW):} \quad m_t = \beta_{a1} m_{t-1} + (1-\beta_{a1})\, g_t, \qquad s_t = \beta_{a2} s_{t-1} + (1-\beta_{a2})\, g_t^{2} \\
    \theta_t &= (1 - \eta_a\lambda_a)\,\theta_{t-1} - \eta_a\, \frac{m_t / (1-\beta_{a1}^{t})}{\sqrt{s_t / (1-\beta_{a2}^{t})} + \epsilon_a}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups; a group may set ``use_muon`` (``None``:
            route by shape, ``True``: Muon, ``False``: AdamW), and ``qk_clip`` with ``attention_name``.
        lr: learning rate $\eta$ of the matrices.
        momentum: momentum $\mu$ (the buffer sums gradients without dampening).
        weight_decay: decoupled weight decay $\lambda$ of the matrices (Moonlight and Kimi K2 use 0.1).
        qk_clip_threshold: the logit threshold $\tau$.
        qk_clip_alpha: the share $\alpha$ of the shrinking given to the queries (keys get $1-\alpha$).
        ns_steps: number $K$ of Newton-Schulz iterations.
        ns_dtype: dtype the Newton-Schulz iteration runs in (Muon's official code: ``torch.bfloat16``);
            ``None``: the gradient's.
        adam_lr: AdamW's learning rate $\eta_a$; ``None``: the group's ``lr``.
        adam_betas: AdamW's $(\beta_{a1}, \beta_{a2})$.
        adam_eps: AdamW's $\epsilon_a$.
        adam_weight_decay: AdamW's decoupled weight decay $\lambda_a$.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> wq, wk = torch.nn.Linear(8, 8, bias=False), torch.nn.Linear(8, 8, bias=False)  # 2 heads of 4
        >>> opt = zij.MuonClip([{"params": wq.parameters(), "qk_clip": "query", "attention_name": "attn0"},
        ...                     {"params": wk.parameters(), "qk_clip": "key", "attention_name": "attn0"}], lr=0.02)
        >>> x = torch.randn(5, 8)
        >>> q, k = wq(x).view(5, 2, 4).transpose(0, 1), wk(x).view(5, 2, 4).transpose(0, 1)
        >>> logits = q @ k.transpose(-1, -2) / 2.0
        >>> logits.softmax(-1).square().sum().backward()
        >>> opt.step(attention_max_logits={"attn0": logits.detach().amax(dim=(-2, -1))})

    References:
        Kimi Team, "Kimi K2: Open Agentic Intelligence", 2025 (MuonClip: section 2.1).
        https://arxiv.org/abs/2507.20534
    """

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0, *,
                 qk_clip_threshold: float = 100.0, qk_clip_alpha: float = 0.5, ns_steps: int = 5,
                 ns_dtype: torch.dtype | None = torch.bfloat16, adam_lr: float | None = 3e-4, adam_betas=(0.9, 0.95),
                 adam_eps: float = 1e-10, adam_weight_decay: float = 0.0, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        check_positive(qk_clip_threshold, "qk_clip_threshold")
        check_unit(qk_clip_alpha, "qk_clip_alpha", closed=True)
        defaults = routed_defaults(
            lr=lr, momentum=momentum, weight_decay=weight_decay, qk_clip_threshold=qk_clip_threshold,
            qk_clip_alpha=qk_clip_alpha, nesterov=False, ns_steps=ns_steps, ns_dtype=ns_dtype, adam_lr=adam_lr,
            adam_betas=adam_betas, adam_eps=adam_eps, adam_weight_decay=adam_weight_decay, maximize=maximize,
            state_dtype=state_dtype)
        del defaults["nesterov"]  # Moonlight's Muon has no Nesterov blend
        super(MuonWithAuxAdam, self).__init__(params, {**defaults, "qk_clip": None, "attention_name": None})

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        check_positive(group["qk_clip_threshold"], "qk_clip_threshold")
        check_unit(group["qk_clip_alpha"], "qk_clip_alpha", closed=True)
        if group["qk_clip"] not in (None, *QK_CLIP_ROLES):
            raise ValueError(f"Invalid qk_clip: {group['qk_clip']!r} (expected one of {QK_CLIP_ROLES} or None)")
        if group["qk_clip"] is not None and group["attention_name"] is None:
            raise ValueError("Invalid attention_name: a group with qk_clip must name its attention")

    def matrix_update(self, p, grad, state, group):
        muonclip_matrix_update(p, grad, state["momentum_buffer"], lr=group["lr"], momentum=group["momentum"],
                               ns_steps=group["ns_steps"], ns_dtype=group["ns_dtype"], weight_decay=group["weight_decay"])

    @torch.no_grad()
    def step(self, closure=None, attention_max_logits: dict[str, torch.Tensor] | None = None):
        """Perform one optimization step, then QK-Clip the labelled groups.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.
            attention_max_logits: each attention's largest pre-softmax logit per head over this batch,
                ``{attention_name: tensor of shape (heads,)}``; attentions not named are not clipped.

        Returns:
            The closure's loss, or ``None``.
        """
        loss = super().step(closure)
        if not attention_max_logits:
            return loss
        for group in self.param_groups:
            role, name = group["qk_clip"], group["attention_name"]
            if role is None or role == "key_rotary" or name not in attention_max_logits:
                continue
            logits = attention_max_logits[name]
            if logits.ndim != 1 or logits.numel() == 0:
                raise ValueError(f"attention_max_logits[{name!r}] must be a non-empty 1-D tensor (one value per head)")
            alpha = group["qk_clip_alpha"]
            exponent = {"query": alpha, "key": 1.0 - alpha, "query_rotary": 1.0}[role]
            for p in group["params"]:
                qk_clip_(p, logits, threshold=group["qk_clip_threshold"], exponent=exponent)
        return loss


register(OptimizerEntry(
    name="MuonClip",
    cls=MuonClip,
    canon_id="muonclip",
    family="orthogonalized",
    aliases=("QKClip",),
    recipe={"lr": 0.02, "adam_lr": 0.01},
    recipes={"quadratic": {"lr": 0.1}, "rosenbrock": {"lr": 0.01}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "float_ns": {"ns_dtype": None},
        "weight_decay": {"weight_decay": 0.01, "adam_weight_decay": 0.01},
    },
    errors=invalid("lr", "momentum", "weight_decay") + (
        ErrorInput({"qk_clip_threshold": 0.0}, "qk_clip_threshold"),
        ErrorInput({"qk_clip_alpha": 1.5}, "qk_clip_alpha"),
        ErrorInput({"ns_steps": -1}, "ns_steps"),
        ErrorInput({"adam_lr": -1.0}, "adam_lr"),
        ErrorInput({"adam_betas": (1.0, 0.95)}, r"adam_betas\[0\]"),
    ),
    # pytorch-optimizer's MuonClip takes only groups with an explicit use_muon flag and passes the
    # logits to step: tests/optim/test_muonclip.py drives it.
))
