"""VSGD: variational inference on the true gradient, seen through noisy mini-batch gradients (Kuzina et al., 2025)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from ..blocks import decoupled_decay_

#: The fixed offset of the gamma shape parameter, $2a = 2\kappa + 1 + 10^{-4}$, in the official code.
SHAPE_OFFSET = 1e-4


def vsgd_update(param, grad, mug, bg, bhg, *, step: int, lr: float, ghattg: float, ps: float, tau1: float,
                tau2: float, eps: float, weight_decay: float) -> None:
    """One VSGD step for a tensor or a TensorList, in place.

    theta <- (1 - lr wd) theta;  s_g, s_gh = (2 ps, 2 ps ghattg) / (2 ps + 1e-4) at t = 1,
    else (b_g, b_gh) / (2 ps + 1 + 1e-4);
    mu <- (s_g g + s_gh mu) / (s_g + s_gh);  q = mu^2 + s_g s_gh / (s_g + s_gh);
    b_g <- (1 - t^-tau1) b_g + t^-tau1 (2 ps + q - 2 mu mu_prev + mu_prev^2);
    b_gh <- (1 - t^-tau2) b_gh + t^-tau2 (2 ps ghattg + q - 2 g mu + g^2);  theta <- theta - lr mu / (sqrt(q) + eps).
    """
    decoupled_decay_(param, lr, weight_decay)
    pa2, pbg2, pbhg2 = 2.0 * ps + 1.0 + SHAPE_OFFSET, 2.0 * ps, 2.0 * ghattg * ps
    if step == 1:
        sg, shg = pbg2 / (pa2 - 1.0), pbhg2 / (pa2 - 1.0)
    else:
        sg, shg = bg / pa2, bhg / pa2
    total = sg + shg
    mug_prev = mug.clone()
    mug.mul_(shg).add_(grad * sg).div_(total)
    second = (mug * mug).add_(sg * shg / total)
    bg_target = (mug * mug_prev).mul_(-2.0).add_(second).add_(mug_prev * mug_prev).add_(pbg2)
    bhg_target = (grad * mug).mul_(-2.0).add_(second).add_(grad * grad).add_(pbhg2)
    rho1, rho2 = step ** (-tau1), step ** (-tau2)
    bg.mul_(1.0 - rho1).add_(bg_target, alpha=rho1)
    bhg.mul_(1.0 - rho2).add_(bhg_target, alpha=rho2)
    param.addcdiv_(mug, second.sqrt_().add_(eps), value=-lr)


class VSGD(ZijOptimizer):
    r"""VSGD: step along the posterior mean of the true gradient, normalized by its posterior second moment.

    The true gradient is a latent variable; each mini-batch gradient $\hat g_t$ is a
    noisy observation of it, and it drifts from step to step. Both noises have
    Gamma-distributed precisions, and stochastic variational inference gives closed-form
    updates: the posterior mean $\mu_t$ blends the previous estimate and the new
    observation by their estimated variances (the ratio acts as an adaptive momentum
    coefficient), and the step is normalized by the posterior second moment $q_t$, as
    Adam normalizes by its second moment. The Gamma rates are learned with step sizes
    $t^{-\tau}$; the shape is fixed. Weight decay is decoupled. All operations are
    elementwise.

    $$
    \begin{aligned}
    \theta_{t-1} &\leftarrow (1 - \eta\lambda)\, \theta_{t-1} \\
    (s_{g}, s_{\hat g}) &= \begin{cases} \big(2\kappa,\ 2\kappa\rho\big) / (2\kappa + 10^{-4}) & t = 1 \\ \big(b_{g,t-1},\ b_{\hat g,t-1}\big) / (2\kappa + 1 + 10^{-4}) & t > 1 \end{cases} \\
    \mu_t &= \frac{s_{g}\, \hat g_t + s_{\hat g}\, \mu_{t-1}}{s_{g} + s_{\hat g}}, \qquad \sigma_t^{2} = \frac{s_{g}\, s_{\hat g}}{s_{g} + s_{\hat g}}, \qquad q_t = \mu_t^{2} + \sigma_t^{2} \\
    b_{g,t} &= (1 - t^{-\tau_1})\, b_{g,t-1} + t^{-\tau_1} \big(2\kappa + q_t - 2 \mu_t \mu_{t-1} + \mu_{t-1}^{2}\big) \\
    b_{\hat g,t} &= (1 - t^{-\tau_2})\, b_{\hat g,t-1} + t^{-\tau_2} \big(2\kappa\rho + q_t - 2 \hat g_t \mu_t + \hat g_t^{2}\big) \\
    \theta_t &= \theta_{t-1} - \eta\, \frac{\mu_t}{\sqrt{q_t} + \epsilon}
    \end{aligned}
    $$

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        ghattg: $\rho$, prior ratio of the observation-noise variance to the drift variance.
        ps: $\kappa$, prior strength.
        tau1: $\tau_1$, decay exponent of the step size of the drift-rate update.
        tau2: $\tau_2$, decay exponent of the step size of the observation-noise-rate update.
        weight_decay: decoupled weight decay $\lambda$.
        eps: $\epsilon$, added to the denominator.
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.VSGD(model.parameters(), lr=0.1)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kuzina, Chen, Esmaeili and Tomczak, "Variational Stochastic Gradient Descent for Deep Neural Networks",
        TMLR 2025. https://arxiv.org/abs/2404.06549
    """

    state_names = ("mug", "bg", "bhg")
    supports_foreach = True

    def __init__(self, params, lr: float = 0.1, ghattg: float = 30.0, ps: float = 1e-8, tau1: float = 0.81,
                 tau2: float = 0.9, weight_decay: float = 0.0, eps: float = 1e-8, *, maximize: bool = False,
                 foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, ghattg=ghattg, ps=ps, tau1=tau1, tau2=tau2, weight_decay=weight_decay,
                                   eps=eps, maximize=maximize, foreach=foreach, state_dtype=state_dtype)
        check_nonnegative(ghattg, "ghattg")
        check_nonnegative(ps, "ps")
        check_nonnegative(tau1, "tau1")
        check_nonnegative(tau2, "tau2")
        super().__init__(params, defaults)

    def update(self, p, grad, state, group):
        vsgd_update(p, grad, state["mug"], state["bg"], state["bhg"], step=state["step"], lr=group["lr"],
                    ghattg=group["ghattg"], ps=group["ps"], tau1=group["tau1"], tau2=group["tau2"], eps=group["eps"],
                    weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="VSGD",
    cls=VSGD,
    canon_id="vsgd",
    family="adaptive",
    recipe={"lr": 0.05},
    recipes={"rosenbrock": {"lr": 0.01}},
    errors=invalid("lr", "eps", "weight_decay") + (
        ErrorInput({"ghattg": -1.0}, "ghattg"),
        ErrorInput({"ps": -1e-8}, "ps"),
        ErrorInput({"tau1": -0.5}, "tau1"),
        ErrorInput({"tau2": float("nan")}, "tau2"),
    ),
    parity=(
        # pytorch-optimizer's VSGD starts b_g, b_gh at their priors where the official code starts them at zero; the
        # first step's rate 1^-tau = 1 overwrites either start, so the rules agree.
        Parity("pytorch-optimizer", "pytorch_optimizer:VSGD",
               {"lr": 0.05, "ghattg": 10.0, "ps": 1e-6, "tau1": 0.7, "tau2": 0.8, "weight_decay": 0.1},
               {"lr": 0.05, "ghattg": 10.0, "ps": 1e-6, "tau1": 0.7, "tau2": 0.8, "weight_decay": 0.1}),
    ),
))
