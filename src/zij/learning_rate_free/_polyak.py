"""What the Polyak-type classes (AliG, SPS, MoMo) share: the loss value as an input of the step.

Private (not a registering module). Their step size divides a loss by a gradient norm, so
``step`` needs a closure returning the loss; the loss is kept as a float for ``global_step``.
"""

from __future__ import annotations

import torch


class LossStepMixin:
    """``step(closure)`` that requires the closure and keeps its loss as ``self.loss_value``.

    The closure returns the mini-batch loss; it may compute the gradients itself, or be
    ``lambda: loss`` after ``loss.backward()``. With ``maximize`` (read from the first group)
    the rule sees the negated loss, so maximizing ``f`` equals minimizing ``-f``.
    """

    loss_value: float = 0.0

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one step; ``closure`` is required and returns the loss (its value sets the step size).

        Returns:
            The closure's loss.
        """
        if closure is None:
            raise ValueError(f"{type(self).__name__} needs the loss: call step(closure), where the closure returns "
                             "the loss (e.g. lambda: loss after loss.backward())")
        with torch.enable_grad():
            loss = closure()
        value = float(loss)
        self.loss_value = -value if self.param_groups[0].get("maximize", False) else value
        gathered = [(group, *self._gather(group)) for group in self.param_groups]
        self.global_step(gathered)
        for group, params, grads, states in gathered:
            if params:
                self.group_step(group, params, grads, states)
        return loss


def squared_norm(tensors) -> float:
    """sum_i ||x_i||^2 over a list of tensors, as a Python float (0.0 for an empty list)."""
    if not tensors:
        return 0.0
    return float(torch.stack([torch.linalg.vector_norm(t).square() for t in tensors]).sum())


def dot(xs, ys) -> float:
    """sum_i <x_i, y_i> over two lists of tensors, as a Python float."""
    if not xs:
        return 0.0
    return float(torch.stack([torch.dot(x.flatten(), y.flatten().to(x.dtype)) for x, y in zip(xs, ys)]).sum())
