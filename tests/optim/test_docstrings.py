"""Every zij class documents itself the same way, and its example runs."""

from __future__ import annotations

import re

import pytest
import torch

import zij
from _helpers import CANON
from zij._registry import entries
from zij_canon import load
from zij_canon.latex import check as latex_problems

OWN = [e for e in entries() if not e.builtin]


@pytest.mark.parametrize("entry", OWN, ids=[e.name for e in OWN])
def test_docstring_layout(entry):
    doc = entry.cls.__doc__ or ""
    summary = doc.strip().splitlines()[0]
    assert summary.endswith(".") and len(summary) < 120, "a one-line summary comes first"
    rule = re.search(r"\$\$(.*?)\$\$", doc, re.S)
    assert rule, "the update rule is given in a $$...$$ block"
    assert latex_problems(rule.group(1).strip()) == []
    positions = [doc.find(section) for section in ("Args:", "Example:", "References:")]
    assert -1 not in positions and positions == sorted(positions), "Args, Example, References, in this order"
    references = doc[positions[2]:]
    assert re.search(r"https://\S+", references), "References give a link to the paper"


@pytest.mark.parametrize("entry", OWN, ids=[e.name for e in OWN])
def test_docstring_example_runs(entry):
    doc = entry.cls.__doc__
    example = doc[doc.index("Example:"):doc.index("References:")]
    code = "\n".join(line.strip()[4:] for line in example.splitlines() if line.strip()[:4] in (">>> ", "... "))
    assert code, "the example has >>> lines"
    torch.manual_seed(0)
    namespace = {"torch": torch, "zij": zij}
    exec(compile(code, f"<{entry.name} example>", "exec"), namespace)
    optimizers = [v for v in namespace.values() if isinstance(v, torch.optim.Optimizer)]
    assert optimizers, "the example builds an optimizer"



@pytest.fixture(scope="module")
def canon():
    return load(CANON)


@pytest.mark.parametrize("entry", OWN, ids=[e.name for e in OWN])
def test_docstring_rule_is_the_canon_rule(canon, entry):
    """The class states the same rule as its Canon record: the rule the code computes."""
    record = canon.entries[entry.canon_id].record
    rule = re.search(r"\$\$(.*?)\$\$", entry.cls.__doc__, re.S).group(1)
    assert re.sub(r"\s+", "", rule) == re.sub(r"\s+", "", record.update_rule.latex)
    assert record.zij_class == f"zij.{entry.name}"
