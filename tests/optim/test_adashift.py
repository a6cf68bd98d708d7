"""AdaShift: still for n steps, then an average of the n newest gradients over the old gradient's maximum."""

import torch

import zij


def test_first_steps_by_hand():
    # n = 2, beta1 = 0.5: m_t = (g_t + 0.5 g_{t-1}) / 1.5. Steps 1 and 2 only fill the queue. At t = 3,
    # v = (1 - beta2) max(g_1^2) and its bias correction is 1 - beta2^(3 - 2), so sqrt(v_hat) = max |g_1|.
    lr, beta2 = 0.1, 0.9
    grads = [torch.tensor(g, dtype=torch.float64) for g in ([1.0, -3.0], [0.5, 2.0], [-1.0, 1.0], [2.0, 0.0])]
    p = torch.tensor([1.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdaShift([p], lr=lr, betas=(0.5, beta2), keep_num=2, eps=0.0)
    for g in grads[:2]:
        p.grad = g.clone()
        opt.step()
        assert torch.equal(p.detach(), torch.ones(2, dtype=torch.float64))
    p.grad = grads[2].clone()
    opt.step()
    theta3 = torch.ones(2, dtype=torch.float64) - lr * (grads[2] + 0.5 * grads[1]) / 1.5 / 3.0
    torch.testing.assert_close(p.detach(), theta3, rtol=1e-12, atol=1e-12)
    # t = 4: v = 0.9 (0.1 * 9) + 0.1 * max(g_2^2) = 0.81 + 0.4 = 1.21, bias correction 1 - 0.81 = 0.19
    p.grad = grads[3].clone()
    opt.step()
    theta4 = theta3 - lr * (grads[3] + 0.5 * grads[2]) / 1.5 / (1.21 / 0.19) ** 0.5
    torch.testing.assert_close(p.detach(), theta4, rtol=1e-12, atol=1e-12)
