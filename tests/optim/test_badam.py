"""BAdam (the badam package needs transformers, which the test extra does not install): identities."""

import torch

from zij.memory_efficient.badam import BAdam


def grads_for(params, g):
    for p in params:
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)


def test_one_block_is_adamw_restarted_every_k_steps():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(3, 4, dtype=torch.float64)
    q = p.clone()
    ours = BAdam([p], lr=0.01, weight_decay=0.1, switch_block_every=4)
    ref = None
    for t in range(10):
        if t % 4 == 0:  # the state is dropped at every switch: a fresh AdamW
            ref = torch.optim.AdamW([q], lr=0.01, weight_decay=0.1)
        grad = torch.randn(3, 4, generator=g, dtype=torch.float64)
        p.grad, q.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
        torch.testing.assert_close(p, q, rtol=1e-13, atol=1e-15)
    assert ours.state[p]["step"] == 2


def test_only_the_active_block_moves_in_descending_order():
    g = torch.Generator().manual_seed(1)
    blocks = [[torch.randn(2, 2, dtype=torch.float64)] for _ in range(3)]
    opt = BAdam([{"params": b} for b in blocks], lr=0.1, switch_block_every=2)
    assert [b[0].requires_grad for b in blocks] == [False, False, True]
    active = []
    for _ in range(8):
        before = [b[0].clone() for b in blocks]
        grads_for([b[0] for b in blocks], g)  # gradients of inactive blocks are ignored
        opt.step()
        moved = [not torch.equal(b[0], x) for b, x in zip(blocks, before)]
        assert sum(moved) == 1
        active.append(moved.index(True))
    assert active == [2, 2, 1, 1, 0, 0, 2, 2]
    assert [b[0].requires_grad for b in blocks] == [False, True, False]  # after step 8: block 1 is next


def test_each_visit_is_a_fresh_adamw_on_its_block():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, dtype=torch.float64), torch.randn(2, 2, dtype=torch.float64)
    a_ref, b_ref = a.clone(), b.clone()
    opt = BAdam([{"params": [a]}, {"params": [b], "lr": 0.05}], lr=0.02, switch_block_every=3, switch_mode="ascending")
    for visit in range(4):
        target, lr = (a_ref, 0.02) if visit % 2 == 0 else (b_ref, 0.05)
        ref = torch.optim.AdamW([target], lr=lr, weight_decay=0.0)
        for _ in range(3):
            grads_for([a, b], g)
            target.grad = (a if target is a_ref else b).grad.clone()
            opt.step()
            ref.step()
        torch.testing.assert_close(a, a_ref, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(b, b_ref, rtol=1e-13, atol=1e-15)


def test_random_mode_visits_every_block_once_per_sweep_and_resume_restores_the_block():
    torch.manual_seed(0)
    blocks = [[torch.zeros(1, dtype=torch.float64)] for _ in range(4)]
    opt = BAdam([{"params": b} for b in blocks], lr=0.1, switch_block_every=1, switch_mode="random",
                freeze_inactive=False)
    seen = []
    for _ in range(8):
        seen.append(opt.param_groups[0]["active_block"])
        for b in blocks:
            b[0].grad = torch.ones(1, dtype=torch.float64)
        opt.step()
    assert sorted(seen[:4]) == [0, 1, 2, 3] and sorted(seen[4:]) == [0, 1, 2, 3]
    frozen = [[torch.zeros(1, dtype=torch.float64)] for _ in range(4)]
    fresh = BAdam([{"params": b} for b in frozen], lr=0.1, switch_block_every=1, switch_mode="random")
    fresh.load_state_dict(opt.state_dict())
    active = opt.param_groups[0]["active_block"]
    assert [b[0].requires_grad for b in frozen] == [i == active for i in range(4)]


def test_bfloat16_weights_step_through_a_float32_copy():
    p = torch.ones(4, dtype=torch.bfloat16)
    opt = BAdam([p], lr=1e-3)
    for _ in range(3):
        p.grad = torch.ones(4, dtype=torch.bfloat16)
        opt.step()
    master = opt.state[p]["master"]
    assert master.dtype == torch.float32 and abs(master[0].item() - (1 - 3e-3)) < 1e-6
    assert torch.equal(p, master.bfloat16())
