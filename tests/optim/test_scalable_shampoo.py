"""Scalable Shampoo: parity with pytorch_optimizer's ScalableShampoo, its roots, and identities.

Restrictions of the parity tests: the reference computes roots either by a coupled Schur-Newton
iteration stopped at a residual of 1e-3 (its default) or, with ``use_svd=True``, by an SVD without
the ridge; ours are exact eigendecompositions of the ridged statistic, the quantity its Newton
iteration approximates. The parity tests run the reference with ``use_svd=True`` and its SVD root
replaced by ours (``ridge_inverse_root``), so everything else (reshaping, blocks, statistics,
grafting, weight decay, both momenta, Nesterov, the start step) is compared to 1e-10; a separate
test compares our root with its Schur-Newton root at its tolerance. Shapes are chosen where its
merge of small dimensions agrees with the authors' (see ``test_merge_small_dims``).
"""

import pytest
import torch
from pytorch_optimizer import ScalableShampoo as Reference
from pytorch_optimizer.optimizer.utils import preconditioner as reference_preconditioner
from pytorch_optimizer.optimizer.utils.matrix import compute_power_schur_newton
from pytorch_optimizer.optimizer.utils.graft import LayerWiseGrafting
from pytorch_optimizer.optimizer.utils.partition import PreConditionerType

import zij
from zij.second_order.scalable_shampoo import merge_small_dims, ridge_inverse_root

GRAFT = {"none": LayerWiseGrafting.NONE, "sgd": LayerWiseGrafting.SGD, "adagrad": LayerWiseGrafting.ADAGRAD,
         "rmsprop": LayerWiseGrafting.RMSPROP, "sqrt_n": LayerWiseGrafting.SQRTN}
DIMS = {"all": PreConditionerType.ALL, "input": PreConditionerType.INPUT, "output": PreConditionerType.OUTPUT}


def _reference_kwargs(kwargs):
    ref = {k: v for k, v in kwargs.items() if k not in ("graft_type", "preconditioned_dims")}
    ref["graft_type"] = GRAFT[kwargs.get("graft_type", "sgd")]
    ref["pre_conditioner_type"] = DIMS[kwargs.get("preconditioned_dims", "all")]
    return {**ref, "use_svd": True}


def _compare(monkeypatch, shapes, kwargs, steps=30):
    eps = kwargs.get("matrix_eps", 1e-6)
    monkeypatch.setattr(reference_preconditioner, "compute_power_svd",
                        lambda matrix, power: ridge_inverse_root(matrix, power, eps))
    g = torch.Generator().manual_seed(0)
    start = [torch.randn(s, generator=g, dtype=torch.float64) * 0.5 for s in shapes]
    ours = [t.clone().requires_grad_() for t in start]
    theirs = [t.clone().requires_grad_() for t in start]
    opt, ref = zij.ScalableShampoo(ours, **kwargs), Reference(theirs, **_reference_kwargs(kwargs))
    for step in range(steps):
        for params, o in ((ours, opt), (theirs, ref)):
            for p in params:
                p.grad = None
            sum((p.sin() * p).sum() + 0.2 * (p**4).sum() for p in params).backward()
            o.step()
        for a, b in zip(ours, theirs):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=lambda m: f"step {step + 1}: {m}")


BASE = {"lr": 0.02, "start_preconditioning_step": 3, "preconditioning_compute_steps": 2, "matrix_eps": 1e-4}


@pytest.mark.parametrize("kwargs", [
    {"shape_interpretation": False, "weight_decay": 0.01},
    {"shape_interpretation": False, "graft_type": "adagrad", "lr": 0.1, "decoupled_weight_decay": True,
     "weight_decay": 0.1, "betas": (0.9, 0.95)},  # the reference rejects beta2 = 1 (summed statistics)
    {"shape_interpretation": False, "graft_type": "rmsprop", "moving_average_for_momentum": True, "nesterov": True},
    {"shape_interpretation": False, "graft_type": "sqrt_n", "nesterov": False, "decoupled_learning_rate": False,
     "lr": 0.01},
    {"shape_interpretation": False, "graft_type": "none", "lr": 0.005, "preconditioned_dims": "input",
     "inverse_exponent_override": 3},
    {"shape_interpretation": False, "preconditioned_dims": "output", "block_size": 3, "statistics_compute_steps": 2},
    {"block_size": 8, "weight_decay": 0.01},  # merged and blocked: (2, 3, 4) -> (6, 4); (7, 9): blocks of 8 and 1
], ids=["sgd", "adagrad", "rmsprop-average", "sqrt-n-coupled-lr", "none-input", "output-blocked", "merged"])
def test_parity_with_pytorch_optimizer(monkeypatch, kwargs):
    # (6, 9) rather than (7, 9) with output-only blocks of 3: the reference batches equal-sized statistics
    # and fails to stack the unequal blocks (7 = 3 + 3 + 1) that share them
    last = (6, 9) if kwargs.get("preconditioned_dims") == "output" else (7, 9)
    _compare(monkeypatch, [(5, 4), (6,), (2, 3, 4), last], {**BASE, **kwargs})


def test_root_matches_the_reference_newton_iteration():
    # its coupled Newton iteration stops at a residual of 1e-3: the roots agree to about that
    g = torch.Generator().manual_seed(0)
    for n, p in ((5, 4), (8, 6), (1, 4)):
        x = torch.randn(n, 3 * n, generator=g, dtype=torch.float64)
        stat = x @ x.T
        ours = ridge_inverse_root(stat, p, 1e-6)
        newton = compute_power_schur_newton(stat, p, ridge_epsilon=1e-6)
        torch.testing.assert_close(ours, newton, rtol=0, atol=5e-3 * ours.abs().max().item())


def test_merge_small_dims():
    # the authors' examples; pytorch_optimizer's merge inserts a leading 1 when the first dimension alone
    # is too large ([8, 4] -> [1, 8, 4] for max_dim 4), which adds a dimension to the root's exponent
    assert merge_small_dims([1, 2, 512, 1, 2048, 1, 3, 4], 1024) == [1024, 2048, 12]
    assert merge_small_dims([1, 2, 768, 1, 2048], 1024) == [2, 768, 2048]
    assert merge_small_dims([8, 4], 4) == [8, 4]
    assert merge_small_dims([2, 3, 4], 8) == [6, 4]


def test_vectors_take_the_grafted_sgd_nesterov_step():
    # a vector, and a matrix that merges into one dimension, have no statistics: with the SGD graft and
    # Nesterov the step is torch's SGD(momentum=beta1, nesterov=True)
    for shape, kwargs in (((6,), {}), ((3, 4), {"block_size": 512})):
        ours = torch.linspace(-1, 1, 6 if len(shape) == 1 else 12, dtype=torch.float64).reshape(shape)
        ours.requires_grad_()
        ref = ours.detach().clone().requires_grad_()
        opt = zij.ScalableShampoo([ours], lr=0.1, betas=(0.8, 0.99), start_preconditioning_step=1, **kwargs)
        sgd = torch.optim.SGD([ref], lr=0.1, momentum=0.8, nesterov=True)
        g = torch.Generator().manual_seed(0)
        for _ in range(10):
            grad = torch.randn(shape, generator=g, dtype=torch.float64)
            ours.grad, ref.grad = grad.clone(), grad.clone()
            opt.step()
            sgd.step()
            torch.testing.assert_close(ours, ref, rtol=1e-14, atol=1e-15)
        assert opt.state[ours]["stats"] == []
