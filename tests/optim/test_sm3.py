"""SM3: hand-computed steps, the AdaGrad reduction for vectors, and the size of its state."""

import torch

import zij


def test_matrix_steps_by_hand():
    # eta = 0.1, theta_0 = 0, eps = 0 (no zero gradients below).
    # t=1, g = [[1, 2], [3, 4]]: nu = g^2 = [[1, 4], [9, 16]]; u = sign(g) = 1; theta = -0.1.
    #      rows mu = (4, 16), columns mu = (9, 16).
    # t=2, g = [[1, 0], [0, 1]]: nu = min(row, column) + g^2 = [[4 + 1, 4], [9, 16 + 1]];
    #      u = [[1/sqrt(5), 0], [0, 1/sqrt(17)]]; theta = [[-0.1447213595, -0.1], [-0.1, -0.1242535625]];
    #      rows mu = (5, 17), columns mu = (9, 17).
    p = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    opt = zij.SM3([p], lr=0.1, eps=0.0)
    p.grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((2, 2), -0.1, dtype=torch.float64))
    p.grad = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    opt.step()
    expected = torch.tensor([[-0.1447213595, -0.1], [-0.1, -0.1242535625]], dtype=torch.float64)
    torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-9)
    state = opt.state[p]
    assert state["accumulator_0"].flatten().tolist() == [5.0, 17.0]
    assert state["accumulator_1"].flatten().tolist() == [9.0, 17.0]


def test_vectors_take_adagrad_steps():
    torch.manual_seed(0)
    a = torch.randn(6, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = zij.SM3([a], lr=0.1, eps=0.0)
    ref = torch.optim.Adagrad([b], lr=0.1, eps=0.0)
    for _ in range(10):
        g = torch.randn(6, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_state_of_a_64_by_128_matrix():
    # n + m accumulators without momentum; momentum adds one full-size buffer.
    for momentum, expected in ((0.0, 64 + 128), (0.9, 64 + 128 + 64 * 128)):
        p = torch.randn(64, 128, requires_grad=True)
        opt = zij.SM3([p], momentum=momentum)
        p.grad = torch.randn(64, 128)
        opt.step()
        tensors = [t for t in opt.state[p].values() if isinstance(t, torch.Tensor)]
        assert sum(t.numel() for t in tensors) == expected
        assert opt.state[p]["accumulator_0"].shape == (64, 1) and opt.state[p]["accumulator_1"].shape == (1, 128)
