"""SOAP: identities (an identity basis gives Adam), the first step, the bases.

Parity with pytorch_optimizer's SOAP (which follows the official soap.py) runs in test_matrix.py.
"""

import torch

import zij


def gradients(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def test_without_rotation_it_is_adam_started_one_step_late():
    # max_precond_dim=1 leaves every dimension of a 3x4 matrix unrotated (and a vector is never rotated by
    # default): the rule is then Adam, lr sqrt(1 - b2^s) / (1 - b1^s) m / (sqrt(v) + eps) with s = t - 1,
    # which with eps = 0 is torch's Adam fed the gradients from step 2 on.
    for shape, kwargs in [((3, 4), {"max_precond_dim": 1}), ((5,), {})]:
        ours = torch.ones(shape, dtype=torch.float64, requires_grad=True)
        ref = torch.ones(shape, dtype=torch.float64, requires_grad=True)
        opt = zij.SOAP([ours], lr=0.1, betas=(0.9, 0.95), eps=0.0, weight_decay=0.0, **kwargs)
        adam = torch.optim.Adam([ref], lr=0.1, betas=(0.9, 0.95), eps=0.0)
        grads = gradients(shape, 12)
        ours.grad = grads[0].clone()
        opt.step()
        assert torch.equal(ours.detach(), torch.ones(shape, dtype=torch.float64)), "the first step only builds the bases"
        for g in grads[1:]:
            ours.grad, ref.grad = g.clone(), g.clone()
            opt.step()
            adam.step()
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_first_bases_are_eigenvectors_of_the_statistics():
    p = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.SOAP([p], betas=(0.9, 0.8))
    g = gradients((3, 4), 1)[0]
    p.grad = g.clone()
    opt.step()
    left, right = opt.state[p]["stats"]
    torch.testing.assert_close(left, 0.2 * g @ g.T)
    torch.testing.assert_close(right, 0.2 * g.T @ g)
    for stat, basis in zip((left, right), opt.state[p]["bases"]):
        torch.testing.assert_close(basis.T @ basis, torch.eye(len(basis), dtype=torch.float64))
        rayleigh = torch.diag(basis.T @ stat @ basis)
        assert (rayleigh[:-1] >= rayleigh[1:] - 1e-12).all(), "columns by decreasing eigenvalue"
        torch.testing.assert_close(stat @ basis, basis * rayleigh, rtol=1e-10, atol=1e-12)


def test_step_is_adam_in_the_rotated_basis():
    # Step 2 by hand: m = (1 - b1) g2, v = (1 - b2) (Q_L^T g2 Q_R)^2, step = lr sqrt(1 - b2) / (1 - b1) Q_L (m'/(sqrt v + eps)) Q_R^T.
    lr, b1, b2, eps = 0.1, 0.9, 0.95, 1e-8
    p = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    opt = zij.SOAP([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0)
    g1, g2 = gradients((3, 4), 2)
    p.grad = g1.clone()
    opt.step()
    ql, qr = (b.clone() for b in opt.state[p]["bases"])
    p.grad = g2.clone()
    opt.step()
    m = (1 - b1) * g2
    v = (1 - b2) * (ql.T @ g2 @ qr) ** 2
    expected = -lr * (1 - b2) ** 0.5 / (1 - b1) * ql @ ((ql.T @ m @ qr) / (v.sqrt() + eps)) @ qr.T
    torch.testing.assert_close(p.detach(), expected, rtol=1e-12, atol=1e-14)


def test_refreshed_bases_stay_orthogonal():
    p = torch.zeros(4, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.SOAP([p], precondition_frequency=2)
    for g in gradients((4, 3), 9):
        p.grad = g.clone()
        opt.step()
    for basis in opt.state[p]["bases"]:
        torch.testing.assert_close(basis.T @ basis, torch.eye(len(basis), dtype=torch.float64), rtol=0, atol=1e-6)
