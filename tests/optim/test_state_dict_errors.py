"""A state_dict that does not fit the optimizer loading it fails at load time, naming the problem.

For every zij class: a state_dict saved by another class, one missing a state entry or a group
hyperparameter, and one whose state tensor has another shape each raise ``ValueError`` from
``load_state_dict``, and the optimizer keeps the state it had. Wrappers (SAM, Lookahead, ...)
are checked around a zij base optimizer, which does the per-parameter checks.
"""

from __future__ import annotations

import copy

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp
from golden_helpers import golden_entries

ENTRIES = golden_entries()
IDS = [e.name for e in ENTRIES]
ZIJ_BASE = (zij.AdamWAdv, {"lr": 1e-3})


def fresh(entry, params):
    """An optimizer of ``entry`` over ``params`` (wrappers around a zij base, which checks the state)."""
    kwargs = {**entry.recipe, **({"base": ZIJ_BASE} if entry.wraps else {})}
    return entry.make(params, **kwargs)


def trained(entry, steps: int = 2):
    """An optimizer of ``entry`` after ``steps`` steps on the MLP, and its parameters."""
    params = mlp_params(entry)
    opt = fresh(entry, params)
    train_mlp(entry, opt, params, steps)
    return opt, params


def torch_layout(state_dict: dict) -> dict:
    """The part of a state_dict in torch's layout (``state``, ``param_groups``): a wrapper's inner one."""
    return state_dict["inner"] if "inner" in state_dict else state_dict


def snapshot(opt) -> dict:
    return copy.deepcopy(opt.state_dict())


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


def assert_unchanged(opt, before: dict) -> None:
    assert same(opt.state_dict(), before), "a failed load_state_dict changed the optimizer"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_state_dict_of_another_class_is_refused(entry):
    opt, params = trained(entry)
    saved = opt.state_dict()
    assert saved["zij_class"] == entry.cls.__name__
    target, _ = trained(entry, steps=1)
    before = snapshot(target)
    saved["zij_class"] = "SomeOtherOptimizer"
    with pytest.raises(ValueError, match=f"saved by SomeOtherOptimizer, not by {entry.cls.__name__}"):
        target.load_state_dict(saved)
    assert_unchanged(target, before)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_missing_top_level_key_is_named(entry):
    opt, params = trained(entry)
    saved = opt.state_dict()
    key = "inner" if "inner" in saved else "param_groups"
    del saved[key]
    with pytest.raises(ValueError, match=repr(key)):
        fresh(entry, mlp_params(entry)).load_state_dict(saved)


def first_tensor_state(layout: dict):
    """(param id, state name) of the first state tensor with at least one dimension, or None."""
    for pid, state in layout["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.dim() >= 1:
                return pid, name
    return None


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_missing_state_entry_is_named(entry):
    opt, params = trained(entry)
    saved = opt.state_dict()
    found = first_tensor_state(torch_layout(saved))
    if found is None:
        pytest.skip(f"{entry.name} keeps no per-parameter state tensor: nothing to leave out")
    pid, name = found
    del torch_layout(saved)["state"][pid][name]
    target, _ = trained(entry, steps=1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=f"has no '{name}'"):
        target.load_state_dict(saved)
    assert_unchanged(target, before)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_missing_hyperparameter_is_named(entry):
    opt, params = trained(entry)
    saved = opt.state_dict()
    group = torch_layout(saved)["param_groups"][0]
    name = "lr" if "lr" in group else next(k for k in group if k != "params")
    del group[name]
    with pytest.raises(ValueError, match=rf"param_groups\[0\] has no '{name}'"):
        fresh(entry, mlp_params(entry)).load_state_dict(saved)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_state_of_another_shape_is_refused(entry):
    opt, params = trained(entry)
    saved = opt.state_dict()
    found = first_tensor_state(torch_layout(saved))
    if found is None:
        pytest.skip(f"{entry.name} keeps no per-parameter state tensor: no shape to get wrong")
    pid, name = found
    state = torch_layout(saved)["state"][pid]
    state[name] = torch.cat([state[name].flatten(), state[name].flatten()[:1]])
    target, _ = trained(entry, steps=1)
    before = snapshot(target)
    with pytest.raises(ValueError, match=f"'{name}' has shape"):
        target.load_state_dict(saved)
    assert_unchanged(target, before)


def covered_by(opt, donor: dict) -> bool:
    """Whether every hyperparameter and first-step state entry of ``opt`` is in ``donor``."""
    later = set(getattr(opt, "option_defaults", {}))
    if any(name not in group for group in donor["param_groups"] for name in opt.defaults if name not in later):
        return False
    if any(name not in donor["param_groups"][0] for name in getattr(opt, "first_group_keys", ())):
        return False
    params = [p for group in opt.param_groups for p in group["params"]]
    for p, state in zip(params, donor["state"].values()):
        expected: dict = {}
        opt.init_state(p, expected, dict(opt.param_groups[0]))
        if not set(expected) <= set(state):
            return False
    return True


@pytest.mark.parametrize("entry", [e for e in ENTRIES if not e.wraps], ids=[e.name for e in ENTRIES if not e.wraps])
def test_untagged_state_dict_of_torch_adam(entry):
    """A state_dict without ``zij_class`` (saved by torch) loads only if it holds all this class needs."""
    params = mlp_params(entry)
    adam = torch.optim.Adam(params, lr=1e-3)
    train_mlp(entry, adam, params, 2)
    donor = adam.state_dict()
    target = fresh(entry, mlp_params(entry))
    if hasattr(target, "init_state") and covered_by(target, donor):
        target.load_state_dict(donor)  # Adam's state holds every name this class uses: it loads
    else:
        with pytest.raises(ValueError, match="no '"):
            target.load_state_dict(donor)


def test_error_names_class_loading_it():
    params = [torch.zeros(3, requires_grad=True)]
    opt = zij.Lion(params)
    with pytest.raises(ValueError, match=r"^Lion\.load_state_dict: expected a dict"):
        opt.load_state_dict([1, 2])
