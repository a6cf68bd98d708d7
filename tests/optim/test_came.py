"""CAME: the size of its factored state, and a hand-computed first step (parity: came-pytorch, in the matrix)."""

import torch

import zij


def test_state_of_a_64_by_128_matrix():
    # Full momentum (64 * 128) and four factored vectors: rows and columns of v and of the instability.
    p = torch.randn(64, 128, requires_grad=True)
    opt = zij.CAME([p], lr=1e-3)
    p.grad = torch.randn(64, 128)
    opt.step()
    state = opt.state[p]
    shapes = {k: tuple(t.shape) for k, t in state.items() if isinstance(t, torch.Tensor)}
    assert shapes == {"exp_avg": (64, 128), "exp_avg_sq_row": (64,), "exp_avg_sq_col": (128,),
                      "exp_avg_res_row": (64,), "exp_avg_res_col": (128,)}
    assert sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor)) == 64 * 128 + 2 * (64 + 128)


def test_first_step_on_a_rank_one_gradient_by_hand():
    # eps = (0, 0) and g = a b^T with a = (1, 2), b = (1, 1, 1) make the factored v exact:
    # r = (1 - b2) (1, 4), c = (1 - b2) (2.5, 2.5, 2.5), v = r c / sum(r) ... = (1 - b2) g^2, so
    # u = g / sqrt(v) = 1 / sqrt(1 - b2) everywhere (= 10 for b2 = 0.99); RMS(u) = 10 > d = 1, so u_hat = 1.
    # m = (1 - b1) = 0.5 (b1 = 0.5); U = (1 - 0.5)^2 = 0.25 everywhere; S = (1 - b3) 0.25 = 0.025 (b3 = 0.9);
    # theta = 0 - 0.1 * 0.5 / sqrt(0.025) = -0.3162277660.
    p = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.CAME([p], lr=0.1, betas=(0.5, 0.99, 0.9), eps=(0.0, 0.0))
    p.grad = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2, 3), -0.3162277660, dtype=torch.float64), rtol=0, atol=1e-9)
