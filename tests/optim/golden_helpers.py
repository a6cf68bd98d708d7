"""Write golden checkpoints for registered zij optimizers that have none yet.

``python tests/optim/golden_helpers.py`` (from the project root, with the project's venv).

A golden checkpoint records, for one entry and its recipe, the parameters and the
``state_dict`` after 5 training steps of the small MLP of ``_problem_helpers`` in float64,
and the parameters after 5 more. ``test_golden.py`` checks two things against it: a
fresh run reproduces both parameter sets, and a fresh optimizer loading the saved
``state_dict`` resumes to the same final parameters. Existing files are never
overwritten: they pin the behaviour of the code that wrote them, so a change that
alters any class's arithmetic, or breaks loading an older state_dict, fails the test.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from _problem_helpers import mlp_params, train_mlp  # noqa: E402

from zij._registry import entries  # noqa: E402

GOLDEN = HERE / "golden"
STEPS = 5


def golden_entries():
    """Entries with golden checkpoints: zij's own classes (torch's are torch's to pin)."""
    return [e for e in entries() if not e.builtin]


def record(entry) -> dict:
    torch.manual_seed(0)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    train_mlp(entry, opt, params, STEPS)
    middle = [p.detach().clone() for p in params]
    state = copy.deepcopy(opt.state_dict())  # state_dict() shares the live state tensors
    train_mlp(entry, opt, params, STEPS)
    return {"torch": str(torch.__version__), "name": entry.name, "steps": STEPS, "params_mid": middle,
            "state_dict": state, "params_end": [p.detach().clone() for p in params]}


def main() -> int:
    GOLDEN.mkdir(exist_ok=True)
    for entry in golden_entries():
        path = GOLDEN / f"{entry.name}.pt"
        if path.exists():
            continue
        torch.save(record(entry), path)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
