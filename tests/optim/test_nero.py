"""Nero without epsilon (the official code): normalized steps, projection, and zero-gradient neurons.

pytorch-optimizer's Nero, which adds epsilon to its denominators, is the parity reference in the registry.
"""

import torch

import zij


def test_vector_step_is_scaled_sign_and_zero_start_uses_default_scale():
    # t = 1: v = (1 - beta) g^2, v_hat = g^2, so g / sqrt(v_hat) = sign(g); a zero vector has scale 0.01
    p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = zij.Nero([p], lr=0.1)
    p.grad = torch.tensor([2.0, -0.5, 3.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([-1e-3, 1e-3, -1e-3], dtype=torch.float64))


def test_matrix_rows_stay_centred_unit_vectors_and_zero_gradient_rows_do_not_move():
    torch.manual_seed(0)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    opt = zij.Nero([w], lr=0.05)
    for _ in range(4):
        g = torch.randn(3, 5, dtype=torch.float64)
        g[1] = 0.0  # a neuron without gradient: 0 / 0 is NaN, set to zero
        w.grad = g
        before = w.detach().clone()
        opt.step()
        assert torch.isfinite(w).all()
        torch.testing.assert_close(w.detach().mean(dim=1), torch.zeros(3, dtype=torch.float64), rtol=0, atol=1e-12)
        torch.testing.assert_close(w.detach().norm(dim=1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
        if _ > 0:  # after the first step's projection, the row without gradient stays put
            torch.testing.assert_close(w.detach()[1], before[1], rtol=0, atol=1e-12)


def test_a_row_of_equal_weights_centres_to_zero_instead_of_nan():
    # the official code (eps = 0) divides the centred row 0 by its norm 0; here it stays zero, then moves
    w = torch.tensor([[0.5, 0.5, 0.5], [1.0, -1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    for foreach in (False, True):
        p = w.detach().clone().requires_grad_()
        opt = zij.Nero([p], lr=0.1, foreach=foreach)
        p.grad = torch.zeros_like(p)
        opt.step()
        torch.testing.assert_close(p.detach()[0], torch.zeros(3, dtype=torch.float64), rtol=0, atol=0)
        torch.testing.assert_close(p.detach()[1], torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64) / 2**0.5)
        p.grad = torch.tensor([[1.0, -2.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
        opt.step()  # the zero row takes a step, is centred and normalized again
        assert torch.isfinite(p).all()
        torch.testing.assert_close(p.detach()[0].norm(), torch.tensor(1.0, dtype=torch.float64))
        assert (p.detach()[0] < 0).tolist() == [True, False, True]
