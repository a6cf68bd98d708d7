"""The base class's protocols: state_dtype, the global and group hooks, foreach buckets, option defaults."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

from zij._base import ZijOptimizer, hyperparameters
from zij._registry import entries
from zij._tensorlist import TensorList

from _problem_helpers import closure_for, quadratic_loss, quadratic_params, mlp_params, train_mlp

OWN = [e for e in entries() if issubclass(e.cls, ZijOptimizer)]
WITH_STATE_DTYPE = [e for e in OWN if "state_dtype" in inspect.signature(e.cls.__init__).parameters]


def test_most_zij_classes_take_state_dtype():
    assert len(WITH_STATE_DTYPE) >= 0.8 * len(OWN)


@pytest.mark.parametrize("entry", WITH_STATE_DTYPE, ids=[e.name for e in WITH_STATE_DTYPE])
def test_state_dtype_bfloat16(entry):
    """state_dtype=bfloat16 keeps every state tensor in bfloat16 (but those a class names in
    ``full_precision_state``, such as an anchor copy of the weights) and still descends."""
    params = quadratic_params()
    opt = entry.make(params, **{**entry.recipe, "state_dtype": torch.bfloat16})
    closure = closure_for(entry, opt, params, quadratic_loss)  # a closure: Hessian-based rules need one
    losses = [opt.step(closure).item() for _ in range(30)]
    exempt = getattr(entry.cls, "full_precision_state", ())
    tensors = [v for s in opt.state.values() for k, v in s.items()
               if isinstance(v, torch.Tensor) and v.dim() > 0 and k not in exempt]
    assert tensors and all(t.dtype == torch.bfloat16 for t in tensors)
    assert params[0].dtype == torch.float32 and math.isfinite(losses[-1]) and losses[-1] < losses[0]


FOREACH_BF16 = [e for e in WITH_STATE_DTYPE if e.capabilities.foreach]


@pytest.mark.parametrize("entry", FOREACH_BF16, ids=[e.name for e in FOREACH_BF16])
def test_bfloat16_state_foreach_equals_loop(entry):
    """In bfloat16 the foreach path still gives the loop's bits (torch's in-place foreach multiply does not)."""
    results = []
    for foreach in (False, True):
        params = quadratic_params()
        opt = entry.make(params, **{**entry.recipe, "state_dtype": torch.bfloat16, "foreach": foreach})
        closure = closure_for(entry, opt, params, quadratic_loss)
        for _ in range(5):
            opt.step(closure)
        results.append([p.detach().clone() for p in params])
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_state_dtype_is_validated():
    entry = OWN[0]
    with pytest.raises(ValueError, match="state_dtype"):
        entry.make(quadratic_params(), **{**entry.recipe, "state_dtype": torch.int8})
    with pytest.raises(ValueError, match="state_dtype"):
        entry.make(quadratic_params(), **{**entry.recipe, "state_dtype": "bf16"})


class ClippedSGD(ZijOptimizer):
    """Test rule: SGD on gradients clipped by their global norm, computed in the global hook."""

    supports_foreach = True

    def __init__(self, params, lr=0.1, max_norm=1.0, foreach=None):
        super().__init__(params, hyperparameters(lr=lr, max_norm=max_norm, foreach=foreach))
        self.calls = []

    def global_step(self, gathered):
        grads = [g for _, _, group_grads, _ in gathered for g in group_grads]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        for group, *_ in gathered:
            group["clip_scale"] = min(1.0, group["max_norm"] / (norm.item() + 1e-12))

    def update(self, p, grad, state, group):
        self.calls.append((type(p).__name__, state["step"]))
        p.add_(grad, alpha=-group["lr"] * group["clip_scale"])


def test_global_hook_sees_every_group_before_any_update():
    a = torch.ones(3, requires_grad=True)
    b = torch.ones(4, requires_grad=True)
    opt = ClippedSGD([{"params": [a]}, {"params": [b], "lr": 0.2}], max_norm=1.0)
    a.grad, b.grad = torch.full((3,), 2.0), torch.full((4,), 2.0)  # global norm sqrt(28)
    opt.step()
    scale = 1 / math.sqrt(28)
    torch.testing.assert_close(a, torch.full((3,), 1 - 0.1 * 2 * scale))
    torch.testing.assert_close(b, torch.full((4,), 1 - 0.2 * 2 * scale))
    assert opt.param_groups[0]["clip_scale"] == pytest.approx(scale)  # saved with the groups


def test_foreach_buckets_by_step_and_passes_tensorlists():
    a, b, c = (torch.ones(2, requires_grad=True) for _ in range(3))
    opt = ClippedSGD([a, b, c], foreach=True, max_norm=1e9)
    a.grad = torch.ones(2)
    opt.step()  # a is at step 1, b and c have no state
    for p in (a, b, c):
        p.grad = torch.ones(2)
    opt.calls.clear()
    opt.step()  # a at step 2, b and c at step 1: two buckets
    assert sorted(opt.calls) == [("TensorList", 1), ("TensorList", 2)]


def test_foreach_needs_a_multi_tensor_path():
    class LoopOnly(ZijOptimizer):
        def __init__(self, params, foreach=None):
            super().__init__(params, {"foreach": foreach})

    with pytest.raises(ValueError, match="foreach"):
        LoopOnly([torch.ones(1, requires_grad=True)], foreach=True)
    assert LoopOnly([torch.ones(1, requires_grad=True)]).param_groups[0]["foreach"] is None


def test_old_state_dict_gets_new_option_defaults():
    """A state_dict saved before an option existed loads with the option's old-behaviour default."""

    class Later(ClippedSGD):
        option_defaults = {**ClippedSGD.option_defaults, "new_flag": False}

    params = [torch.ones(3, requires_grad=True)]
    old = ClippedSGD(params)
    params[0].grad = torch.ones(3)
    old.step()
    saved = old.state_dict()
    saved["param_groups"][0].pop("foreach")  # as if saved before foreach existed,
    saved.pop("zij_class")  # and before a state_dict named its class (Later stands for a later ClippedSGD)
    new = Later(params)
    new.load_state_dict(saved)
    group = new.param_groups[0]
    assert group["new_flag"] is False and group["foreach"] is None and group["max_norm"] == 1.0


def test_tensorlist_rule_matches_loop_on_a_real_class():
    """A class's update called on TensorLists equals its loop (here AdaBelief through the base class)."""
    entry = next(e for e in OWN if e.name == "AdaBelief")
    out = []
    for foreach in (False, True):
        params = mlp_params(entry)
        opt = entry.make(params, **entry.recipe, foreach=foreach)
        train_mlp(entry, opt, params, 7)
        out.append(params)
    assert all(torch.equal(a, b) for a, b in zip(*out))
    assert isinstance(TensorList(out[0]).norm(), TensorList)
