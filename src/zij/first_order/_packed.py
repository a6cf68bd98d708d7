"""A moment kept SMMF-style between steps: rank-one factors of its square-matricized magnitude, and
its signs packed eight to a byte (Park and Lee, 2025). Used by AdamWAdv's ``factored`` flag."""

from __future__ import annotations

import torch

from ..memory_efficient.smmf import effective_shape, nnmf

_BITS = 8


def _weights(device) -> torch.Tensor:
    return (2 ** torch.arange(_BITS, device=device)).to(torch.uint8)


def pack_signs(x: torch.Tensor) -> torch.Tensor:
    """One bit per entry of ``x`` (1 where it is positive), eight to a ``uint8``, in flattened order."""
    bits = (x.reshape(-1) > 0).to(torch.uint8)
    pad = (-bits.numel()) % _BITS
    if pad:
        bits = torch.cat([bits, bits.new_zeros(pad)])
    return (bits.view(-1, _BITS) * _weights(x.device)).sum(dim=1, dtype=torch.uint8)


def unpack_signs(packed: torch.Tensor, numel: int) -> torch.Tensor:
    """The boolean entries :func:`pack_signs` stored, flattened (``numel`` of them)."""
    return (packed.unsqueeze(1) & _weights(packed.device)).ne(0).reshape(-1)[:numel]


def factored_state(p: torch.Tensor, dtype: torch.dtype, first: bool) -> dict[str, torch.Tensor]:
    """Zero state for ``p``: the second moment's factors, and the first moment's factors and packed signs."""
    rows, cols = effective_shape(p.numel())
    state = {"v_row": torch.zeros(rows, dtype=dtype, device=p.device),
             "v_col": torch.zeros(cols, dtype=dtype, device=p.device)}
    if first:
        state["m_row"] = torch.zeros(rows, dtype=dtype, device=p.device)
        state["m_col"] = torch.zeros(cols, dtype=dtype, device=p.device)
        state["m_sign"] = torch.zeros((p.numel() + _BITS - 1) // _BITS, dtype=torch.uint8, device=p.device)
    return state


def expand(state, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """The full first and second moments the factors stand for, shaped ``shape``."""
    v = torch.outer(state["v_row"], state["v_col"])
    m = torch.outer(state["m_row"], state["m_col"])
    m = torch.where(unpack_signs(state["m_sign"], m.numel()).view(m.shape), m, -m)
    return m.reshape(shape), v.reshape(shape)


def compress_(state, m: torch.Tensor, v: torch.Tensor) -> None:
    """Store the moments back as factors (``nnmf`` of ``|m|`` and of ``v``) and ``m``'s packed signs."""
    rows, cols = state["v_row"].numel(), state["v_col"].numel()
    state["m_sign"].copy_(pack_signs(m))
    for names, x in ((("m_row", "m_col"), m.abs()), (("v_row", "v_col"), v)):
        for name, factor in zip(names, nnmf(x.reshape(rows, cols))):
            state[name].copy_(factor)

