"""The optimizer test matrix, generated from the registry: every entry and variant, every check.

What an entry supports is read from its ``capabilities``; no test checks names. The
shared checks run on every case of :func:`zij._registry.matrix_cases` (each entry and
each of its named ``variants``); an entry skips a shared check only through its
``skips``, and the test report shows the reason (``pytest -rs``).
"""

from __future__ import annotations

import copy
import importlib
import io
import math
import pickle

import pytest
import torch

import zij
from zij._registry import MATRIX_CHECKS, entries, matrix_cases

from _problem_helpers import DTYPES, closure_for, mlp_loss, mlp_params, quadratic_loss, quadratic_params, run, train_mlp

ENTRIES = entries()
CASES = matrix_cases()


def case_param(entry, check: str, *values, id_suffix: str = ""):
    """One parametrization of ``check`` for ``entry``, skipped with the entry's reason if it skips it."""
    assert check in MATRIX_CHECKS, check
    reason = entry.skips.get(check)
    marks = [pytest.mark.skip(reason=f"{entry.name} skips {check}: {reason}")] if reason else []
    return pytest.param(entry, *values, marks=marks, id=entry.name + id_suffix)


def each(check: str, filter_fn=lambda e: True):
    """Parametrize a shared check over every case the filter admits."""
    return pytest.mark.parametrize("entry", [case_param(e, check) for e in CASES if filter_fn(e)])


def states_equal(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, torch.Tensor):
            if not (isinstance(y, torch.Tensor) and x.dtype == y.dtype and torch.equal(x, y)):
                return False
        elif isinstance(x, dict):
            if not (isinstance(y, dict) and states_equal(x, y)):
                return False
        elif isinstance(x, (list, tuple)):
            if len(x) != len(y) or not all(states_equal({0: u}, {0: v}) for u, v in zip(x, y)):
                return False
        elif x != y and not (isinstance(x, float) and math.isnan(x) and math.isnan(y)):
            return False
    return True


# 1. invalid hyperparameters -------------------------------------------------
@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.errors], ids=lambda e: e.name)
def test_invalid_hyperparameters_raise(entry):
    for error in entry.errors:
        params = quadratic_params()
        with pytest.raises(ValueError, match=error.match):
            entry.make(params, **{**entry.recipe, **error.kwargs})


def test_aliases_never_collide():
    """Every name and alias resolves to one entry: no alias repeats a name or another alias."""
    seen = {}
    for entry in ENTRIES:
        for key in (entry.name, *entry.aliases):
            assert key.lower() not in seen, f"{key!r} of {entry.name} is already taken by {seen[key.lower()]}"
            seen[key.lower()] = entry.name


def test_skips_name_known_checks_with_reasons():
    for entry in ENTRIES:
        assert set(entry.skips) <= set(MATRIX_CHECKS), entry.name
        assert all(reason.strip() for reason in entry.skips.values()), entry.name


def test_every_entry_declares_error_inputs():
    assert [e.name for e in ENTRIES if not e.errors] == []


# 2. convergence ----------------------------------------------------------------
@each("quadratic")
def test_converges_on_quadratic(entry):
    _, losses = run(entry, "quadratic")
    assert math.isfinite(losses[-1]) and losses[-1] < 1e-2 * losses[0], losses[::100]


@each("logistic")
def test_converges_on_logistic_regression(entry):
    _, losses = run(entry, "logistic")
    assert math.isfinite(losses[-1]) and losses[-1] < 0.5 * losses[0], losses[::100]


@each("rosenbrock")
def test_rosenbrock_ends_much_closer(entry):
    params, _ = run(entry, "rosenbrock")
    start = math.dist((-1.5, 2.0), (1.0, 1.0))
    end = math.dist(params[0].detach().flatten().tolist(), (1.0, 1.0))
    assert end < 0.3 * start, f"ended at {params[0].detach().flatten().tolist()}"


# 3. closure and None gradients -------------------------------------------------
@each("closure")
def test_step_returns_closure_loss(entry):
    params = quadratic_params()
    opt = entry.make(params, **entry.recipe)
    closure = closure_for(entry, opt, params, quadratic_loss)
    with torch.no_grad():
        expected = quadratic_loss(params)
    assert torch.equal(opt.step(closure), expected)


@each("none_grads")
def test_none_grads_change_nothing(entry):
    params = quadratic_params()
    before = [p.detach().clone() for p in params]
    opt = entry.make(params, **entry.recipe)
    if entry.capabilities.needs_closure:
        opt.step(lambda: quadratic_loss(params).detach())
    else:
        state_before = copy.deepcopy(opt.state_dict()["state"])
        opt.step()
        if entry.capabilities.eager_state:
            assert states_equal(opt.state_dict()["state"], state_before), "state changed without gradients"
        else:
            assert len(opt.state) == 0, "no state may be created for parameters without gradients"
    assert all(torch.equal(a, b) for a, b in zip(before, params))


# 4. param groups and frozen params ---------------------------------------------
def _two_groups(entry, params, lrs):
    groups = [{"params": [params[0], params[1]], "lr": lrs[0]}, {"params": [params[2], params[3]], "lr": lrs[1]}]
    return entry.make(groups, **entry.recipe)


@each("param_groups", lambda e: 1 in e.capabilities.ndims and e.capabilities.param_groups)
def test_param_groups_match_separate_optimizers(entry):
    lr = (entry.recipe.get("lr") or entry.recipe["base"][1]["lr"])
    lrs = (lr, lr / 3)
    together = mlp_params(entry)
    frozen = torch.ones(3, dtype=torch.float64, requires_grad=False)
    opt = _two_groups(entry, together, lrs)
    opt.param_groups[1]["params"].append(frozen)
    train_mlp(entry, opt, together, 5)
    assert torch.equal(frozen, torch.ones(3, dtype=torch.float64)), "a frozen parameter moved"
    # the same model trained by two optimizers, one per group
    apart = mlp_params(entry)
    first = _single(entry, apart[:2], lrs[0])
    second = _single(entry, apart[2:], lrs[1])

    class Both:
        def zero_grad(self):
            first.zero_grad()
            second.zero_grad()

        def step(self, closure):
            loss = closure()
            first.step(lambda: loss)
            second.step(lambda: loss)
            return loss

    train_mlp(entry, Both(), apart, 5)
    for a, b in zip(together, apart):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _single(entry, params, lr):
    return entry.make([{"params": params, "lr": lr}], **entry.recipe)


# 5. resume: state_dict round trip continues bit-identically -----------------------
@each("resume")
def test_resume_is_bitwise_identical(entry):
    straight = mlp_params(entry, torch.float32)
    opt = entry.make(straight, **entry.recipe)
    train_mlp(entry, opt, straight, 40)

    resumed = mlp_params(entry, torch.float32)
    opt = entry.make(resumed, **entry.recipe)
    train_mlp(entry, opt, resumed, 20)
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    fresh_params = [p.detach().clone().requires_grad_() for p in resumed]
    fresh = entry.make(fresh_params, **entry.recipe)
    fresh.load_state_dict(loaded)
    train_mlp(entry, fresh, fresh_params, 20)
    for a, b in zip(straight, fresh_params):
        assert torch.equal(a, b), "resumed training diverged from the uninterrupted run"


# 6. deepcopy, pickle, determinism ---------------------------------------------------
@each("deepcopy")
def test_deepcopy_and_pickle(entry):
    params = mlp_params(entry)
    opt = entry.make(params, **entry.recipe)
    train_mlp(entry, opt, params, 3)
    for clone in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert type(clone) is type(opt)
        assert states_equal(clone.state_dict(), opt.state_dict())


@each("determinism")
def test_same_seed_same_result(entry):
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        params = mlp_params(entry)
        opt = entry.make(params, **entry.recipe)
        train_mlp(entry, opt, params, 10)
        results.append(params)
    assert all(torch.equal(a, b) for a, b in zip(*results))


# 7. dtypes and maximize ------------------------------------------------------------
@pytest.mark.parametrize("entry,dtype", [case_param(e, "dtypes", d, id_suffix=f"-{d}") for e in CASES
                                         for d in ("float64", "bfloat16") if d in e.capabilities.dtypes])
def test_dtype_stays_finite(entry, dtype):
    params, losses = run(entry, "quadratic", steps=30, dtype=DTYPES[dtype])
    assert params[0].dtype == DTYPES[dtype]
    assert torch.isfinite(params[0].float()).all() and math.isfinite(losses[-1])


@each("maximize", lambda e: e.capabilities.maximize)
def test_maximize_equals_minimizing_negated_loss(entry):
    minimized, maximized = mlp_params(entry), mlp_params(entry)
    opt = entry.make(minimized, **entry.recipe)
    train_mlp(entry, opt, minimized, 10)
    opt = entry.make(maximized, **{**entry.recipe, "maximize": True})
    closure = closure_for(entry, opt, maximized, mlp_loss, sign=-1.0)
    for _ in range(10):
        opt.step(closure)
    for a, b in zip(minimized, maximized):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("entry,ndim", [case_param(e, "ndims", n, id_suffix=f"-{n}d") for e in CASES
                                        for n in e.capabilities.ndims])
def test_parameter_dimensions(entry, ndim):
    shape = (2, 3, 2, 2)[:ndim]
    p = torch.linspace(-1, 1, math.prod(shape)).reshape(shape).clone().requires_grad_()
    opt = entry.make([p], **entry.recipe)
    before = p.detach().clone()
    closure = closure_for(entry, opt, [p], lambda ps: (ps[0] ** 2).sum() + ps[0].sum())
    for _ in range(3):
        opt.step(closure)
    assert p.shape == before.shape and torch.isfinite(p).all() and not torch.equal(p, before)


# 8. foreach and torch.compile -----------------------------------------------------
@each("foreach", lambda e: e.capabilities.foreach)
def test_foreach_matches_loop(entry):
    results = []
    for foreach in (False, True):
        params = mlp_params(entry)
        opt = entry.make(params, **{**entry.recipe, "foreach": foreach})
        train_mlp(entry, opt, params, 10)
        results.append(params)
    for a, b in zip(*results):
        if entry.builtin:  # torch's foreach kernels may fuse differently from its loop
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
        else:  # zij runs the same rule on TensorLists: the same kernels per tensor on the CPU
            assert torch.equal(a, b) if a.device.type == "cpu" else torch.allclose(a, b, rtol=1e-6, atol=1e-9)


@each("compile", lambda e: not e.capabilities.needs_closure)
def test_compiled_step_matches_eager(entry):
    """Compiled and eager steps agree to 1e-4 of the distance travelled.

    The tolerance is relative to the update, not the parameter: when compiled,
    torch's own Adam family computes bias corrections from a float32 step
    tensor (1 - 0.999 in float32 is off by 1e-5), which eager mode does in
    float64 arithmetic.
    """
    torch._dynamo.reset()
    start = [p.detach().clone() for p in mlp_params(entry, torch.float64)]
    results = []
    for compiled in (False, True):
        params = mlp_params(entry, torch.float64)
        opt = entry.make(params, **entry.recipe)
        step = torch.compile(opt.step, backend="eager") if compiled else opt.step
        for _ in range(5):
            opt.zero_grad()
            loss = mlp_loss(params)
            loss.backward()
            if entry.capabilities.sparse_only:
                for p in params:
                    p.grad = p.grad.to_sparse()
            step()
        results.append(params)
    for eager, compiled, p0 in zip(*results, start):
        travelled = (eager - p0).abs().max()
        assert travelled > 0
        assert (eager - compiled).abs().max() <= 1e-4 * travelled


# Parity with upstream implementations (test-time references only) -------------------
PARITY = [(e, ref) for e in ENTRIES for ref in e.parity]


@pytest.mark.parametrize("entry,ref", PARITY, ids=[f"{e.name}-vs-{r.package}" for e, r in PARITY])
def test_parity_with_upstream(entry, ref):
    module_name, attr = ref.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # the test extra installs every reference: a missing one is a failure
        pytest.fail(f"{ref.package} is not installed: pip install -e '.[test]'")
    ours, theirs = mlp_params(entry), mlp_params(entry)
    opt = entry.make(ours, **ref.kwargs)
    ref_opt = entry.make_reference(getattr(module, attr), theirs, ref)
    for step in range(ref.steps):
        train_mlp(entry, opt, ours, 1)
        train_mlp(entry, ref_opt, theirs, 1)
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=ref.rtol, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


# The interface ---------------------------------------------------------------------
def test_every_entry_is_a_torch_optimizer():
    for entry in ENTRIES:
        assert issubclass(entry.cls, torch.optim.Optimizer), entry.name
        assert getattr(zij, entry.name) is entry.cls
        assert zij.load_optimizer(entry.name.upper()) is entry.cls
        for alias in entry.aliases:
            assert zij.load_optimizer(alias) is entry.cls


def test_torch_classics_are_torchs_own():
    assert zij.AdamW is torch.optim.AdamW and zij.SGD is torch.optim.SGD
    assert zij.optim.Adam is torch.optim.Adam
    assert zij.optim.lr_scheduler is torch.optim.lr_scheduler


def test_list_optimizers():
    names = zij.list_optimizers("adam*")
    assert names == sorted(names, key=str.lower) and "AdamW" in names and "SGD" not in names
    assert zij.list_optimizers("*") == [e.name for e in ENTRIES]
    family = zij.list_optimizers(family="adam-family")
    assert "Adam" in family and all(zij.get_entry(n).family == "adam-family" for n in family)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match="closest: .*AdamW"):
        zij.load_optimizer("adamww")


def test_lr_scheduler_works_with_every_entry():
    for entry in ENTRIES:
        params = quadratic_params()
        opt = entry.make(params, **entry.recipe)
        sched = zij.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        before = [g["lr"] for g in opt.param_groups]
        opt.step(closure_for(entry, opt, params, quadratic_loss))
        sched.step()
        assert [g["lr"] for g in opt.param_groups] == [b * 0.5 for b in before], entry.name


def test_create_optimizer_exempts_bias_and_norm():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 2))
    opt = zij.create_optimizer(model, "adamw", lr=1e-3, weight_decay=0.1)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in decay["params"]} == {id(model[0].weight), id(model[2].weight)}
    assert len(no_decay["params"]) == 4
    opt = zij.create_optimizer(model, "adamw", lr=1e-3, weight_decay=0.1, exempt_norm_and_bias=False)
    assert len(opt.param_groups) == 1


def test_import_is_lazy():
    import subprocess
    import sys

    code = "import sys, zij; assert 'torch' not in sys.modules, 'import zij pulled torch'; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


# Sparse gradients ---------------------------------------------------------------------
@each("sparse", lambda e: not e.capabilities.sparse and not e.capabilities.needs_closure)
def test_sparse_gradients_are_rejected_clearly(entry):
    params = quadratic_params()
    opt = entry.make(params, **entry.recipe)
    params[0].grad = torch.ones_like(params[0]).to_sparse()
    with pytest.raises((RuntimeError, ValueError), match="(?i)sparse"):
        opt.step()


@each("sparse", lambda e: e.capabilities.sparse)
def test_sparse_gradients_supported(entry):
    params = quadratic_params()
    before = params[0].detach().clone()
    opt = entry.make(params, **entry.recipe)
    opt.zero_grad()
    quadratic_loss(params).backward()
    params[0].grad = params[0].grad.to_sparse()
    opt.step()
    assert torch.isfinite(params[0]).all() and not torch.equal(params[0], before)
