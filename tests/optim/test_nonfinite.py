"""A NaN or inf in a gradient does what each class's docstring says, never a silent corruption.

Every zij class states in its docstring, in a paragraph starting "Non-finite gradients:",
whether a non-finite gradient *propagates* (the parameters it reaches become non-finite, so
the failure shows at once) or makes the class *skip* the step (parameters and state stay as
they were). The one outcome no class may have is the third: finite parameters over a state
that now holds NaN, which would freeze or bias coordinates silently for every later step.
"""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch

from _problem_helpers import closure_for, mlp_loss, mlp_params, train_mlp
from golden_helpers import golden_entries

ENTRIES = golden_entries()
STATEMENT = re.compile(r"Non-finite gradients:\s*(.*?)(?:\n\s*\n|$)", re.S)


def claimed(entry) -> str:
    doc = entry.cls.__doc__ or ""
    found = STATEMENT.search(doc)
    assert found, f"{entry.name}'s docstring has no 'Non-finite gradients:' paragraph"
    text = " ".join(found.group(1).split())
    kinds = [kind for kind in ("propagate", "skip") if kind in text]
    assert len(kinds) == 1, f"{entry.name}: the paragraph must say 'propagate' or 'skip', once: {text!r}"
    return kinds[0]


def finite(tree) -> bool:
    if isinstance(tree, torch.Tensor):
        return not tree.is_floating_point() or bool(torch.isfinite(tree).all())
    if isinstance(tree, dict):
        return all(finite(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return all(finite(v) for v in tree)
    return not isinstance(tree, float) or math.isfinite(tree)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_nonfinite_gradient(entry, bad):
    kind = claimed(entry)
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    train_mlp(entry, opt, params, 2)
    params_before = [p.detach().clone() for p in params]
    state_before = copy.deepcopy(opt.state_dict())
    clean = closure_for(entry, opt, params, mlp_loss)

    def closure():
        loss = clean()
        params[0].grad[0, 0] = bad
        return loss

    opt.step(closure)
    if kind == "propagate":
        assert not torch.isfinite(params[0]).all(), (
            f"{entry.name} says a non-finite gradient propagates, but the parameter it reached stayed finite"
            + ("" if finite(opt.state_dict()) else " while the state took the NaN (a silent corruption)"))
    else:
        for a, p in zip(params_before, params):
            assert torch.equal(a, p.detach()), f"{entry.name} says it skips the step, but a parameter changed"
        assert finite(opt.state_dict()) == finite(state_before), f"{entry.name} skipped, yet its state took the NaN"
