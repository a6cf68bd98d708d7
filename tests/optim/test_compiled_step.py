"""The opt-in compiled step (``ZijOptimizer.compile``): eager's numbers, compiled once for a whole schedule.

Every case (variants included) of a class that sets ``supports_compile`` runs through
``torch.compile``'s tracing with the ``aot_eager`` backend (whole-graph capture and
functionalization, a second or two per case); a few representative rules also run through
inductor, the default backend, whose fused kernels round differently (hence the 1e-6).
"""

from __future__ import annotations

import copy
import operator

import pytest
import torch
from torch._dynamo.utils import counters

import zij
from zij._registry import matrix_cases
from zij._tensorlist import Scalar, TensorList

from _problem_helpers import mlp_loss, mlp_params
from test_matrix import case_param

COMPILED = [e for e in matrix_cases() if getattr(e.cls, "supports_compile", False)]
# one rule of each kind: Adam-shaped with flags, sign-based, per-tensor trust ratios, sign-driven second moments
INDUCTOR = ["AdamWAdv", "Lion", "LAMB", "Yogi"]


def run(entry, steps: int = 6, **compile_options):
    """Train the float32 MLP with the learning rate changing every step; the graphs compiled after each step."""
    torch._dynamo.reset()
    counters.clear()
    params = mlp_params(entry, torch.float32)
    opt = entry.make(params, **entry.recipe)
    if compile_options:
        assert opt.compile(**compile_options) is opt
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + t))
    graphs = []
    for _ in range(steps):
        opt.zero_grad()
        mlp_loss(params).backward()
        opt.step()
        schedule.step()
        graphs.append(counters["stats"]["unique_graphs"])
    return params, graphs


def check(entry, backend: str) -> None:
    eager, _ = run(entry)
    compiled, graphs = run(entry, backend=backend)
    assert graphs[0] >= 1, "nothing was compiled"
    assert graphs[-1] == graphs[0], f"recompiled as the learning rate and step changed: {graphs}"
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("entry", [case_param(e, "compiled") for e in COMPILED])
def test_compiled_step_matches_eager_without_recompiling(entry):
    check(entry, "aot_eager")


@pytest.mark.parametrize("name", INDUCTOR)
def test_inductor_step_matches_eager(name):
    check(next(e for e in COMPILED if e.name == name), "inductor")


def test_classes_with_a_compiled_step_cover_the_adam_and_lion_shapes():
    names = {e.name for e in COMPILED}
    assert {"AdamWAdv", "CautiousAdamW", "StableAdamW", "Lion", "LAMB", "LARS"} <= names
    assert len({e.cls for e in COMPILED}) >= 38


def test_classes_without_one_refuse_by_name():
    p = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid compile: Adan has no compiled step"):
        zij.Adan([p]).compile()


def test_groups_on_the_loop_refuse():
    w, b = torch.zeros(2, 2, requires_grad=True), torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"param group\(s\) \[0\] take the per-tensor loop"):
        zij.Lion([w], foreach=False).compile()
    with pytest.raises(ValueError, match=r"LARS's param group\(s\) \[1\]"):
        zij.LARS([{"params": [w]}, {"params": [b], "exclude_vectors": True}]).compile()


def test_state_moves_between_compiled_and_eager():
    entry = next(e for e in COMPILED if e.name == "AdamWAdv")
    reference, _ = run(entry, steps=6)
    torch._dynamo.reset()
    params = mlp_params(entry, torch.float32)
    opt = entry.make(params, **entry.recipe).compile(backend="aot_eager")
    for i in range(6):
        if i == 3:  # a compiled optimizer's state_dict resumes in an eager one; a copy is eager too
            state = opt.state_dict()
            assert "_compiled" not in copy.deepcopy(opt).__dict__
            opt = entry.make(params, **entry.recipe)
            opt.load_state_dict(state)
        opt.zero_grad()
        mlp_loss(params).backward()
        for group in opt.param_groups:  # the schedule of run(), by hand
            group["lr"] = entry.recipe["lr"] / (1 + i)
        opt.step()
    for a, b in zip(reference, params):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_scalar_arithmetic_matches_numbers_and_refuses_branches():
    step, lr = Scalar(torch.tensor(3.0, dtype=torch.float64)), Scalar(torch.tensor(0.01, dtype=torch.float64))
    cases = [(1 - 0.9**step, 1 - 0.9**3), (lr * 0.1, 0.001), (2 / (step + 1), 0.5), (-(lr - 1) ** 2, -(0.99**2)),
             ((step * lr) / 3, 0.01)]
    for got, expected in cases:
        assert isinstance(got, Scalar) and got.tensor.item() == pytest.approx(expected, rel=1e-15)
    for branch in (lambda: lr == 0, lambda: bool(lr), lambda: step > 1, lambda: float(lr), lambda: max(lr, 1.0)):
        with pytest.raises(TypeError, match="cannot branch on its learning rate or step count"):
            branch()


def test_tensorlists_take_scalars_where_they_take_numbers():
    g = torch.Generator().manual_seed(0)
    a, b, c = ([torch.rand(4, generator=g) + 0.5 for _ in range(2)] for _ in range(3))
    s = Scalar(torch.tensor(0.3, dtype=torch.float64))
    ops = [
        lambda x, k: x.add_(TensorList(b), alpha=k),
        lambda x, k: x.sub_(TensorList(b), alpha=k),
        lambda x, k: x.addcmul_(TensorList(b), TensorList(c), value=k),
        lambda x, k: x.addcdiv_(TensorList(b), TensorList(c), value=k),
        lambda x, k: x.copy_(x.add(TensorList(b), alpha=k)),
        lambda x, k: x.copy_(x.addcdiv(TensorList(b), TensorList(c), value=k)),
        lambda x, k: x.mul_(k),
        lambda x, k: x.copy_(x / (1 - k)),
        lambda x, k: x.copy_(k * x),
        lambda x, k: x.lerp_(TensorList(b), k),
    ]
    for op in ops:
        numbers, scalars = TensorList([t.clone() for t in a]), TensorList([t.clone() for t in a])
        op(numbers, 0.3)
        op(scalars, s)
        for x, y in zip(numbers, scalars):
            torch.testing.assert_close(y, x, rtol=1e-6, atol=0)


def test_options_that_branch_on_the_step_refuse():
    p = torch.zeros(2, 2, requires_grad=True)
    with pytest.raises(ValueError, match="AdamWAdv's param group 0: kourkoutas_beta's warm-up branches on the step"):
        zij.AdamWAdv([p], kourkoutas_beta=True).compile()


@pytest.mark.parametrize("by_reciprocal", [False, True])
def test_powers_and_divisors_of_the_step_are_worked_out_once_not_per_entry(by_reciprocal):
    """``beta**step`` reaches the graph as a realized 0-dim value: inlined into the elementwise kernel, inductor's
    C++ would recompute the power for every vector of entries (it may not hoist ``pow``, which sets errno). With
    ``by_reciprocal`` a division by a Scalar becomes a product with its reciprocal, also worked out once."""
    graphs = []

    def capture(gm, inputs):
        graphs.append(gm)
        return gm.forward

    def rule(m, step):
        TensorList(m).div_(1 - 0.9 ** Scalar(step, once=True, by_reciprocal=by_reciprocal))
        return TensorList(m) / (1 - 0.999 ** Scalar(step, once=True, by_reciprocal=by_reciprocal))

    torch._dynamo.reset()
    m = [torch.ones(4), torch.ones(3)]
    out = torch.compile(rule, backend=capture, fullgraph=True)(m, torch.tensor(2.0, dtype=torch.float64))
    nodes = [n for g in graphs for n in g.graph.nodes if n.op == "call_function"]
    once = [n.args[0].target for n in nodes if str(n.target) == "zij.computed_once.default"]
    divisions = [n for n in nodes if n.target in (torch._foreach_div_, torch._foreach_div)]
    if by_reciprocal:
        assert once == [operator.pow, operator.truediv, operator.pow, operator.truediv] and not divisions, nodes
    else:
        assert once == [operator.pow, operator.pow] and len(divisions) == 2, nodes
    torch.testing.assert_close(m[0], torch.full((4,), 1 / 0.19))
    torch.testing.assert_close(out[1], torch.full((3,), 1 / 0.19 / (1 - 0.999**2)))


@pytest.mark.parametrize("device, exact", [("cpu", False), ("cpu", True), ("meta", False)])
def test_the_compiled_step_works_scalars_out_once_on_the_cpu_only(device, exact):
    """CPU kernels get the flags (unless the class keeps exact division); elsewhere (Triton's GPU kernels, here the
    meta device) the scalar arithmetic stays inline and divisions stay divisions."""
    from zij._base import _traced_update

    class Probe:
        compile_by_reciprocal = not exact

        def update(self, p, grad, state, group):
            self.seen = (state["step"], group["lr"])

    probe, p = Probe(), torch.zeros(2, device=device)
    _traced_update(probe, [p], [p], {}, torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.1), {})
    for scalar in probe.seen:
        assert scalar.once == (device == "cpu")
        assert scalar.by_reciprocal == (device == "cpu" and not exact)
        power = 1 - 0.9**scalar  # the flags pass to results
        assert (power.once, power.by_reciprocal) == (scalar.once, scalar.by_reciprocal)


def test_compile_turns_off_inductors_input_assertions_unless_told_otherwise(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: seen.append(kwargs) or fn)
    p = torch.zeros(2, requires_grad=True)
    zij.Lion([p]).compile()
    zij.Lion([p]).compile(options={"size_asserts": True})
    zij.Lion([p]).compile(mode="max-autotune")
    zij.Lion([p]).compile(backend="aot_eager")
    assert seen[0] == {"fullgraph": True, "options": {"size_asserts": False, "alignment_asserts": False}}
    assert seen[1]["options"] == {"size_asserts": True, "alignment_asserts": False}
    assert seen[2] == {"fullgraph": True, "mode": "max-autotune"}
    assert seen[3] == {"fullgraph": True, "backend": "aot_eager"}
