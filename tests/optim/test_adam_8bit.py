"""Adam8bit (no upstream runs here: bitsandbytes' 8-bit kernels need a GPU build): quantization bounds and identities."""

import torch

from zij.memory_efficient.adam_8bit import Adam8bit, dequantize_blockwise, dynamic_code, quantize_blockwise

from _problem_helpers import PROBLEMS


def test_codes():
    signed, unsigned = dynamic_code(True), dynamic_code(False)
    assert signed.numel() == 255 and unsigned.numel() == 256
    assert torch.all(signed[1:] > signed[:-1]) and torch.all(unsigned[1:] > unsigned[:-1])
    assert signed[0] == -1 and signed[-1] == 1 and signed[127] == 0 and torch.equal(signed, -signed.flip(0))
    assert unsigned[0] == 0 and unsigned[-1] == 1
    # smallest nonzero magnitudes: 10^-6 (signed, e = 6, one fraction) and 10^-7 (unsigned)
    assert abs(signed[128].item() - 1e-6) < 1e-12 and abs(unsigned[1].item() - 1e-7) < 1e-13
    # largest gap: the top decade with 64 (signed) or 128 (unsigned) fractions of 0.9
    assert abs((signed[1:] - signed[:-1]).max().item() - 0.9 / 64) < 1e-6
    assert abs((unsigned[1:] - unsigned[:-1]).max().item() - 0.9 / 128) < 1e-6


def test_dequantize_quantize_error_bound():
    g = torch.Generator().manual_seed(0)
    for signed in (True, False):
        code = dynamic_code(signed)
        gap = (code[1:] - code[:-1]).max().item()
        for size in (256, 2048):
            x = torch.randn(5000, generator=g) * torch.logspace(-4, 2, 5000)[torch.randperm(5000, generator=g)]
            x = x if signed else x.square()
            index, absmax = quantize_blockwise(x, code, size)
            assert index.dtype == torch.uint8 and index.shape == (5000,) and absmax.shape == (-(-5000 // size),)
            y = dequantize_blockwise(index, absmax, code, size, x.shape)
            scale = torch.nn.functional.pad(absmax.repeat_interleave(size)[:5000], (0, 0))
            err = (y - x).abs()
            # every entry is within half the largest code gap of its block's maximum ...
            assert torch.all(err <= scale * gap / 2 * (1 + 1e-5))
            # ... and within half the local gap: relative error at most 0.9 / 2^r / 2 / 0.1 in decade e
            # for entries above the code's smallest value
            rel = err / x.abs()
            big = x.abs() >= scale * 0.1
            assert rel[big].max() <= (0.9 / (64 if signed else 128) / 2) / 0.1 * (1 + 1e-5)
            # each block's maximum is stored exactly, and zeros stay zero
            blocks = torch.nn.functional.pad(x, (0, (-5000) % size)).view(-1, size)
            arg = blocks.abs().argmax(dim=1) + torch.arange(blocks.size(0)) * size
            torch.testing.assert_close(y[arg], x[arg], rtol=1e-6, atol=0)
    index, absmax = quantize_blockwise(torch.zeros(300), dynamic_code(True), 256)
    assert torch.all(dequantize_blockwise(index, absmax, dynamic_code(True), 256, (300,)) == 0)


def test_state_bytes_per_parameter():
    for size in (256, 2048):
        p = torch.zeros(1000, 100, requires_grad=True)
        opt = Adam8bit([p], lr=1e-3, block_size=size)
        p.grad = torch.randn_like(p)
        opt.step()
        state = opt.state[p]
        nbytes = sum(t.numel() * t.element_size() for t in state.values() if isinstance(t, torch.Tensor))
        per_param = nbytes / p.numel()
        assert abs(per_param - (2 + 8 / size)) < 1e-3, per_param
        assert {state[k].dtype for k in ("exp_avg_code", "exp_avg_sq_code")} == {torch.uint8}


def test_small_tensors_are_plain_adamw():
    a = torch.randn(10, 10, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = Adam8bit([a], lr=0.01, weight_decay=0.1)  # 100 < 4096 entries: unquantized
    ref = torch.optim.AdamW([b], lr=0.01, weight_decay=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        grad = torch.randn(10, 10, generator=g, dtype=torch.float64)
        a.grad, b.grad = grad.clone(), grad.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert "exp_avg" in ours.state[a]


def test_first_step_equals_adamw_up_to_rounding():
    # at t = 1 the update uses the float32 moments before they are encoded: exactly AdamW's first step
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, 80, generator=g).requires_grad_()
    b = a.detach().clone().requires_grad_()
    grad = torch.randn(64, 80, generator=g)
    a.grad, b.grad = grad.clone(), grad.clone()
    Adam8bit([a], lr=0.01, weight_decay=0.1, min_8bit_size=0).step()
    torch.optim.AdamW([b], lr=0.01, weight_decay=0.1).step()
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_close_to_adamw_on_the_matrix_problems():
    for problem, lr, steps in (("quadratic", 0.05, 300), ("logistic", 0.05, 300), ("rosenbrock", 0.01, 1000)):
        make, loss_fn = PROBLEMS[problem]
        results = {}
        for name, cls, kw in (("ours", Adam8bit, {"min_8bit_size": 0}), ("adamw", torch.optim.AdamW, {})):
            params = make(torch.float32)
            opt = cls(params, lr=lr, weight_decay=0.0, **kw)
            start = float(loss_fn(params).detach())
            for _ in range(steps):
                opt.zero_grad()
                loss_fn(params).backward()
                opt.step()
            results[name] = (params[0].detach().clone(), float(loss_fn(params)), start)
        (pa, la, start), (pb, lb, _) = results["ours"], results["adamw"]
        # both make the same progress: losses a small fraction of the start and close to each other
        assert la < 0.1 * start and lb < 0.1 * start, (problem, la, lb, start)
        assert abs(la - lb) <= 0.1 * lb + 0.02 * start, (problem, la, lb)
        assert (pa - pb).norm() <= 0.1 * max(pb.norm().item(), 1.0), (problem, pa, pb)


def test_resume_restores_float32_scales_for_bfloat16_params():
    p = torch.randn(50, 50, dtype=torch.bfloat16, requires_grad=True)
    opt = Adam8bit([p], min_8bit_size=0)
    p.grad = torch.randn_like(p)
    opt.step()
    fresh = Adam8bit([p], min_8bit_size=0)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.state[p]["exp_avg_absmax"].dtype == torch.float32
    assert torch.equal(fresh.state[p]["exp_avg_absmax"], opt.state[p]["exp_avg_absmax"])
    assert torch.equal(fresh.state[p]["exp_avg_code"], opt.state[p]["exp_avg_code"])
