r"""Building blocks that zij's update rules are written from.

Each block is a small function that either updates a state tensor in place (names end
in ``_``) or returns a direction. Every block takes a tensor or a
:class:`~zij._tensorlist.TensorList` (a list of tensors, stepped with torch's
multi-tensor kernels) and gives the same numbers for both, so one rule serves the
per-tensor loop and the foreach path. Per-tensor quantities (the cautious mask's scale,
a trust ratio) are computed per tensor in both forms.

Example:
    >>> m, v, g = torch.zeros(3), torch.zeros(3), torch.tensor([1.0, -2.0, 0.5])
    >>> _ = ema_(m, g, 0.9), ema_sq_(v, g, 0.999)
    >>> adam_direction(m, v, step=1, beta1=0.9, beta2=0.999, eps=0.0)
    tensor([ 1., -1.,  1.])
"""

from __future__ import annotations

from typing import Union

import torch

from ._tensorlist import TensorList

Many = Union[torch.Tensor, TensorList]


# --- moments -------------------------------------------------------------------------
def ema_(avg: Many, x: Many, beta: float) -> Many:
    r"""Exponential moving average in place: $a \leftarrow \beta a + (1-\beta) x$."""
    return avg.mul_(beta).add_(x, alpha=1 - beta)


def ema_sq_(avg: Many, x: Many, beta: float) -> Many:
    r"""Moving average of squares in place: $a \leftarrow \beta a + (1-\beta) x \odot x$."""
    return avg.mul_(beta).addcmul_(x, x, value=1 - beta)


def bias_correction(beta: float, step: int) -> float:
    r"""Adam's bias correction $1 - \beta^t$ of a moving average started at zero."""
    return 1 - beta**step


def debiased_beta(beta: float, step: int) -> float:
    r"""The decay $\beta (1-\beta^{t-1}) / (1-\beta^t)$ whose average needs no bias correction."""
    return beta * (1 - beta ** (step - 1)) / (1 - beta**step)


def adam_direction(m: Many, v: Many, *, step: int, beta1: float, beta2: float, eps: float) -> Many:
    r"""Adam's direction $\hat m / (\sqrt{\hat v} + \epsilon)$ with $\hat m = m/(1-\beta_1^t)$,
    $\hat v = v/(1-\beta_2^t)$, as a new tensor."""
    denom = (v / bias_correction(beta2, step)).sqrt_().add_(eps)
    return (m / bias_correction(beta1, step)).div_(denom)


def minimum_(x: Many, other: Many) -> Many:
    """Elementwise minimum in place: $x \\leftarrow \\min(x, y)$."""
    if isinstance(x, TensorList):
        return x.minimum_(other)
    return torch.minimum(x, other, out=x)


def zeros_to_inf_(x: Many) -> Many:
    """Replace exact zeros by +inf in place (a denominator that must not divide where nothing accumulated)."""
    if isinstance(x, TensorList):
        for t in x:
            zeros_to_inf_(t)
        return x
    return x.masked_fill_(x == 0, float("inf"))


def per_tensor(fn, *xs):
    """``fn`` on each tensor of TensorLists, or once on plain tensors.

    For a rule's per-tensor part (a norm, a projection, a test on the tensor's shape) inside an
    otherwise multi-tensor step. With TensorLists the results come back as a TensorList when
    they are tensors and as a list otherwise (per-tensor numbers, which foreach kernels accept
    as scalar lists).
    """
    if not isinstance(xs[0], TensorList):
        return fn(*xs)
    out = []
    for i in range(len(xs[0])):
        out.append(fn(*[x[i] for x in xs]))
    return TensorList(out) if out and isinstance(out[0], torch.Tensor) else out


# --- decay ---------------------------------------------------------------------------
def decoupled_decay_(param: Many, lr: float, weight_decay: float) -> Many:
    r"""Decoupled weight decay in place (Loshchilov and Hutter): $\theta \leftarrow (1 - \eta\lambda)\,\theta$."""
    return param.mul_(1 - lr * weight_decay)


def l2_into_grad(grad: Many, param: Many, weight_decay: float) -> Many:
    r"""Classic L2 regularization folded into the gradient: $g + \lambda \theta$ (a new tensor)."""
    if weight_decay == 0:
        return grad
    return grad.add(param, alpha=weight_decay)


# --- directions ----------------------------------------------------------------------
def nonfinite_into_(out: Many, *sources: Many) -> Many:
    r"""Make ``out`` NaN wherever a source is NaN or infinite, in place; finite values keep their bits.

    Rules that squash their input (``sign``, ``atan2``, ``clamp``, masks) would otherwise turn a
    non-finite gradient into a finite step while its NaN stays in the state, silently freezing
    that coordinate for every later step; with this the NaN reaches the parameter, where it is
    seen. It adds $0 \cdot s$: zero for finite $s$, NaN for NaN and $\pm\infty$.
    """
    for source in sources:
        out.add_(source, alpha=0)
    return out


def sign_direction(x: Many) -> Many:
    r"""$\operatorname{sign}(x)$ as a new tensor (signSGD, Lion), NaN where $x$ is not finite.

    torch's ``sign`` maps NaN to 0; see :func:`nonfinite_into_` for why zij keeps it NaN.
    """
    return nonfinite_into_(x.sign(), x)


def atan2_direction(m_hat: Many, v_hat: Many, *, a: float = 1.2732395447351628, b: float = 1.0) -> Many:
    r"""Adam-atan2's epsilon-free direction $a \operatorname{atan2}(\hat m, b \sqrt{\hat v})$ (Everett et al., 2024).

    The default $a = 4/\pi$ makes the direction match Adam's where $|\hat m| \ll \sqrt{\hat v}$.
    """
    return nonfinite_into_(m_hat.clone().atan2_(v_hat.sqrt().mul_(b)).mul_(a), m_hat, v_hat)


def cautious_(update: Many, grad: Many) -> Many:
    r"""The cautious mask (Liang et al., 2024) in place: keep coordinates where $u \odot g > 0$ and
    rescale by $d / (\operatorname{nnz}(\phi) + 1)$ per tensor, $d$ its number of entries."""
    if isinstance(update, TensorList):
        for u, g in zip(update, grad):
            cautious_(u, g)
        return update
    mask = (update * grad > 0).to(update.dtype)
    return update.mul_(mask).mul_(mask.numel() / (mask.sum() + 1))


def grams_(update: Many, grad: Many) -> Many:
    r"""Grams' sign rule in place (Cao et al., 2024): $u \leftarrow \operatorname{sign}(g) \odot |u|$."""
    return update.abs_().mul_(grad.sign())


def orthograd(grad: Many, param: Many, eps: float = 1e-30) -> Many:
    r"""OrthoGrad (Prieto et al., 2025): the gradient without its component along the weights,
    rescaled to the gradient's norm, as a new tensor:
    $g_\perp = g - \frac{\langle \theta, g\rangle}{\langle \theta, \theta\rangle + \epsilon}\theta$,
    $\tilde g = g_\perp \, \|g\| / (\|g_\perp\| + \epsilon)$. A tensor with one entry is returned as is."""
    if isinstance(grad, TensorList):
        return grad.map(orthograd, param, [eps] * len(grad))
    if grad.numel() <= 1:  # a single entry has no direction but the weight's own
        return grad
    w, g = param.reshape(-1), grad.reshape(-1)
    projection = torch.dot(w, g) / (torch.dot(w, w) + eps)
    perpendicular = g - projection * w
    scale = torch.linalg.vector_norm(g) / (torch.linalg.vector_norm(perpendicular) + eps)
    return (perpendicular * scale).view_as(grad)


# --- matrices ------------------------------------------------------------------------
#: Coefficients (a, b, c) of the quintic Newton-Schulz iteration used by Muon (Jordan et al., 2024).
MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def newton_schulz(g: torch.Tensor, steps: int = 5, *, coefficients: tuple[float, float, float] = MUON_COEFFICIENTS,
                  eps: float = 1e-7, dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""Approximate orthogonalization $U V^\top$ of $G = U \Sigma V^\top$ by the quintic Newton-Schulz iteration.

    $X_0 = G / (\|G\|_F + \epsilon)$, then ``steps`` times
    $A = X X^\top$, $X \leftarrow a X + (b A + c A^2) X$. Works on a matrix or a batch
    ``(..., m, n)`` (each matrix normalized by its own Frobenius norm); a tall matrix is
    iterated on its transpose. With Muon's coefficients the singular values land in
    roughly [0.7, 1.2] rather than exactly on one; that is the method's design.
    ``dtype`` sets the working precision (Muon uses bfloat16 on accelerators).
    """
    if g.ndim < 2:
        raise ValueError(f"newton_schulz needs a matrix or a batch of matrices, got shape {tuple(g.shape)}")
    a, b, c = coefficients
    x = g.to(dtype or g.dtype)
    tall = x.size(-2) > x.size(-1)
    if tall:
        x = x.mT
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    for _ in range(steps):
        gram = x @ x.mT
        x = a * x + (b * gram + c * gram @ gram) @ x
    if tall:
        x = x.mT
    return x.to(g.dtype)


def trust_ratio(param: Many, update: Many) -> Many:
    r"""Layer-wise trust ratio $\|\theta\| / \|u\|$ (LARS, LAMB), or 1 where either norm is zero (0-dim tensor)."""
    if isinstance(param, TensorList):
        return param.map(trust_ratio, update)
    weight_norm = torch.linalg.vector_norm(param)
    update_norm = torch.linalg.vector_norm(update)
    return torch.where((weight_norm > 0) & (update_norm > 0), weight_norm / update_norm, torch.ones_like(weight_norm))


def factored_ema_(row: torch.Tensor, col: torch.Tensor, grad_sq: torch.Tensor, beta: float) -> None:
    r"""Adafactor's factored second moment in place: row means $r$ and column means $c$ of $g^2$
    (over the last two dimensions) as moving averages with decay ``beta``."""
    ema_(row, grad_sq.mean(dim=-1), beta)
    ema_(col, grad_sq.mean(dim=-2), beta)


def factored_reconstruct(row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    r"""The rank-one second moment $\hat v_{ij} = r_i c_j / \operatorname{mean}(r)$ from row and column means."""
    return (row / row.mean(dim=-1, keepdim=True)).unsqueeze(-1) * col.unsqueeze(-2)


# --- precision -----------------------------------------------------------------------
def stochastic_round_(target: torch.Tensor, source: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Copy float32 ``source`` into bfloat16 ``target`` with stochastic rounding, in place.

    A uniformly random integer in $[0, 2^{16})$ is added to the float32 bit pattern and
    the low 16 bits are cut, so each value rounds to one of its two bfloat16 neighbours
    with probability proportional to closeness: the rounding is unbiased in expectation,
    and small updates to bfloat16 weights are not lost. Non-finite values are copied as is.
    """
    if target.dtype != torch.bfloat16:
        raise ValueError(f"stochastic_round_ writes bfloat16 tensors, got {target.dtype}")
    src = source.to(torch.float32)
    noise = torch.randint(0, 1 << 16, src.shape, dtype=torch.int32, device=src.device, generator=generator)
    bits = (src.view(torch.int32) + noise) & -65536
    rounded = bits.view(torch.float32)
    rounded = torch.where(torch.isfinite(src), rounded, src)
    return target.copy_(rounded)


__all__ = [
    "Many", "ema_", "ema_sq_", "bias_correction", "debiased_beta", "adam_direction", "decoupled_decay_",
    "l2_into_grad", "sign_direction", "atan2_direction", "minimum_", "zeros_to_inf_", "per_tensor", "cautious_", "grams_", "orthograd",
    "MUON_COEFFICIENTS", "newton_schulz", "trust_ratio", "factored_ema_", "factored_reconstruct",
    "stochastic_round_",
]
