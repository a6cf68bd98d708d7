"""SAM-ON: reductions to its base optimizer and to SAM, a hand-computed step, and the selection forms.

No installable package implements SAM-ON (its official code is a training repository), so it is
checked by (1) rho = 0 giving the base optimizer bit for bit, (2) every parameter selected giving
SAM (up to rounding: SAM-ON restores the weights by copying them back, SAM by subtracting the
perturbation), (3) a step computed by hand where the unselected tensor changes the norm SAM would
use, and (4) the ways of naming the normalization parameters.
"""

from __future__ import annotations

import pytest
import torch

import zij
from _problem_helpers import mlp_params, train_mlp

ENTRY = zij.get_entry("SAMON")
F64 = torch.float64


def everything(p):
    return True


@pytest.mark.parametrize("base", [(torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}), (torch.optim.AdamW, {"lr": 0.01})],
                         ids=["sgd", "adamw"])
def test_rho_zero_is_the_base_optimizer(base):
    ours, plain_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.SAMON(base[0](ours, **base[1]), rho=0.0, norm_params=ours[1::2]), ours, 10)
    train_mlp(ENTRY, base[0](plain_params, **base[1]), plain_params, 10)
    assert all(torch.equal(a, b) for a, b in zip(ours, plain_params))


def test_every_parameter_selected_is_sam():
    ours, sam_params = mlp_params(ENTRY), mlp_params(ENTRY)
    train_mlp(ENTRY, zij.SAMON(torch.optim.SGD(ours, lr=0.05, momentum=0.9), rho=0.05, eps=1e-12,
                               norm_params=everything), ours, 10)
    train_mlp(ENTRY, zij.SAM(torch.optim.SGD(sam_params, lr=0.05, momentum=0.9), rho=0.05), sam_params, 10)
    for a, b in zip(ours, sam_params):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_hand_computed_step():
    """f = |a|^2/2 + |b|^2/2, a = (3, 4) selected, b = (1, 2) not: the norm is |g_a| = 5 (not sqrt(30)),
    e_a = 0.5 (0.6, 0.8), b is not moved; SGD lr 0.1 steps a with a + e_a and b with b."""
    a = torch.tensor([3.0, 4.0], dtype=F64, requires_grad=True)
    b = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    seen = []

    def closure():
        a.grad = b.grad = None
        seen.append(b.detach().clone())
        loss = 0.5 * (a**2).sum() + 0.5 * (b**2).sum()
        loss.backward()
        return loss
    opt = zij.SAMON(torch.optim.SGD([a, b], lr=0.1), rho=0.5, eps=0.0, norm_params=[a])
    assert opt.step(closure).item() == pytest.approx(15.0)
    assert all(torch.equal(s, torch.tensor([1.0, 2.0], dtype=F64)) for s in seen)
    torch.testing.assert_close(a.detach(), torch.tensor([3 - 0.33, 4 - 0.44], dtype=F64), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(b.detach(), torch.tensor([0.9, 1.8], dtype=F64), rtol=1e-14, atol=1e-14)


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 6)
        self.bn = torch.nn.BatchNorm1d(6)
        self.out_norm = torch.nn.LayerNorm(6)
        self.head = torch.nn.Linear(6, 2)


def test_model_selects_parameters_named_norm_or_bn():
    model = Net()
    opt = zij.SAMON(torch.optim.SGD(model.parameters(), lr=0.1), norm_params=model)
    names = [n for n, _ in model.named_parameters()]
    assert [names[i] for i in opt.perturbed] == ["bn.weight", "bn.bias", "out_norm.weight", "out_norm.bias"]


def test_group_flag_list_and_predicate_select_the_same():
    model = Net()
    norm = [*model.bn.parameters(), *model.out_norm.parameters()]
    ids = {id(p) for p in norm}
    rest = [p for p in model.parameters() if id(p) not in ids]
    flagged = zij.SAMON(torch.optim.SGD([{"params": rest}, {"params": norm, "sam_on": True}], lr=0.1),
                        norm_params=None)
    listed = zij.SAMON(torch.optim.SGD([{"params": rest}, {"params": norm}], lr=0.1), norm_params=norm)
    predicate = zij.SAMON(torch.optim.SGD([{"params": rest}, {"params": norm}], lr=0.1),
                          norm_params=lambda p: id(p) in ids)
    assert flagged.perturbed == listed.perturbed == predicate.perturbed == list(range(len(rest), len(rest) + 4))


def test_no_selected_parameter_is_refused():
    w = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="norm_params"):
        zij.SAMON(torch.optim.SGD([w], lr=0.1), norm_params=None)
    with pytest.raises(ValueError, match="norm_params"):
        zij.SAMON(torch.optim.SGD([w], lr=0.1), norm_params=torch.nn.Linear(2, 2))


def test_selection_survives_state_dict():
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    opt = zij.SAMON(torch.optim.SGD([a, b], lr=0.1), norm_params=[b])
    other = zij.SAMON(torch.optim.SGD([a, b], lr=0.1), norm_params=[a])
    other.load_state_dict(opt.state_dict())
    assert other.perturbed == [1]
