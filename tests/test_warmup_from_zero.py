"""Every class survives a learning-rate warm-up that starts at zero, as common schedules do
(``zij.schedulers.WarmupCosine``, Hugging Face's cosine-with-warmup): the first step runs at
``lr = 0``. Classes that divided by the learning rate (Gravity's initial velocity, SRMM's
curvature) raised ZeroDivisionError there, and FTRL stepped to NaN (it now skips a step at
``lr = 0``)."""

from __future__ import annotations

import math

import pytest

import zij
from zij.bench.protocol import recipe_rate, run, skip_reason
from zij.bench.tasks import TASKS

TASK = TASKS["digits-mlp"]
ENTRIES = [e for e in zij.entries() if skip_reason(e, TASK) is None]


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_first_step_at_zero_learning_rate(entry):
    record = run(entry, TASK, recipe_rate(entry, TASK), seed=0, steps=2)  # warm-up: lr is 0 at step 1
    assert record["diverged_at"] is None
    assert record["final_val"] is not None and math.isfinite(record["final_val"])
