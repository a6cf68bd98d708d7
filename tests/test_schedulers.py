"""zij.schedulers: closed forms against hand-computed values, exact resume, param groups, docstrings."""

from __future__ import annotations

import copy
import math
import re

import pytest
import torch

import zij
from _helpers import CANON
from zij_canon import load
from zij_canon.latex import check as latex_problems

ENTRIES = zij.schedulers.list_schedulers()
NAMES = [e.name for e in ENTRIES]


@pytest.fixture(scope="module")
def canon():
    return load(CANON)


def sgd(lr=1.0, groups=1):
    params = [torch.zeros(2, requires_grad=True) for _ in range(groups)]
    return torch.optim.SGD([{"params": [p], "lr": lr / (i + 1)} for i, p in enumerate(params)], lr=lr)


def rates(sched, steps):
    """The first group's rate at steps 0 .. steps-1."""
    out = []
    for _ in range(steps):
        out.append(sched.optimizer.param_groups[0]["lr"])
        sched.optimizer.step()
        sched.step()
    return out


# one configuration per scheduler, for the generic tests
MAKE = {
    "WarmupCosine": lambda opt: zij.schedulers.WarmupCosine(opt, warmup_steps=4, total_steps=12, eta_min=0.1),
    "WSD": lambda opt: zij.schedulers.WSD(opt, warmup_steps=2, total_steps=10, decay_steps=4),
    "REX": lambda opt: zij.schedulers.REX(opt, total_steps=10),
    "InverseSqrt": lambda opt: zij.schedulers.InverseSqrt(opt, warmup_steps=4),
    "PolynomialWithWarmup": lambda opt: zij.schedulers.PolynomialWithWarmup(opt, warmup_steps=2, total_steps=6,
                                                                               power=2.0, end_lr=0.1),
    "WarmupConstant": lambda opt: zij.schedulers.WarmupConstant(opt, warmup_steps=4),
    "WarmupCosineRestarts": lambda opt: zij.schedulers.WarmupCosineRestarts(opt, T_0=4, T_mult=2, warmup_steps=2),
}

# hand-computed rates for lr = 1 at the given steps
HAND = {
    "WarmupCosine": {0: 0.0, 2: 0.5, 4: 1.0, 6: 0.1 + 0.45 * (1 + math.sqrt(0.5)), 8: 0.55, 12: 0.1, 13: 0.1},
    "WSD": {0: 0.0, 1: 0.5, 2: 1.0, 5: 1.0, 6: 1.0, 7: 0.75, 8: 0.5, 10: 0.0, 11: 0.0},
    "REX": {0: 1.0, 5: 0.5 / 0.75, 9: 0.1 / 0.55, 10: 0.0, 12: 0.0},
    "InverseSqrt": {0: 0.25, 1: 0.5, 3: 1.0, 15: 0.5, 99: 0.2},
    "PolynomialWithWarmup": {0: 0.0, 1: 0.5, 2: 1.0, 4: 0.9 * 0.25 + 0.1, 6: 0.1, 7: 0.1},
    "WarmupConstant": {0: 0.0, 1: 0.25, 3: 0.75, 4: 1.0, 10: 1.0},
    "WarmupCosineRestarts": {0: 0.0, 1: 0.5, 2: 1.0, 3: 0.5 * (1 + math.sqrt(0.5)), 4: 0.5, 6: 1.0, 10: 0.5, 14: 1.0},
}


def test_registry_lists_every_scheduler_with_its_record(canon):
    assert sorted(NAMES) == sorted(MAKE)
    for entry in ENTRIES:
        assert getattr(zij.schedulers, entry.name) is entry.cls
        assert issubclass(entry.cls, torch.optim.lr_scheduler.LRScheduler)
        assert zij.schedulers.get_scheduler(entry.name.lower()) is entry
        ids = (entry.canon_id,) if entry.canon_id else entry.nearest
        assert ids and all(i in canon.entries for i in ids)
    assert zij.optim.lr_scheduler is torch.optim.lr_scheduler
    with pytest.raises(KeyError, match="list_schedulers"):
        zij.schedulers.get_scheduler("nope")


@pytest.mark.parametrize("name", NAMES)
def test_closed_form_matches_hand_computed_values(name):
    got = rates(MAKE[name](sgd()), max(HAND[name]) + 1)
    for step, expected in HAND[name].items():
        assert got[step] == pytest.approx(expected, rel=1e-12, abs=1e-15), f"step {step}"


@pytest.mark.parametrize("decay, expected", [("linear", {7: 0.75, 8: 0.5}),
                                             ("cosine", {7: 0.5 * (1 + math.sqrt(0.5)), 8: 0.5}),
                                             ("sqrt", {7: 0.5, 8: 1 - math.sqrt(0.5), 10: 0.0})])
def test_wsd_decay_shapes(decay, expected):
    got = rates(zij.schedulers.WSD(sgd(), warmup_steps=2, total_steps=10, decay_steps=4, decay=decay), 11)
    for step, value in expected.items():
        assert got[step] == pytest.approx(value, rel=1e-12, abs=1e-15)
    floored = rates(zij.schedulers.WSD(sgd(), warmup_steps=2, total_steps=10, decay_steps=4, eta_min=0.2), 12)
    assert floored[8] == pytest.approx(0.6) and floored[11] == pytest.approx(0.2)


def test_torch_special_cases():
    """No warm-up: WarmupCosine is CosineAnnealingLR up to T, PolynomialWithWarmup is PolynomialLR,
    WarmupCosineRestarts is CosineAnnealingWarmRestarts."""
    pairs = [
        (zij.schedulers.WarmupCosine(sgd(), warmup_steps=0, total_steps=20),
         torch.optim.lr_scheduler.CosineAnnealingLR(sgd(), T_max=20), 21),
        (zij.schedulers.PolynomialWithWarmup(sgd(), warmup_steps=0, total_steps=10, power=1.5),
         torch.optim.lr_scheduler.PolynomialLR(sgd(), total_iters=10, power=1.5), 15),
        (zij.schedulers.WarmupCosineRestarts(sgd(), T_0=3, T_mult=2, eta_min=0.05),
         torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(sgd(), T_0=3, T_mult=2, eta_min=0.05), 40),
    ]
    for ours, theirs, steps in pairs:
        assert rates(ours, steps) == pytest.approx(rates(theirs, steps), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_resume_gives_the_same_sequence(name):
    straight = rates(MAKE[name](sgd()), 25)
    opt = sgd()
    sched = MAKE[name](opt)
    first = rates(sched, 9)
    saved_sched, saved_opt = copy.deepcopy(sched.state_dict()), copy.deepcopy(opt.state_dict())
    fresh_opt = sgd()
    fresh = MAKE[name](fresh_opt)
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved_sched)
    assert first + rates(fresh, 16) == straight


@pytest.mark.parametrize("name", NAMES)
def test_several_param_groups_and_a_zij_optimizer(name):
    """Each group follows the schedule from its own initial rate; a zij optimizer trains under it."""
    opt = sgd(groups=2)
    sched = MAKE[name](opt)
    for t in range(14):
        expected = [sched.rate(t, 1.0), sched.rate(t, 0.5)]
        assert [g["lr"] for g in opt.param_groups] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        opt.step()
        sched.step()
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    lion = zij.Lion([w], lr=0.01)
    sched = MAKE[name](lion)
    for t in range(14):
        before = w.detach().clone()
        lr = lion.param_groups[0]["lr"]
        assert lr == pytest.approx(sched.rate(t, 0.01), rel=1e-12, abs=1e-15)
        w.grad = torch.tensor([0.5, -0.5])
        lion.step()
        sched.step()
        # Lion's first steps move each coordinate by lr * sign(update): the scheduled lr was used
        torch.testing.assert_close((before - w.detach()).abs(), torch.full((2,), lr), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    ({"warmup_steps": -1, "total_steps": 10}, "warmup_steps"),
    ({"warmup_steps": 10, "total_steps": 10}, "total_steps"),
    ({"warmup_steps": 1, "total_steps": 10, "eta_min": -0.1}, "eta_min"),
])
def test_invalid_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        zij.schedulers.WarmupCosine(sgd(), **kwargs)


def test_more_invalid_arguments():
    with pytest.raises(ValueError, match="decay"):
        zij.schedulers.WSD(sgd(), warmup_steps=1, total_steps=10, decay_steps=2, decay="exp")
    with pytest.raises(ValueError, match="total_steps"):
        zij.schedulers.WSD(sgd(), warmup_steps=5, total_steps=6, decay_steps=2)
    with pytest.raises(ValueError, match="total_steps"):
        zij.schedulers.REX(sgd(), total_steps=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        zij.schedulers.InverseSqrt(sgd(), warmup_steps=0)
    with pytest.raises(ValueError, match="T_mult"):
        zij.schedulers.WarmupCosineRestarts(sgd(), T_0=2, T_mult=0)
    with pytest.raises(ValueError, match="power"):
        zij.schedulers.PolynomialWithWarmup(sgd(), warmup_steps=0, total_steps=3, power=-1.0)


# docstrings ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_docstring_layout_and_example(name):
    doc = getattr(zij.schedulers, name).__doc__
    summary = doc.strip().splitlines()[0]
    assert summary.endswith(".") and len(summary) < 120
    rule = re.search(r"\$\$(.*?)\$\$", doc, re.S)
    assert rule and latex_problems(rule.group(1).strip()) == []
    positions = [doc.find(s) for s in ("Args:", "Example:", "References:")]
    assert -1 not in positions and positions == sorted(positions)
    assert re.search(r"https://\S+", doc[positions[2]:])
    example = doc[positions[1]:positions[2]]
    code = "\n".join(line.strip()[4:] for line in example.splitlines() if line.strip()[:4] in (">>> ", "... "))
    exec(compile(code, f"<{name} example>", "exec"), {"torch": torch, "zij": zij})


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.canon_id], ids=lambda e: e.name)
def test_docstring_states_the_records_rule(canon, entry):
    """The scheduler's first $$ block is its Canon record's rule, character for character (ignoring whitespace)."""
    record = canon.entries[entry.canon_id].record
    rule = re.search(r"\$\$(.*?)\$\$", entry.cls.__doc__, re.S).group(1)
    assert re.sub(r"\s+", "", rule) == re.sub(r"\s+", "", record.update_rule.latex)
