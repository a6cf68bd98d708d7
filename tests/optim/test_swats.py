"""SWATS has no upstream parity: golden values through the switch, and identities of both phases."""

import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("SWATS")


def _linear(p):
    # f(theta) = theta_0 + 2 theta_1: constant gradient g = (1, 2)
    return p[0] + 2 * p[1]


def _step(opt, p, loss_fn):
    opt.zero_grad()
    loss_fn(p).backward()
    opt.step()


def test_golden_values_through_the_switch():
    # eta = 0.1, beta1 = beta2 = 0.5, eps = 1e-9, theta_0 = (1, -1), constant g = (1, 2).
    # With a constant gradient m_t / (1 - beta1^t) = g and a_t / (1 - beta2^t) = g^2, so
    # p_t = -eta * sign(g) = (-0.1, -0.1) (to 1e-9 from eps), and
    # gamma_t = p.p / (-p.g) = 0.02 / (0.1 + 0.2) = 1/15 = 0.0666666667 at every Adam step.
    # t=1: theta_1 = (0.9, -1.1); l_1 = 0.5 * gamma = 1/30; l_1 / (1 - 0.5) = 1/15, but t = 1: no switch.
    # t=2: theta_2 = (0.8, -1.2); l_2 = 0.5 / 30 + 0.5 / 15 = 1/20; l_2 / (1 - 0.25) = 1/15 = gamma: switch,
    #      Lambda = 1/15, u = 0.
    # t=3: u_3 = 0.5 * 0 + g = (1, 2); theta_3 = theta_2 - 0.5 * (1/15) * (1, 2) = (0.7666666667, -1.2666666667)
    # t=4: u_4 = 0.5 * (1, 2) + (1, 2) = (1.5, 3); theta_4 = theta_3 - (1/30) * (1.5, 3) = (0.7166666667, -1.3666666667)
    p = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SWATS([p], lr=0.1, betas=(0.5, 0.5), eps=1e-9)
    expected = [(0.9, -1.1), (0.8, -1.2), (0.7666666667, -1.2666666667), (0.7166666667, -1.3666666667)]
    phases = []
    for want in expected:
        _step(opt, p, _linear)
        phases.append(opt.state[p]["phase"])
        torch.testing.assert_close(p.detach(), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-6)
    assert phases == ["adam", "sgd", "sgd", "sgd"]
    assert abs(opt.state[p]["sgd_lr"] - 1 / 15) < 1e-9


def test_sgd_phase_is_torch_momentum_sgd():
    # After the switch, u = beta1 u + g, theta -= (1 - beta1) Lambda u with u starting at 0: torch's SGD
    # with momentum beta1 and lr (1 - beta1) Lambda (its buffer starts at the first gradient).
    p = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SWATS([p], lr=0.1, betas=(0.5, 0.5), eps=1e-9)
    for _ in range(2):
        _step(opt, p, _linear)
    assert opt.state[p]["phase"] == "sgd"
    q = p.detach().clone().requires_grad_()
    ref = torch.optim.SGD([q], lr=(1 - 0.5) * opt.state[p]["sgd_lr"], momentum=0.5)

    def bowl(x):
        return (x**2).sum() + x.prod()

    for _ in range(10):
        _step(opt, p, bowl)
        _step(ref, q, bowl)
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-12)


def test_adam_phase_is_torch_adam_with_eps_outside_the_correction():
    # Before any switch the step is Adam's with eps added to sqrt(a_t) (not to sqrt(a_t / (1 - beta2^t))):
    # torch's Adam with eps' = eps / sqrt(1 - beta2^t) gives the same step; with eps = 0 both are
    # eta * m_hat / sqrt(v_hat). eps = 0 also disables the switch (|difference| < 0 never holds).
    ours, base = mlp_params(ENTRY), mlp_params(ENTRY)
    opt = zij.SWATS(ours, lr=0.01, eps=0.0)
    ref = torch.optim.Adam(base, lr=0.01, eps=0.0)
    for _ in range(20):
        train_mlp(ENTRY, opt, ours, 1)
        train_mlp(ENTRY, ref, base, 1)
        for a, b in zip(ours, base):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(s["phase"] == "adam" for s in opt.state.values())


def test_each_tensor_switches_on_its_own():
    # One tensor sees a constant gradient (switches at step 2), the other a changing one.
    a = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = zij.SWATS([a, b], lr=0.1, betas=(0.5, 0.5), eps=1e-9)
    for _ in range(2):
        opt.zero_grad()
        (_linear(a) + (b**4).sum()).backward()
        opt.step()
    assert opt.state[a]["phase"] == "sgd" and opt.state[b]["phase"] == "adam"
