"""What Schedule-Free SGD and Schedule-Free RAdam share: the averaging weight, the y/z step, train/eval.

Private (not a registering module). The parameters hold y, where gradients are taken; the state
holds the base sequence z; the average x (the weights to evaluate) is implicit:
y = (1 - beta) z + beta x, so x = (y - (1 - beta) z) / beta.
"""

from __future__ import annotations

import torch

from .._sharded import local
from .._tensorlist import TensorList


def averaging_weight_(group: dict, lr_t: float, t: int) -> float:
    """c_{t+1} = w_t / sum_i w_i with w_t = t^r max_{i<=t}(lr_i)^p; updates ``lr_max`` and ``weight_sum`` in ``group``.

    The largest step size so far stands in for the current one, as in the official code (the same
    unless a scheduler lowers the learning rate). Returns 0 while every weight is zero.
    """
    lr_max = group["lr_max"] = max(lr_t, group["lr_max"])
    weight = t ** group["r"] * lr_max ** group["weight_lr_power"]
    group["weight_sum"] += weight
    return weight / group["weight_sum"] if group["weight_sum"] > 0 else 0.0


def schedule_free_step_(y, z, direction, *, lr: float, ckp1: float, beta: float) -> None:
    """z' = z - lr u,  x' = (1 - c) x + c z',  y' = (1 - beta) z' + beta x', done on y in place as
    y' = (1 - c) y + c z + lr (beta (1 - c) - 1) u (a tensor or a TensorList)."""
    dtype = (y[0] if isinstance(y, TensorList) else y).dtype
    y.lerp_(z.to(dtype), ckp1).add_(direction, alpha=lr * (beta * (1 - ckp1) - 1))  # .to: a copy only with state_dtype
    z.sub_(direction, alpha=lr)


class TrainEvalProtocol:
    """``train()`` / ``eval()`` for an optimizer whose parameters hold y in training and x in evaluation.

    A class mixes this in before its optimizer base and defines ``interpolation(group)``, the beta
    of y = (1 - beta) z + beta x. Each group remembers its mode in ``group["train_mode"]``.
    """

    def interpolation(self, group: dict) -> float:
        raise NotImplementedError

    def check_train_mode(self, group: dict) -> None:
        if not group["train_mode"]:
            raise RuntimeError(f"{type(self).__name__}.step() was called in eval mode: call opt.train() before training")

    @torch.no_grad()
    def eval(self) -> None:
        """Move the parameters from y to the average x, where the model is evaluated (and saved)."""
        self._move_to(train=False)

    @torch.no_grad()
    def train(self) -> None:
        """Move the parameters from x back to y, where training gradients are taken."""
        self._move_to(train=True)

    def _move_to(self, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            beta = self.interpolation(group)
            # y = x + (1 - beta)(z - x) and x = y + (1 - 1/beta)(z - y)
            weight = 1 - beta if train else 1 - 1 / beta
            for p in group["params"]:
                z = self.state[p].get("z") if p in self.state else None
                if z is not None:
                    local(p).lerp_(z.to(p.dtype), weight)  # an FSDP2 shard's state is the shard's
            group["train_mode"] = train
