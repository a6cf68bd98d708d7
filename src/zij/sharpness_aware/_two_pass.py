"""Private helpers shared by the SAM-family wrappers (global norms and inner products over all parameters)."""

from __future__ import annotations

import torch

from .._registry import Capabilities, ErrorInput


def global_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all ``tensors`` together, as one vector."""
    if not tensors:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))


def global_dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """The inner product of two lists of tensors, as two long vectors."""
    if not a:
        return torch.zeros(())
    return torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()


def with_grads(opt) -> list[torch.Tensor]:
    """The parameters of ``opt`` (a SAM wrapper) that have a gradient, in group order."""
    params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if any(p.grad.is_sparse for p in params):
        raise RuntimeError(f"{type(opt).__name__} does not support sparse gradients")
    return params


class ExtraSettings:
    """Mixin: the wrapper's own settings (``_settings``) travel through deepcopy and ``state_dict``."""

    _settings: tuple[str, ...] = ()

    def __getstate__(self):
        return {**super().__getstate__(), **{k: getattr(self, k) for k in self._settings}}

    def state_dict(self):
        return {**super().state_dict(), **{k: getattr(self, k) for k in self._settings}}

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for k in self._settings:
            if k in state_dict:
                setattr(self, k, state_dict[k])


def closure_required(opt, closure) -> None:
    if closure is None:
        raise ValueError(f"{type(opt).__name__} needs a closure (or call first_step() and second_step() yourself)")


def two_pass_step(opt, closure):
    """The two-pass protocol: loss and gradients, ``first_step``, gradients again, ``second_step``.

    Returns the first loss. Wrappers whose halves differ from SAM's (RWP's noise, SAM-ON's mask)
    reuse this loop through their own ``first_step`` and ``second_step``.
    """
    closure_required(opt, closure)
    with torch.enable_grad():
        loss = closure()
    opt.first_step()
    with torch.enable_grad():
        closure()
    opt.second_step()
    return loss


COMMON = dict(
    family="sharpness-aware",
    wraps=True,
    capabilities=Capabilities(needs_closure=True, elementwise=False),
    skips={"param_groups": "the perturbation's norm is taken over all groups together, so one wrapper over two "
                           "groups is not two wrappers over one group each; the groups are the base optimizer's"},
)
RECIPE = {"base": (torch.optim.SGD, {"lr": 0.02, "momentum": 0.9}), "rho": 0.01}
ROSENBROCK = {"base": (torch.optim.SGD, {"lr": 5e-4, "momentum": 0.9}), "rho": 0.005}
RHO_ERROR = ErrorInput({"rho": -0.1}, "rho")
