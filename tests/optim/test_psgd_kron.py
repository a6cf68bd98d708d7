"""PSGD-Kron: parity with pytorch_optimizer's Kron (kron_torch) on identical probes, and identities.

pytorch_optimizer draws its probes from torch's global generator (``torch.randn_like``) and its
balancing coin from numpy's (``np.random.random``); ours come from generators seeded from
(seed, step). The parity tests feed the reference our draws by patching those two calls during its
step (nothing else in its step is random), so both run on identical random numbers. Restrictions:
the reference's preconditioner dtype is set to float64 (its default is float32); its triangular
solves still run in float32 (it casts them), which leaves differences of about 1e-8, inside the
tolerance only near zero entries, so the tests give the reference a solve in its input dtype
(``_solve_in_place_dtype``, the same X Q^{-1} without the cast); its ``weight_decouple=False`` (L2 into the gradient) and callable update probabilities
have no zij counterpart and are not compared.
"""

import numpy as np
import pytest
import torch
from pytorch_optimizer import Kron
import pytorch_optimizer.optimizer.psgd as reference_module

import zij
from zij.second_order.psgd_kron import balance_factors_, coin, precondition, probe, upper_triangle

from _problem_helpers import mlp_loss, mlp_params


def _solve_in_place_dtype(x, a):
    """X A^{-1} for an upper-triangular A, in X's dtype (the reference casts to float32 here)."""
    return torch.linalg.solve_triangular(a, x.reshape(-1, x.size(-1)), upper=True, left=False).reshape_as(x)


def _step_reference(ref, monkeypatch, step, seed=0):
    with monkeypatch.context() as m:
        m.setattr(reference_module, "solve_triangular_right", _solve_in_place_dtype)
        # the same values as torch.triu, whose threaded kernel stalls for milliseconds on a busy CPU
        m.setattr(torch, "triu", upper_triangle)
        m.setattr(torch, "randn_like", lambda t, dtype=None, **_: probe(t.shape, seed=seed, step=step,
                                                                          dtype=dtype or t.dtype, device=t.device))
        m.setattr(reference_module.np.random, "random", lambda: coin(seed=seed, step=step))
        ref.step()


def _compare(monkeypatch, shapes, kwargs, ref_kwargs, steps=40, loss=None):
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=g, dtype=torch.float64) * 0.5 for s in shapes]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    opt = zij.PSGDKron(ours, **kwargs)
    ref = Kron(theirs, precondition_dtype=torch.float64, **ref_kwargs)
    loss = loss or (lambda ps: sum((p.sin() * p).sum() + 0.3 * (p**4).sum() for p in ps))
    for step in range(1, steps + 1):
        for params in (ours, theirs):
            for p in params:
                p.grad = None
            loss(params).backward()
        opt.step()
        _step_reference(ref, monkeypatch, step, seed=kwargs.get("seed", 0))
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step}: {m}")


MLP = [(8, 4), (8,), (3, 8), (3,)]


@pytest.mark.parametrize("kwargs", [
    {"lr": 0.01, "weight_decay": 0.01},  # defaults: the probability schedule, balance_prob 0.01
    {"lr": 0.01, "balance_prob": 0.5, "preconditioner_update_probability": 0.5},
    {"lr": 0.02, "momentum": 0.0, "momentum_into_precondition_update": False, "seed": 3, "balance_prob": 0.3},
    {"lr": 0.01, "memory_save_mode": "one_diag", "balance_prob": 0.5},
    {"lr": 0.01, "memory_save_mode": "smart_one_diag", "max_size_triangular": 5},
], ids=["defaults", "balanced-half-fits", "grad-fit", "one-diag", "smart-one-diag"])
def test_parity_with_pytorch_optimizer_kron(monkeypatch, kwargs):
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "seed"}
    ref_kwargs["pre_conditioner_update_probability"] = ref_kwargs.pop("preconditioner_update_probability", None)
    _compare(monkeypatch, MLP, kwargs, ref_kwargs, loss=lambda ps: mlp_loss(ps))


def test_parity_on_tensors_of_every_order(monkeypatch):
    # 0-dim (one diagonal entry), a size-one dimension (diagonal), order 3 (three triangular factors)
    kwargs = {"lr": 0.01, "balance_prob": 0.5, "weight_decay": 0.1}
    _compare(monkeypatch, [(), (1, 5), (2, 3, 4), (4, 4)], kwargs, dict(kwargs), steps=30)


def test_parity_one_diag_picks_the_last_of_equal_dimensions(monkeypatch):
    kwargs = {"lr": 0.01, "memory_save_mode": "one_diag"}
    _compare(monkeypatch, [(4, 4), (3, 2, 3)], kwargs, dict(kwargs), steps=20)


def test_probes_leave_the_global_generator_alone_and_repeat():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    p = torch.ones(3, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.PSGDKron([p], lr=0.1)
    for _ in range(3):
        p.grad = torch.ones_like(p)
        opt.step()
    assert torch.equal(torch.rand(3), expected)
    a = probe((3, 2), seed=1, step=7, dtype=torch.float64, device="cpu")
    assert torch.equal(a, probe((3, 2), seed=1, step=7, dtype=torch.float64, device="cpu"))
    assert not torch.equal(a, probe((3, 2), seed=1, step=8, dtype=torch.float64, device="cpu"))
    assert not torch.equal(a, probe((3, 2), seed=2, step=7, dtype=torch.float64, device="cpu"))


def test_balancing_leaves_the_preconditioner_unchanged():
    g = torch.Generator().manual_seed(0)
    factors = [torch.triu(torch.randn(n, n, generator=g, dtype=torch.float64)) * s for n, s in ((3, 10.0), (4, 0.1))]
    factors.append(torch.rand(2, generator=g, dtype=torch.float64) + 0.5)
    x = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    before = precondition(x, factors)
    balance_factors_(factors)
    torch.testing.assert_close(precondition(x, factors), before, rtol=1e-12, atol=0)
    norms = [f.abs().max() for f in factors]
    torch.testing.assert_close(norms[0], norms[1]) and torch.testing.assert_close(norms[1], norms[2])


def test_fit_whitens_a_fixed_gradient_distribution():
    # Fitted to gradients h ~ N(0, C) (momentum 0, the raw gradient), P approaches C^{-1/2}: P C P -> I.
    # C = C1 (x) C2 has condition number 144; after 600 noisy fit steps P C P is within a small factor of I.
    g = torch.Generator().manual_seed(0)
    c1 = torch.diag(torch.tensor([4.0, 1.0, 0.25], dtype=torch.float64))
    c2 = torch.diag(torch.tensor([9.0, 1.0], dtype=torch.float64))
    p = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.PSGDKron([p], lr=0.0, momentum=0.0, momentum_into_precondition_update=False,
                       preconditioner_update_probability=1.0, balance_prob=0.0, preconditioner_lr=0.05)
    for _ in range(600):
        p.grad = c1.sqrt() @ torch.randn(3, 2, generator=g, dtype=torch.float64) @ c2.sqrt()
        opt.step()
    q1, q2 = opt.state[p]["factors"]
    preconditioner = torch.kron(q1.T @ q1, q2.T @ q2)
    eigenvalues = torch.linalg.eigvalsh(preconditioner @ torch.kron(c1, c2) @ preconditioner)
    assert 0.25 < eigenvalues.min() and eigenvalues.max() < 4 and eigenvalues.max() / eigenvalues.min() < 5


def test_update_probability_schedule_is_the_reference_schedule():
    from pytorch_optimizer.optimizer.psgd import precondition_update_prob_schedule
    from zij.second_order.psgd_kron import update_probability_schedule

    reference = precondition_update_prob_schedule()
    for n in (0, 1, 499, 500, 501, 1000, 2500, 4000, 10_000):
        assert torch.equal(update_probability_schedule(n), reference(n))


def test_fit_steps_follow_the_counter():
    # p = 0.25: every fourth step fits the factors; the others only apply them
    p = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.PSGDKron([p], preconditioner_update_probability=0.25)
    fits = []
    for _ in range(12):
        before = [f.clone() for f in opt.state[p]["factors"]] if opt.state[p] else None
        p.grad = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
        opt.step()
        fits.append(before is None or any(not torch.equal(a, b) for a, b in zip(before, opt.state[p]["factors"])))
    assert fits[1:] == [False, False, True] + [False, False, False, True] * 2  # fits[0]: the state is new
