"""GSAM, WSAM, LookSAM, ESAM, Fisher SAM and GAM: identities, hand-computed steps, and parity.

GSAM and WSAM are compared with pytorch-optimizer's (a community implementation that needs a
model and its own closure conventions, so the matrix's parity test cannot drive it). Its LookSAM
projects per tensor where zij's follows the paper's global vectors, and no installable package
implements ESAM, Fisher SAM or GAM; all six are checked by (1) reducing to its base optimizer (rho = 0, extra coefficients
neutral: bit-identical), (2) reducing to SAM where the method says so, and (3) first steps
computed by hand on f = |w|^2 / 2 (and, where that f makes the gradients parallel, on
f = (w_1^2 + 2 w_2^2) / 2).
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("SAM")
F64 = torch.float64


def half_square(w, a=(1.0, 1.0)):
    """The closure of f = sum a_i w_i^2 / 2 (gradient a * w)."""
    scale = torch.tensor(a, dtype=w.dtype)

    def closure():
        w.grad = None
        loss = 0.5 * (scale * w**2).sum()
        loss.backward()
        return loss
    return closure


def start():
    return torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)


NEUTRAL = {
    "GSAM": {"rho": 0.0, "alpha": 0.0},
    "WSAM": {"rho": 0.0, "gamma": 0.0},
    "WSAM-decoupled-rho0": {"rho": 0.0, "gamma": 0.9},
    "WSAM-coupled": {"rho": 0.0, "gamma": 0.0, "decouple": False},
    "LookSAM": {"rho": 0.0, "alpha": 0.0, "k": 3},
    "ESAM": {"rho": 0.0},
    "ESAM-masked": {"rho": 0.0, "beta": 0.5},
    "FisherSAM": {"rho": 0.0},
    "GAM": {"grad_rho": 0.0, "grad_norm_rho": 0.0, "grad_beta_2": 0.0, "grad_beta_3": 0.0, "grad_gamma": 0.0},
}


@pytest.mark.parametrize("case", list(NEUTRAL))
@pytest.mark.parametrize("base", [(torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), (torch.optim.AdamW, {"lr": 0.01})],
                         ids=["sgd", "adamw"])
def test_neutral_settings_are_the_base_optimizer(case, base):
    cls = getattr(zij, case.split("-")[0])
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    wrapped = cls(base[0](ours, **base[1]), **NEUTRAL[case])
    plain = base[0](plain_params, **base[1])
    train_mlp(ENTRY, wrapped, ours, 10)
    train_mlp(ENTRY, plain, plain_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain_params))


@pytest.mark.parametrize("cls, kwargs", [(zij.GSAM, {"alpha": 0.0}), (zij.LookSAM, {"k": 1, "alpha": 0.5})],
                         ids=["GSAM-alpha0", "LookSAM-k1"])
def test_reduces_to_sam(cls, kwargs):
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, cls(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, **kwargs), ours, 10)
    train_mlp(ENTRY, zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05), sam_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, sam_params))


@pytest.mark.parametrize("cls", [zij.FisherSAM, zij.ESAM])
def test_close_to_sam(cls):
    """Fisher SAM with eta = 0 and ESAM with beta = gamma = 1 are SAM up to rounding and their epsilon."""
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    kwargs = {"eta": 0.0} if cls is zij.FisherSAM else {"eps": 1e-12}
    train_mlp(ENTRY, cls(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, **kwargs), ours, 10)
    train_mlp(ENTRY, zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05), sam_params, 10)
    for a, b in zip(ours, sam_params):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


# hand-computed first steps, f = |w|^2 / 2 at w = (3, 4): g = w, |g| = 5, g / |g| = (0.6, 0.8) ----------------
def test_gsam_isotropic_is_sam():
    """g~ = 1.1 g is parallel to g, so g_perp = 0 and GSAM takes SAM's step w - 0.1 (3.3, 4.4)."""
    w = start()
    zij.GSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, alpha=0.5).step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor([3 - 0.33, 4 - 0.44], dtype=F64))


def test_gsam_hand_computed_step():
    """f = (w1^2 + 2 w2^2)/2 at (3, 4): g = (3, 8), |g| = sqrt(73); e = 0.5 g/|g|; g~ = (3 + e1, 2 (4 + e2))."""
    w = start()
    zij.GSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, alpha=0.5).step(half_square(w, (1.0, 2.0)))
    n = math.sqrt(73)
    e = (0.5 * 3 / n, 0.5 * 8 / n)
    gt = (3 + e[0], 2 * (4 + e[1]))
    proj = (3 * gt[0] + 8 * gt[1]) / (gt[0] ** 2 + gt[1] ** 2)
    perp = (3 - proj * gt[0], 8 - proj * gt[1])
    expected = torch.tensor([3 - 0.1 * (gt[0] - 0.5 * perp[0]), 4 - 0.1 * (gt[1] - 0.5 * perp[1])], dtype=F64)
    torch.testing.assert_close(w.detach(), expected, rtol=1e-12, atol=1e-12)
    assert abs(perp[0] * gt[0] + perp[1] * gt[1]) < 1e-12  # g_perp is orthogonal to g~


@pytest.mark.parametrize("decouple", [True, False])
def test_wsam_hand_computed_step_sgd(decouple):
    """gamma = 0.75: alpha = 3. Decoupled: (3, 4) - 0.1 g - 0.1 * 3 (g~ - g); coupled: SGD on 3 g~ - 2 g.
    With SGD both give (2.61, 3.48): g~ - g = (0.3, 0.4)."""
    w = start()
    zij.WSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, gamma=0.75, decouple=decouple).step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor([2.61, 3.48], dtype=F64), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("decouple, expected", [(True, [2.81, 3.78]), (False, [2.9, 3.9])])
def test_wsam_decoupled_differs_from_coupled_under_adam(decouple, expected):
    """Adam's first step is lr * sign(gradient): decoupled, Adam on g gives (2.9, 3.9) and the sharpness step
    subtracts 0.1 * 3 * (0.3, 0.4); coupled, Adam on 3 g~ - 2 g = (3.9, 5.2) gives (2.9, 3.9)."""
    w = start()
    zij.WSAM(torch.optim.Adam([w], lr=0.1), rho=0.5, gamma=0.75, decouple=decouple).step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor(expected, dtype=F64), rtol=1e-6, atol=1e-7)


def test_looksam_hand_computed_steps():
    """f = (w1^2 + 2 w2^2)/2, k = 2, SGD lr 0.1. Step 0 is GSAM-like: SAM's step, keeping
    v = g~ - (<g, g~>/|g|^2) g; step 1 adds 0.5 |g| v / |v| to the plain gradient."""
    w = start()
    opt = zij.LookSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, k=2, alpha=0.5)
    calls = []
    closure = half_square(w, (1.0, 2.0))

    def counted():
        calls.append(1)
        return closure()
    opt.step(counted)
    n = math.sqrt(73)
    gt = (3 + 0.5 * 3 / n, 2 * (4 + 0.5 * 8 / n))
    scale = (3 * gt[0] + 8 * gt[1]) / 73
    v = (gt[0] - scale * 3, gt[1] - scale * 8)
    w1 = (3 - 0.1 * gt[0], 4 - 0.1 * gt[1])
    torch.testing.assert_close(w.detach(), torch.tensor(w1, dtype=F64), rtol=1e-12, atol=1e-12)
    assert len(calls) == 2
    opt.step(counted)
    assert len(calls) == 3  # the reuse step evaluates once
    g = (w1[0], 2 * w1[1])
    factor = 0.5 * math.hypot(*g) / math.hypot(*v)
    w2 = (w1[0] - 0.1 * (g[0] + factor * v[0]), w1[1] - 0.1 * (g[1] + factor * v[1]))
    torch.testing.assert_close(w.detach(), torch.tensor(w2, dtype=F64), rtol=1e-12, atol=1e-12)
    assert opt.t == 2 and opt.step(counted) is not None and len(calls) == 5  # step 2 is a SAM step again


def test_looksam_manual_protocol():
    a, b = start(), start()
    first = zij.LookSAM(torch.optim.AdamW([a], lr=0.01), rho=0.1, k=3)
    second = zij.LookSAM(torch.optim.AdamW([b], lr=0.01), rho=0.1, k=3)
    for t in range(7):
        first.step(half_square(a, (1.0, 3.0)))
        half_square(b, (1.0, 3.0))()
        if second.first_step(zero_grad=True):
            assert t % 3 == 0
            half_square(b, (1.0, 3.0))()
            second.second_step(zero_grad=True)
        else:
            assert t % 3 != 0
    assert torch.equal(a, b)


def test_esam_hand_computed_steps():
    """beta = 1: SAM's step (2.67, 3.56). beta = 0.5: the first step perturbs every tensor with radius
    rho / beta = 1: g~ = (3.6, 4.8), w = (2.64, 3.52)."""
    w = start()
    zij.ESAM(torch.optim.SGD([w], lr=0.1), rho=0.5).step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor([2.67, 3.56], dtype=F64))
    w = start()
    opt = zij.ESAM(torch.optim.SGD([w], lr=0.1), rho=0.5, beta=0.5)
    opt.step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor([2.64, 3.52], dtype=F64))
    assert opt.mask is not None and len(opt.mask) == 1


def test_esam_masked_out_tensor_is_not_perturbed():
    w = start()
    opt = zij.ESAM(torch.optim.SGD([w], lr=0.1), rho=0.5, beta=0.5)
    opt.mask = [False]
    opt.step(half_square(w))
    torch.testing.assert_close(w.detach(), torch.tensor([2.7, 3.6], dtype=F64))


def test_esam_data_selection_hand_computed():
    """Per-example losses c_i |w|^2 / 2 with c = (1, 2, 3, 4): g = 2.5 w, e = 0.5 (0.6, 0.8), sharpness
    grows with c_i. gamma = 0.5: the cut-off is the 2nd largest sharpness (c = 3), and only c = 4 is
    strictly above it: the descent gradient is 4 (w + e) = (13.2, 17.6)."""
    w = start()
    c = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64)
    seen = []

    def closure(examples=None):
        chosen = c if examples is None else c[examples]
        seen.append(None if examples is None else examples.tolist())
        return 0.5 * chosen * (w**2).sum()
    opt = zij.ESAM(torch.optim.SGD([w], lr=0.1), rho=0.5, gamma=0.5)
    loss = opt.step(closure)
    assert loss.item() == pytest.approx(2.5 * 12.5)
    assert seen == [None, None, [3]]
    torch.testing.assert_close(w.detach(), torch.tensor([3 - 1.32, 4 - 1.76], dtype=F64))


def test_fisher_sam_hand_computed_step():
    """F^-1 g = g / (1 + g^2) = (3/10, 4/17); g^T F^-1 g = 9/10 + 16/17; the SGD step uses g = w + e."""
    w = start()
    zij.FisherSAM(torch.optim.SGD([w], lr=0.1), rho=0.5, eta=1.0).step(half_square(w))
    root = math.sqrt(9 / 10 + 16 / 17)
    e = (0.5 * 0.3 / root, 0.5 * (4 / 17) / root)
    torch.testing.assert_close(w.detach(), torch.tensor([3 - 0.1 * (3 + e[0]), 4 - 0.1 * (4 + e[1])], dtype=F64))


def test_gam_hand_computed_step():
    """All four gradients are parallel to w here: g1 = w + rho u, g1 - g0 = rho u, so theta2 = w + rho' u,
    g2 = theta2, g3 = w + (rho' + rho) u (u = (0.6, 0.8)). p and d are parallel, so the decomposition
    removes nothing: d = g1 + g3 = 2 w + (2 rho + rho') u = (6.9, 9.2) with rho = rho' = 0.5."""
    w = start()
    calls = []
    closure = half_square(w)

    def counted():
        calls.append(1)
        return closure()
    opt = zij.GAM(torch.optim.SGD([w], lr=0.1), grad_rho=0.5, grad_norm_rho=0.5)
    assert opt.step(counted).item() == 12.5 and len(calls) == 4
    torch.testing.assert_close(w.detach(), torch.tensor([3 - 0.69, 4 - 0.92], dtype=F64))


def test_gam_hand_computed_decomposition():
    """f = (w1^2 + 2 w2^2)/2, every gradient written out by hand (A = diag(1, 2), gradient A x)."""
    w = start()
    rho, rho2, b1, b2, b3, gamma = 0.5, 0.3, 1.0, -1.0, 1.0, 0.4
    zij.GAM(torch.optim.SGD([w], lr=0.1), grad_rho=rho, grad_norm_rho=rho2, grad_beta_1=b1, grad_beta_2=b2,
            grad_beta_3=b3, grad_gamma=gamma).step(half_square(w, (1.0, 2.0)))

    def grad(x):
        return (x[0], 2 * x[1])

    def plus(x, y, s=1.0):
        return (x[0] + s * y[0], x[1] + s * y[1])

    def unit(x):
        n = math.hypot(*x)
        return (x[0] / n, x[1] / n)
    x0 = (3.0, 4.0)
    g0 = grad(x0)
    g1 = grad(plus(x0, unit(g0), rho))
    x2 = plus(x0, unit(plus(g1, g0, -1.0)), rho2)
    g2 = grad(x2)
    g3 = grad(plus(x2, unit(g2), rho))
    p = plus(g0, g2, abs(b2))
    d = plus((b1 * g1[0], b1 * g1[1]), g3, b3)
    c = (p[0] * d[0] + p[1] * d[1]) / (math.hypot(*p) * math.hypot(*d))
    dt = plus(d, plus(p, unit(d), -c * math.hypot(*p)), -gamma)
    torch.testing.assert_close(w.detach(), torch.tensor(plus(x0, dt, -0.1), dtype=F64), rtol=1e-12, atol=1e-12)


def test_gam_manual_protocol_equals_step():
    a, b = start(), start()
    first = zij.GAM(torch.optim.SGD([a], lr=0.05, momentum=0.9), grad_rho=0.1, grad_norm_rho=0.1)
    second = zij.GAM(torch.optim.SGD([b], lr=0.05, momentum=0.9), grad_rho=0.1, grad_norm_rho=0.1)
    for _ in range(4):
        first.step(half_square(a, (1.0, 2.0)))
        for half in (second.first_step, second.second_step, second.third_step, second.fourth_step):
            half_square(b, (1.0, 2.0))()
            half(zero_grad=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", ["GSAM", "WSAM", "LookSAM", "ESAM", "FisherSAM", "GAM"])
def test_schedulers_reach_the_base_and_settings_survive_state_dict(name):
    w = torch.ones(2, requires_grad=True)
    cls = getattr(zij, name)
    opt = cls(torch.optim.SGD([w], lr=0.1))
    torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5).step()
    assert opt.optimizer.param_groups[0]["lr"] == 0.05
    with pytest.raises(ValueError, match="closure"):
        opt.step()
    other = cls(torch.optim.SGD([w], lr=0.1))
    for key in opt._settings if hasattr(opt, "_settings") else ():
        if isinstance(getattr(opt, key), float):
            setattr(opt, key, 0.123)
    other.load_state_dict(opt.state_dict())
    for key in getattr(opt, "_settings", ()):
        assert getattr(other, key) == getattr(opt, key)


# parity with pytorch_optimizer (a community implementation; its gradient norms are taken in float32,
# so the comparison is in float64 with rtol 1e-6) -------------------------------------------------------
def _models():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
    twin = copy.deepcopy(model)
    x, y = torch.randn(16, 4, dtype=F64), torch.randn(16, 1, dtype=F64)
    return model, twin, x, y


def _closure(model, opt, x, y, pair=False):
    def closure():
        opt.zero_grad()
        out = model(x)
        loss = (out - y).square().mean()
        loss.backward()
        return (out, loss.detach()) if pair else loss
    return closure


@pytest.mark.parametrize("decouple", [True, False])
def test_wsam_parity_with_pytorch_optimizer(decouple):
    reference = pytest.importorskip("pytorch_optimizer").WSAM
    model, twin, x, y = _models()
    ours = zij.WSAM(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), rho=0.05, gamma=0.6,
                    decouple=decouple)
    theirs = reference(twin, twin.parameters(), torch.optim.SGD, rho=0.05, gamma=0.6, decouple=decouple,
                       lr=0.05, momentum=0.9)
    for _ in range(50):
        ours.step(_closure(model, ours, x, y))
        theirs.step(_closure(twin, theirs, x, y))
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


def test_gsam_parity_with_pytorch_optimizer():
    reference = pytest.importorskip("pytorch_optimizer").GSAM

    class ConstantRho:  # its rho scheduler is only asked for a value
        def step(self):
            return 0.05
    model, twin, x, y = _models()
    ours = zij.GSAM(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), rho=0.05, alpha=0.3)
    base = torch.optim.SGD(twin.parameters(), lr=0.05, momentum=0.9)
    theirs = reference(twin.parameters(), base, twin, ConstantRho(), alpha=0.3)
    for _ in range(50):
        ours.step(_closure(model, ours, x, y))
        theirs.step(torch.enable_grad()(_closure(twin, theirs, x, y, pair=True)))  # it calls it under no_grad
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
