"""Scion: steps to the linear minimization oracle of a per-layer norm ball (Pethick et al., 2025)."""

from __future__ import annotations

import builtins
import math

import torch

from .._base import ZijOptimizer, check_int, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, Variant, invalid, register
from ..blocks import ema_, newton_schulz, sign_direction

_EPS = 1e-8


def _spectral(g, *, ns_dtype, max=False, normalized=True, steps=5):
    d_out, d_in = g.shape
    scale = (d_out / d_in) ** 0.5 if normalized else d_out**0.5
    if max:
        scale = builtins.max(1.0, scale)
    return newton_schulz(g.to(ns_dtype or g.dtype), steps) * scale


def _spectral_conv(g, *, ns_dtype, steps=5):
    x = newton_schulz(g.reshape(len(g), -1).to(ns_dtype or g.dtype), steps).view(g.shape)
    if g.ndim in (3, 4):
        out_channels, in_channels, k = g.shape[:3]
        x = x * ((out_channels / in_channels) ** 0.5 / k ** (g.ndim - 2))
    return x


def _col_norm(g, *, ns_dtype, normalized=False, transpose=False):
    if transpose:
        g = g.transpose(0, 1)
    rms = g.square().sum(dim=0, keepdim=True).sqrt() / math.sqrt(g.size(0))
    if normalized:
        rms = rms * g.size(1)
    g = g / (rms + _EPS)
    return g.transpose(0, 1) if transpose else g


def _row_norm(g, *, ns_dtype, normalized=True, transpose=False):
    if transpose:
        g = g.transpose(0, 1)
    rms = g.square().sum(dim=-1, keepdim=True).sqrt()
    if normalized:
        rms = rms * math.sqrt(g.size(-1))
    g = g / (rms + _EPS)
    return g.transpose(0, 1) if transpose else g


def _bias_rms(g, *, ns_dtype):
    return g / (g.square().mean(dim=0, keepdim=True).sqrt() + _EPS)


def _sign(g, *, ns_dtype, normalized=True, zero_init=False):
    d_out, d_in = g.shape
    return sign_direction(g) / d_in if normalized else sign_direction(g)


def _auto(g, *, ns_dtype):
    if g.ndim >= 3:
        return _spectral_conv(g, ns_dtype=ns_dtype)
    if g.ndim == 2:
        return _spectral(g, ns_dtype=ns_dtype)
    return _bias_rms(g, ns_dtype=ns_dtype)


#: The official code's norms, by name: each returns the oracle's direction (before the radius and the minus sign).
NORMS = {"Auto": _auto, "Spectral": _spectral, "SpectralConv": _spectral_conv, "ColNorm": _col_norm,
         "RowNorm": _row_norm, "BiasRMS": _bias_rms, "Sign": _sign}
#: Options each norm takes in ``norm_kwargs``.
NORM_OPTIONS = {"Auto": (), "Spectral": ("max", "normalized", "steps"), "SpectralConv": ("steps",),
                "ColNorm": ("normalized", "transpose"), "RowNorm": ("normalized", "transpose"), "BiasRMS": (),
                "Sign": ("normalized", "zero_init")}


def scion_update(param: torch.Tensor, grad: torch.Tensor, momentum_buffer: torch.Tensor | None, *, lr: float,
                 momentum: float, norm: str, norm_kwargs: dict, scale: float, unconstrained: bool,
                 ns_dtype: torch.dtype | None) -> None:
    r"""One Scion step for one tensor, in place.

    d <- (1 - alpha) d + alpha g (no buffer when alpha = 1);  v = scale * lmo(d);
    theta <- (1 - lr) theta - lr v (constrained) or theta - lr v (unconstrained).
    """
    d = grad if momentum_buffer is None else ema_(momentum_buffer, grad.to(momentum_buffer.dtype), 1 - momentum)
    update = NORMS[norm](d, ns_dtype=ns_dtype, **norm_kwargs) * scale
    if not unconstrained:
        param.mul_(1 - lr)
    param.add_(update, alpha=-lr)


class Scion(ZijOptimizer):
    r"""Scion: step to the linear minimization oracle of a norm ball chosen per parameter group.

    A momentum average $d_t$ of the gradients is sent to the linear minimization oracle (LMO) of
    a norm ball of radius $\rho$ (``scale``): the point of the ball most opposed to $d_t$. The
    spectral norm gives Muon's orthogonalized direction (quintic Newton-Schulz, scaled by
    $\sqrt{d_{\mathrm{out}}/d_{\mathrm{in}}}$), the max-norm ball sign descent; ``norm="Auto"`` (the
    default) takes the spectral oracle for matrices, its convolution form for 3-D and 4-D kernels
    and an RMS normalization for vectors and scalars. The official recipe gives hidden layers
    ``"Spectral"``, the output layer ``"Sign"`` and the input layer ``"ColNorm"``, each in its own
    group with its own ``scale``. The constrained update (the default) shrinks the weights
    towards the ball, which acts like weight decay. The official code's ``init()``, which
    initializes weights for each norm, is not part of this class.

    $$
    \begin{aligned}
    d_t &= (1-\alpha)\, d_{t-1} + \alpha\, g_t, \qquad d_0 = 0 \quad (\alpha = 1 \text{ keeps no buffer: } d_t = g_t) \\
    v_t &= \operatorname{lmo}(d_t) = \operatorname*{arg\,min}_{\lVert x\rVert \le \rho} \langle d_t, x\rangle \\
    \theta_t &= \theta_{t-1} + \gamma\, v_t \qquad \text{(unconstrained, uSCG)} \\
    \theta_t &= (1-\gamma)\, \theta_{t-1} + \gamma\, v_t \qquad \text{(constrained, SCG; the code default)}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups (each may set ``norm``, ``norm_kwargs``, ``scale``).
        lr: step size $\gamma$.
        momentum: weight $\alpha$ of the new gradient, one minus the usual momentum (1: no averaging).
        norm: the norm whose oracle is taken: ``"Auto"``, ``"Spectral"``, ``"SpectralConv"``, ``"ColNorm"``,
            ``"RowNorm"``, ``"BiasRMS"`` or ``"Sign"`` (``"Spectral"`` and ``"Sign"`` take matrices only).
        norm_kwargs: options of the norm, as in the official code: ``Spectral``: ``max``, ``normalized``,
            ``steps``; ``SpectralConv``: ``steps``; ``ColNorm`` and ``RowNorm``: ``normalized``,
            ``transpose``; ``Sign``: ``normalized``, ``zero_init`` (used by the official ``init`` only).
        scale: radius $\rho$ of the norm ball.
        unconstrained: take the unconstrained step (uSCG) instead of the constrained one (SCG).
        ns_dtype: dtype the Newton-Schulz iteration and its scaling run in (the official code:
            ``torch.bfloat16``); ``None``: the gradient's.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's).

    Example:
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
        >>> opt = zij.Scion([{"params": [model[0].weight], "norm": "ColNorm", "scale": 10.0},
        ...                  {"params": [model[2].weight], "norm": "Sign", "scale": 100.0},
        ...                  {"params": [model[0].bias, model[2].bias], "norm": "BiasRMS"}], lr=2**-8)
        >>> model(torch.randn(16, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Pethick et al., "Training Deep Learning Models with Norm-Constrained LMOs", ICML 2025.
        https://arxiv.org/abs/2502.07529 (official code: https://github.com/LIONS-EPFL/scion)
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.1, norm: str = "Auto",
                 norm_kwargs: dict | None = None, scale: float = 1.0, unconstrained: bool = False, *,
                 ns_dtype: torch.dtype | None = torch.bfloat16, maximize: bool = False,
                 state_dtype: torch.dtype | None = None):
        if ns_dtype is not None and not (isinstance(ns_dtype, torch.dtype) and ns_dtype.is_floating_point):
            raise ValueError(f"Invalid ns_dtype: {ns_dtype!r} (expected a floating torch.dtype or None)")
        # momentum is the new gradient's weight, in (0, 1] (checked per group), not hyperparameters()'s [0, 1)
        super().__init__(params, {"momentum": momentum, **hyperparameters(
            lr=lr, norm=norm, norm_kwargs=dict(norm_kwargs or {}), scale=scale,
            unconstrained=bool(unconstrained), ns_dtype=ns_dtype, maximize=maximize, state_dtype=state_dtype)})

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        momentum = group["momentum"]
        if not isinstance(momentum, (int, float)) or not 0 < momentum <= 1:
            raise ValueError(f"Invalid momentum: {momentum!r} (expected a number in (0, 1]: the weight of the new gradient)")
        check_positive(group["scale"], "scale")
        norm = group["norm"]
        if norm not in NORMS:
            raise ValueError(f"Invalid norm: {norm!r} (expected one of {', '.join(NORMS)})")
        unknown = sorted(set(group["norm_kwargs"]) - set(NORM_OPTIONS[norm]))
        if unknown:
            raise ValueError(f"Invalid norm_kwargs: {norm} takes no option {', '.join(unknown)} "
                             f"(it takes: {', '.join(NORM_OPTIONS[norm]) or 'none'})")
        if "steps" in group["norm_kwargs"]:
            check_int(group["norm_kwargs"]["steps"], "norm_kwargs['steps']", minimum=0)
        matrices_only = norm in ("Spectral", "Sign", "ColNorm", "RowNorm")
        bad = [tuple(p.shape) for p in group["params"]
               if (matrices_only and p.ndim != 2) or (norm == "SpectralConv" and p.ndim < 2)]
        if bad:
            raise ValueError(f"Invalid norm: {norm} cannot step tensors of shapes {bad} "
                             "(use 'Auto', or 'BiasRMS' for vectors)")

    def init_state(self, p, state, group):
        state["step"] = 0
        if group["momentum"] != 1:
            state["momentum_buffer"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        scion_update(p, grad, state.get("momentum_buffer"), lr=group["lr"], momentum=group["momentum"],
                     norm=group["norm"], norm_kwargs=group["norm_kwargs"], scale=group["scale"],
                     unconstrained=group["unconstrained"], ns_dtype=group["ns_dtype"])


register(OptimizerEntry(
    name="Scion",
    cls=Scion,
    canon_id="scion",
    family="orthogonalized",
    aliases=("SCG", "uSCG"),
    recipe={"lr": 0.02, "unconstrained": True},
    recipes={"quadratic": {"lr": 0.05}, "rosenbrock": {"lr": 0.005}},
    capabilities=Capabilities(elementwise=False),
    variants={
        "constrained": Variant({"unconstrained": False, "scale": 0.05}, skips={
            check: "the constrained step (SCG) keeps the weights in the ball of radius scale in the layer's "
                   "norm (its fixed points lie on the ball), so it cannot reach this problem's minimum, which "
                   "lies outside any ball small enough for the quadratic's" for check in ("logistic", "rosenbrock")}),
        "no_momentum": {"momentum": 1.0},
        "float_ns": {"ns_dtype": None},
    },
    errors=invalid("lr") + (
        ErrorInput({"momentum": 0.0}, "momentum"),
        ErrorInput({"momentum": 1.5}, "momentum"),
        ErrorInput({"scale": 0.0}, "scale"),
        ErrorInput({"norm": "Frobenius"}, "norm"),
        ErrorInput({"norm": "Spectral", "norm_kwargs": {"power": 2}}, "norm_kwargs"),
        ErrorInput({"ns_dtype": torch.int64}, "ns_dtype"),
    ),
    # pytorch-optimizer's SCION iterates Newton-Schulz in bfloat16 with fused kernels and takes the
    # constrained flag inverted: tests/optim/test_scion.py drives it, norm by norm.
))
