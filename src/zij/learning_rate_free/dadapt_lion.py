"""D-Adaptation Lion: Lion scaled by a growing lower bound on the distance to a solution (Defazio and Mishchenko)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from .._tensorlist import TensorList
from ..blocks import decoupled_decay_, per_tensor, sign_direction


def dadapt_lion_update(param, grad, exp_avg, s, *, dlr: float, beta1: float, beta2: float, weight_decay: float):
    """One D-Adapted Lion step for a tensor or a TensorList, in place; returns its terms of the estimate.

    theta <- (1 - dlr wd) theta;  u = sign(b1 m + (1 - b1) g);  theta <- theta - dlr u;
    m <- b2 m + (1 - b2) dlr g;  a = dlr <u, s>;  s <- sqrt(b2) s + (1 - sqrt(b2)) dlr u.
    Returns (<u, s> with s before this step, ||s||_1 after it), per tensor.
    """
    root = beta2**0.5
    decoupled_decay_(param, dlr, weight_decay)
    update = sign_direction((exp_avg * beta1).add_(grad, alpha=1 - beta1))  # NaN stays NaN, unlike sign_
    param.add_(update, alpha=-dlr)
    exp_avg.mul_(beta2).add_(grad, alpha=(1 - beta2) * dlr)
    dot = per_tensor(lambda u, x: torch.dot(u.flatten(), x.flatten().to(u.dtype)), update, s)
    s.mul_(root).add_(update, alpha=(1 - root) * dlr)
    l1 = per_tensor(lambda x: x.abs().sum(), s)
    return dot, l1


class DAdaptLion(ZijOptimizer):
    r"""D-Adaptation Lion: Lion's sign steps scaled by a never-decreasing lower bound $d$ on the distance to a solution.

    Each coordinate moves by $\delta_t = \eta\, d_t$ along the sign of Lion's interpolated
    momentum. $d$ is raised whenever the weighted sum $r$ of the correlations between the
    signs and the accumulated steps $s$ shows that the iterates must travel further.

    $$
    \begin{aligned}
    \delta_t &= \eta\, d_t \\
    u_t &= \operatorname{sign}\bigl(\beta_1 m_t + (1-\beta_1)\, g_t\bigr) \\
    \theta_{t+1} &= (1 - \delta_t \lambda)\, \theta_t - \delta_t\, u_t \\
    m_{t+1} &= \beta_2 m_t + (1-\beta_2)\, \delta_t\, g_t \\
    a_t &= \delta_t \langle u_t, s_t \rangle \\
    s_{t+1} &= \sqrt{\beta_2}\, s_t + (1-\sqrt{\beta_2})\, \delta_t\, u_t \\
    r_{t+1} &= \sqrt{\beta_2}\, r_t + (1-\sqrt{\beta_2})\, a_t \\
    \hat d_{t+1} &= \frac{r_{t+1}}{(1-\sqrt{\beta_2})\, \lVert s_{t+1}\rVert_1}, \qquad d_{t+1} = \max\bigl(d_t,\ \hat d_{t+1}\bigr)
    \end{aligned}
    $$

    This is the official code's DAdaptLion (dadaptation 3.2): the momentum $m$ averages
    gradients scaled by $\delta_t$ while $u_t$ mixes it with the unscaled $g_t$, as there.
    Inner products and norms run over all parameters of all groups; $d$, $r$ and the step
    count are shared by all groups and kept in every group dict; each group uses its own
    $\eta$, and a group with $\eta = 0$ neither moves nor contributes (the official code
    accepts only one learning rate, or 0, across groups, and moves lr-0 groups too).
    A step in which every gradient and momentum is zero leaves $d$ and $r$ unchanged.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters (through
    the global sums, into all of them), as in torch.optim, and stays in the state; stop or restore a
    checkpoint (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning-rate multiplier $\eta$ (leave at 1; a scheduler may change it).
        betas: $(\beta_1, \beta_2)$, Lion's interpolation and momentum coefficients.
        weight_decay: decoupled weight decay $\lambda$.
        d0: initial lower bound $d_0$.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.DAdaptLion(model.parameters(), lr=1.0)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Defazio and Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023 (the Lion
        version is in the official code). https://github.com/facebookresearch/dadaptation
    """

    state_names = ("exp_avg", "s")
    supports_foreach = True

    def __init__(self, params, lr: float = 1.0, betas=(0.9, 0.99), weight_decay: float = 0.0, d0: float = 1e-6, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, weight_decay=weight_decay, d0=d0, maximize=maximize,
                                   foreach=foreach, state_dtype=state_dtype, d=d0, numerator_weighted=0.0, k=0)
        check_positive(d0, "d0")
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """Perform one optimization step, then raise $d$ from this step's terms.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or ``None``.
        """
        self._terms = []
        loss = super().step(closure)
        first = self.param_groups[0]
        l1 = sum(float(x) for _, _, x in self._terms)
        if l1 == 0:  # nothing moved and nothing was learnt about the distance
            return loss
        root = first["betas"][1] ** 0.5
        numerator = root * first["numerator_weighted"] + (1 - root) * sum(dlr * float(x) for dlr, x, _ in self._terms)
        d = first["d"]
        if any(group["lr"] > 0 for group in self.param_groups):
            d = max(d, numerator / ((1 - root) * l1))
        for group in self.param_groups:
            group.update(d=d, numerator_weighted=numerator, k=group["k"] + 1)
        return loss

    def group_step(self, group, params, grads, states):
        if group["lr"] != 0:
            super().group_step(group, params, grads, states)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        dlr = group["d"] * group["lr"]
        dot, l1 = dadapt_lion_update(p, grad, state["exp_avg"], state["s"], dlr=dlr, beta1=beta1, beta2=beta2,
                                     weight_decay=group["weight_decay"])
        if isinstance(p, TensorList):
            self._terms.extend((dlr, x, y) for x, y in zip(dot, l1))
        else:
            self._terms.append((dlr, dot, l1))


register(OptimizerEntry(
    name="DAdaptLion",
    cls=DAdaptLion,
    canon_id="d-adaptation-lion",
    family="parameter-free",
    aliases=("D-Adapt Lion", "D-Adaptation Lion"),
    recipe={"lr": 0.1},
    capabilities=Capabilities(elementwise=False),
    variants={"decay": {"weight_decay": 0.01}},
    skips={"param_groups": "d is estimated from all groups together, so one DAdaptLion over two groups is not two "
                           "over one group each (the official code does the same)",
           "rosenbrock": "sign steps of a size that never decreases (d only grows) cross Rosenbrock's curved valley "
                         "back and forth instead of following it: no lr-multiplier and d0 tried ends within 0.3 of "
                         "the start's distance reliably (0.27 at best), while quadratic and logistic converge"},
    errors=invalid("lr", "betas", "weight_decay") + (ErrorInput({"d0": 0.0}, "d0"),),
    # parity with dadaptation's DAdaptLion: tests/optim/test_dadapt_adan_lion.py (its step needs no_grad around it)
))
