"""EmoNavi: the loss signal by hand, and parity with pytorch-optimizer while the signal is active."""

from __future__ import annotations

import math

import pytest
import torch

import zij
from zij.first_order.emonavi import emotion_drive, loss_averages
from _problem_helpers import mlp_loss, mlp_params

ENTRY = zij.get_entry("EmoNavi")


@pytest.mark.parametrize("short, long, expected", [
    (1.0, 1.0, 1.0),  # calm: s = 0
    (0.7, 1.0, None),  # s = tanh(0.3) ~ 0.291: the accelerating zone
    (0.0, 1.0, 1.0 - math.tanh(1.0)),  # s = tanh(1) ~ 0.762: damped
    (1.5, 1.0, 1.0),  # s = tanh(-0.5) ~ -0.462 ... accelerating with a negative trust
])
def test_drive_by_hand(short, long, expected):
    s = math.tanh((long - short) / long)
    tau = math.copysign(1 - abs(s), s)
    if expected is None or 0.25 < abs(s) < 0.5:
        expected = 8 * abs(tau) * (1 + 0.1 * tau)
    assert emotion_drive(short, long) == pytest.approx(expected, rel=1e-15)


def test_loss_averages_start_at_the_first_loss():
    assert loss_averages(None, 2.0) == [2.0, 2.0]
    assert loss_averages([2.0, 2.0], 1.0) == pytest.approx([0.3 + 1.4, 0.01 + 1.98])


def test_parity_with_pytorch_optimizer_while_the_drive_acts():
    """lr 0.05 makes the loss fall fast enough that the drive leaves 1 (four times in 25 steps).

    25 steps: the official code (and pytorch-optimizer) also keeps a medium loss average and takes
    tanh(diff / medium) when |diff / medium| * medium < |diff / long| * long, two equal numbers but for
    rounding; at step 29 of this run rounding makes that true, and the official step uses the medium form.
    zij takes the long form always (the rule of the Canon record)."""
    from pytorch_optimizer import EmoNavi

    ours, theirs = mlp_params(ENTRY), mlp_params(ENTRY)
    a = zij.EmoNavi(ours, lr=0.05, weight_decay=0.01)
    b = EmoNavi(theirs, lr=0.05, betas=(0.9, 0.995), weight_decay=0.01)
    drives = set()
    for _ in range(25):
        for params, opt in ((ours, a), (theirs, b)):
            def closure(params=params, opt=opt):
                opt.zero_grad()
                loss = mlp_loss(params)
                loss.backward()
                return loss
            opt.step(closure)
        drives.add(round(emotion_drive(*a.param_groups[0]["loss_ema"]), 6))
        for x, y in zip(ours, theirs):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-12)
    assert len(drives) > 3, drives


def test_maximize_feeds_the_negated_loss():
    w = torch.ones(2, requires_grad=True)
    opt = zij.EmoNavi([w], maximize=True)
    opt.step(lambda: torch.tensor(-3.0))
    assert opt.param_groups[0]["loss_ema"] == pytest.approx([3.0, 3.0])
