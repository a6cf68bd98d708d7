"""Golden checkpoints: every zij class computes what it computed when its checkpoint was saved.

The checkpoints in ``golden/`` were written by ``golden_helpers.py`` from the code of the
time and are never regenerated. A fresh run must reproduce their parameters exactly,
and a ``state_dict`` saved then must still load and resume to the same parameters:
this pins each class's arithmetic and the loading of old checkpoints (options added
later get their defaults in ``__setstate__``). Bitwise equality is asserted under the
torch version that wrote the file; under another version kernels may round
differently, so equality is then to 1e-12 relatively.
"""

from __future__ import annotations

import pytest
import torch

from _problem_helpers import mlp_params, train_mlp
from golden_helpers import GOLDEN, STEPS, golden_entries

ENTRIES = golden_entries()


def load(entry) -> dict:
    path = GOLDEN / f"{entry.name}.pt"
    if not path.exists():
        pytest.fail(f"no golden checkpoint for {entry.name}: run python tests/optim/golden_helpers.py and commit {path.name}")
    return torch.load(path, weights_only=True)


def assert_same(actual, expected, golden):
    for a, b in zip(actual, expected, strict=True):
        if golden["torch"] == torch.__version__:
            assert torch.equal(a.detach(), b), f"differs from the checkpoint by {(a - b).abs().max().item():.3g}"
        else:
            torch.testing.assert_close(a.detach(), b, rtol=1e-12, atol=0)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_fresh_run_reproduces_checkpoint(entry):
    golden = load(entry)
    torch.manual_seed(0)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    train_mlp(entry, opt, params, STEPS)
    assert_same(params, golden["params_mid"], golden)
    train_mlp(entry, opt, params, STEPS)
    assert_same(params, golden["params_end"], golden)


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_old_state_dict_resumes(entry):
    golden = load(entry)
    params = [p.clone().requires_grad_() for p in golden["params_mid"]]
    opt = entry.make(params, **entry.recipe)
    opt.load_state_dict(golden["state_dict"])
    train_mlp(entry, opt, params, STEPS)
    assert_same(params, golden["params_end"], golden)
