"""AdamWAdv and LionAdv: each flag alone reproduces its dedicated class, and the flags do what they say."""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("AdamWAdv")


def trained(cls, steps=20, **kwargs):
    params = mlp_params(ENTRY)
    opt = cls(params, **kwargs)
    train_mlp(ENTRY, opt, params, steps)
    return params


@pytest.mark.parametrize("cls,flags,dedicated,kwargs", [
    (zij.AdamWAdv, {"cautious": True}, zij.CautiousAdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    (zij.AdamWAdv, {"grams": True}, zij.Grams, {"lr": 1e-2, "weight_decay": 0.1, "eps": 1e-6}),
    (zij.AdamWAdv, {"atan2": True}, zij.AdamAtan2, {"lr": 1e-2, "weight_decay": 0.1}),
    (zij.LionAdv, {"cautious": True}, zij.CautiousLion, {"lr": 1e-3, "weight_decay": 0.1}),
    (zij.LionAdv, {}, zij.Lion, {"lr": 1e-3, "weight_decay": 0.1}),
], ids=["cautious=CautiousAdamW", "grams=Grams", "atan2=AdamAtan2", "cautious=CautiousLion", "none=Lion"])
def test_flag_equals_dedicated_class_bitwise(cls, flags, dedicated, kwargs):
    for a, b in zip(trained(cls, **flags, **kwargs), trained(dedicated, **kwargs)):
        assert torch.equal(a, b)


def test_kourkoutas_flag_equals_kourkoutas_beta_with_beta2max_correction():
    # Weight decay 0: KourkoutasBeta has none. Bitwise: both divide and add in the same order.
    spike = {"kourkoutas_beta": True, "betas": (0.9, 0.995), "beta2_min": 0.88, "spike_decay": 0.93,
             "tiny_spike": 1e-8, "spike_warmup": 3}
    ours = trained(zij.AdamWAdv, lr=1e-2, weight_decay=0.0, **spike)
    theirs = trained(zij.KourkoutasBeta, lr=1e-2, beta1=0.9, beta2_max=0.995, beta2_min=0.88, alpha=0.93,
                     tiny_spike=1e-8, warmup_steps=3, bias_correction="beta2max")
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    assert not all(torch.equal(a, b) for a, b in zip(ours, trained(zij.AdamWAdv, lr=1e-2, weight_decay=0.0,
                                                                    betas=(0.9, 0.995))))


def test_kourkoutas_flag_lowers_beta2_on_a_spike():
    # One tensor, gradient norm 1 for five steps, then 100: after the spike its beta2 is near beta2_min.
    p = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = zij.AdamWAdv([p], lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), kourkoutas_beta=True,
                       beta2_min=0.9, spike_decay=0.9)
    for scale in [1.0] * 5 + [100.0]:
        p.grad = torch.full_like(p, 0.5 * scale)  # norm = scale
        before = opt.state[p]["exp_avg_sq"].clone() if opt.state[p] else torch.zeros_like(p)
        opt.step()
    r = opt.state[p]["norm_ema"].item()
    ratio = 100.0 / (r + 1e-8)
    beta2 = 0.999 - (0.999 - 0.9) * ratio / (1 + ratio)
    expected = beta2 * before + (1 - beta2) * p.grad**2
    torch.testing.assert_close(opt.state[p]["exp_avg_sq"], expected, rtol=1e-14, atol=0)
    assert beta2 < 0.91


def test_no_flags_is_adamw_and_alpha_is_ademamix():
    """Equal up to rounding: these classes order the final division and addition differently."""
    kwargs = {"lr": 1e-2, "weight_decay": 0.1}
    for a, b in zip(trained(zij.AdamWAdv, **kwargs), trained(torch.optim.AdamW, **kwargs)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    mix = {**kwargs, "alpha": 2.0, "betas": (0.9, 0.999, 0.99)}
    for a, b in zip(trained(zij.AdamWAdv, **mix), trained(zij.AdEMAMix, **mix)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_orthograd_first_step_is_orthogonal_to_the_weights():
    """At step 1 with cautious off, Adam's update is sign(g~) and g~ is orthogonal to theta; the step
    with orthograd therefore differs from the plain one and its gradient has no weight component."""
    w = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64, requires_grad=True)
    opt = zij.AdamWAdv([w], lr=0.1, weight_decay=0.0, orthograd=True)
    w.grad = torch.tensor([3.0, 4.0, 1.0], dtype=torch.float64)  # along w except the last coordinate
    opt.step()
    # g~ = (0, 0, 1) rescaled to |g| = sqrt(26): only the last coordinate moves, by lr * sign = 0.1
    torch.testing.assert_close(w.detach(), torch.tensor([3.0, 4.0, -0.1], dtype=torch.float64), rtol=0, atol=1e-7)


def test_stochastic_rounding_keeps_small_updates_of_bf16_weights():
    """A step of 1e-4 on bfloat16 weights of 1.0 (spacing 2^-7) is lost by plain rounding and kept on average by SR."""
    torch.manual_seed(0)
    moved = {}
    for flag in (False, True):
        w = torch.ones(20_000, dtype=torch.bfloat16, requires_grad=True)
        opt = zij.LionAdv([w], lr=1e-4, stochastic_rounding=flag)
        for _ in range(10):
            w.grad = torch.ones_like(w)
            opt.step()
        moved[flag] = 1.0 - w.float().mean().item()
    assert moved[False] == 0.0
    assert moved[True] == pytest.approx(10 * 1e-4, rel=0.1)


def test_flags_are_checked():
    p = [torch.ones(2, requires_grad=True)]
    with pytest.raises(ValueError, match="betas"):
        zij.AdamWAdv(p, betas=(0.9,))
    with pytest.raises(ValueError, match="alpha"):
        zij.AdamWAdv(p, alpha=-0.5)


def test_sign_bits_round_trip_eight_to_a_byte():
    from zij.first_order._packed import pack_signs, unpack_signs

    x = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    packed = pack_signs(x)
    assert packed.dtype == torch.uint8 and packed.numel() == 5  # ceil(35 / 8)
    assert torch.equal(unpack_signs(packed, x.numel()), (x > 0).reshape(-1))
    # bit k of byte j is entry 8 j + k: the first byte of [+, -, +, +, -, -, -, +] is 1 + 4 + 8 + 128
    assert pack_signs(torch.tensor([1.0, -1, 2, 3, -1, -2, -3, 4]))[0].item() == 141


def test_factored_flag_keeps_rank_one_moments_exactly():
    # Gradients c_t * (s * u v^T) with a fixed sign pattern s and c_t > 0: |m| and v stay rank one, so the
    # factored state loses nothing and the steps equal the unfactored ones (up to rounding).
    g = torch.Generator().manual_seed(0)
    u, v = torch.rand(6, generator=g, dtype=torch.float64) + 0.1, torch.rand(4, generator=g, dtype=torch.float64) + 0.1
    pattern = torch.outer(u, v) * torch.where(torch.rand(6, 4, generator=g) > 0.5, 1.0, -1.0).double()
    results = []
    for factored in (False, True):
        p = torch.zeros(6, 4, dtype=torch.float64, requires_grad=True)
        opt = zij.AdamWAdv([p], lr=1e-2, weight_decay=0.1, factored=factored)
        for c in (1.0, 0.3, 2.0, 0.7, 1.5):
            p.grad = c * pattern
            opt.step()
        results.append((p.detach().clone(), opt.state[p]))
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-12, atol=1e-15)
    state = results[1][1]
    assert {k: tuple(t.shape) for k, t in state.items() if torch.is_tensor(t)} == {
        "v_row": (6,), "v_col": (4,), "m_row": (6,), "m_col": (4,), "m_sign": (3,)}
    assert state["m_sign"].dtype == torch.uint8


def test_factored_flag_stores_the_nnmf_of_the_moments():
    # With a general gradient the moments are no longer exact, but the state is always SMMF's factors of
    # the moments the step used: here after one step m = (1 - b1) g and v = (1 - b2) g^2.
    from zij.first_order._packed import unpack_signs
    from zij.memory_efficient.smmf import effective_shape, nnmf

    grad = torch.randn(8, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    p = torch.zeros(8, 3, dtype=torch.float64, requires_grad=True)
    opt = zij.AdamWAdv([p], lr=1e-2, weight_decay=0.0, factored=True)
    p.grad = grad
    opt.step()
    state = opt.state[p]
    for (row, col), x in (((state["m_row"], state["m_col"]), 0.1 * grad.abs()), ((state["v_row"], state["v_col"]), 0.001 * grad**2)):
        want_row, want_col = nnmf(x.reshape(effective_shape(24)))  # viewed as 6 x 4, SMMF's near-square shape
        torch.testing.assert_close(row, want_row, rtol=1e-12, atol=0)
        torch.testing.assert_close(col, want_col, rtol=1e-12, atol=0)
    assert torch.equal(unpack_signs(state["m_sign"], 24), (grad > 0).reshape(-1))
    full = sum(t.numel() * t.element_size() for t in (torch.zeros(8, 3, dtype=torch.float64),) * 2)
    kept = sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
    assert kept < full / 2
