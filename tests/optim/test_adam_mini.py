"""AdamMini: parity with the official adam-mini package on a named model, the partition, and state sizes.

The matrix's parity test builds references from plain tensors; Adam-mini partitions by
parameter names, so its parity is driven here with ``named_parameters``.
"""

import pytest
import torch

import zij
from zij.memory_efficient.adam_mini import block_of


class Tiny(torch.nn.Module):
    """Names that reach every branch of the official partition (dim 8, 2 heads of 32 entries)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)

        def w(*shape):
            return torch.nn.Parameter(torch.randn(*shape, generator=g, dtype=torch.float64) * 0.3)

        self.embed = w(10, 8)        # one value per row (token)
        self.q_proj = w(8, 8)        # one value per head
        self.v_proj = w(8, 8)        # one value per row (neuron)
        self.mlp_bias = w(8)         # Adam: one value per coordinate
        self.norm = w(8)             # one value per tensor
        self.other = w(3, 8)         # not a known name: one value per tensor

    def forward(self, tokens):
        x = self.embed[tokens]
        x = torch.tanh(x @ self.q_proj.t()) * self.norm
        x = torch.tanh(x @ self.v_proj.t() + self.mlp_bias)
        return x @ self.other.t()


def loss_of(model):
    tokens = torch.tensor([0, 3, 5, 9, 2, 2])
    target = torch.linspace(-1, 1, 18, dtype=torch.float64).reshape(6, 3)
    return ((model(tokens) - target) ** 2).mean()


def test_partition_follows_the_names():
    model = Tiny()
    opt = zij.AdamMini.from_model(model, dim=8, n_heads=2, weight_decay=0.1)
    got = {g["name"]: (g["block"], g["weight_decay"]) for g in opt.param_groups}
    assert got == {"embed": ("row", 0.1), "q_proj": ("head", 0.1), "v_proj": ("row", 0.1),
                   "mlp_bias": ("adam", 0.0), "norm": ("tensor", 0.0), "other": ("tensor", 0.1)}
    assert block_of("layers.0.mlp.norm.weight", torch.zeros(4)) == "tensor"  # vectors never take rows


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_parity_with_adam_mini(weight_decay):
    import adam_mini  # the test extra installs it: a missing package is a failure

    ours, theirs = Tiny(), Tiny()
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay, dim=8, n_heads=2)
    opt = zij.AdamMini.from_model(ours, **kw)
    ref = adam_mini.Adam_mini(theirs.named_parameters(), verbose=False, **kw)
    for step in range(50):
        for model, o in ((ours, opt), (theirs, ref)):
            o.zero_grad()
            loss_of(model).backward()
            o.step()
        for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12, msg=lambda m: f"step {step + 1}, {name}: {m}")


def test_state_of_a_64_by_128_matrix():
    # The first moment is full (64 * 128); the second is one value per block.
    sizes = {}
    for block, blocks in (("tensor", 1), ("row", 64), ("head", 8), ("adam", 64 * 128)):
        p = torch.randn(64, 128, requires_grad=True)
        opt = zij.AdamMini([p], block=block, dim=32, n_heads=1)  # heads of 32 * 32 = 1024 entries
        p.grad = torch.randn(64, 128)
        opt.step()
        state = opt.state[p]
        assert state["exp_avg"].shape == (64, 128)
        assert state["exp_avg_sq"].numel() == blocks
        sizes[block] = sum(t.numel() for t in state.values() if isinstance(t, torch.Tensor))
    assert sizes["tensor"] == 64 * 128 + 1 and sizes["row"] == 64 * 128 + 64


def test_one_block_per_tensor_by_hand():
    # eta = 0.1, beta1 = 0.5, beta2 = 0.5, eps = 0, one block over g = (3, 4):
    # m = (1.5, 2);  v = 0.5 * mean(9, 16) = 6.25;  m_hat = (3, 4);  v_hat = 12.5, sqrt = 3.5355339059
    # theta = (1, 1) - 0.1 * (3, 4) / 3.5355339059 = (0.9151471863, 0.8868629150)
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = zij.AdamMini([p], lr=0.1, betas=(0.5, 0.5), eps=0.0)
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.tensor([0.9151471863, 0.8868629150], dtype=torch.float64),
                               rtol=0, atol=1e-9)


def test_adam_blocks_equal_adamw():
    torch.manual_seed(0)
    a = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_()
    ours = zij.AdamMini([a], lr=1e-2, weight_decay=0.1, block="adam")
    ref = torch.optim.AdamW([b], lr=1e-2, weight_decay=0.1)
    for _ in range(20):
        g = torch.randn(5, 3, dtype=torch.float64)
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
