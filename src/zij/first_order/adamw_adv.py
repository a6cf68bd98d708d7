"""AdamWAdv: AdamW with the published refinements as flags (cautious, Grams, OrthoGrad, atan2, AdEMAMix,
Kourkoutas-beta, bf16 rounding)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Variant, invalid, register
from .._tensorlist import TensorList
from ..blocks import cautious_, decoupled_decay_, ema_, ema_sq_, grams_, orthograd, stochastic_round_
from .._checkpoint import restore_exact
from ._packed import compress_, expand, factored_state
from .kourkoutas_beta import sunspike_beta2


def apply_step_(param, update, *, lr: float, scale: float, weight_decay: float, stochastic_rounding: bool) -> None:
    """theta <- (1 - lr wd) theta - lr scale u, in place; bfloat16 weights are rounded stochastically when asked.

    With ``stochastic_rounding`` a bfloat16 parameter is updated in float32 and written back
    with :func:`zij.blocks.stochastic_round_`, so updates smaller than its spacing are not lost.
    """
    many = isinstance(param, TensorList)
    rounded = stochastic_rounding and (param[0] if many else param).dtype == torch.bfloat16
    target = param.to(torch.float32) if rounded else param
    decoupled_decay_(target, lr, weight_decay)
    target.add_(update, alpha=-lr * scale)
    if rounded:
        for p, t in zip(param, target) if many else [(param, target)]:
            stochastic_round_(p, t)


def adamw_adv_update(param, grad, exp_avg, exp_avg_sq, exp_avg_slow, *, step: int, lr: float, beta1: float,
                     beta2: float, beta3: float, alpha: float, eps: float, weight_decay: float, cautious: bool,
                     grams: bool, orthogonal: bool, atan2: bool, a: float, b: float, stochastic_rounding: bool,
                     spike: dict | None = None) -> None:
    """One AdamWAdv step for a tensor or a TensorList, in place (``exp_avg_slow`` is None unless alpha > 0).

    ``spike`` (Kourkoutas-beta; None: off) holds the gradient-norm average ``norm_ema`` (one 0-d tensor per
    tensor) and the arguments of :func:`zij.first_order.kourkoutas_beta.sunspike_beta2` but ``beta2_max``,
    which is ``beta2``: this step's beta2 of each tensor then replaces ``beta2`` in v's average (the bias
    correction keeps ``beta2``, as Kourkoutas-beta's ``"beta2max"`` mode does).

    g <- OrthoGrad(g, theta) if orthogonal;  m, v: Adam's moments, m_s <- b3 m_s + (1 - b3) g;
    n = m / (1 - b1^t) + alpha m_s;  u = n / (sqrt(v / (1 - b2^t)) + eps), or atan2(n, b sqrt(v_hat)) (times a);
    u <- sign(g) |u| if grams;  u <- cautious mask of u if cautious;  theta <- (1 - lr wd) theta - lr u.
    """
    if orthogonal:
        grad = orthograd(grad, param)
    ema_(exp_avg, grad, beta1)
    if exp_avg_slow is not None:
        ema_(exp_avg_slow, grad, beta3)
    if spike is None:
        ema_sq_(exp_avg_sq, grad, beta2)
    else:
        beta2_t = sunspike_beta2(grad.norm(), spike["norm_ema"], alpha=spike["decay"], beta2_min=spike["beta2_min"],
                                 beta2_max=beta2, tiny_spike=spike["tiny"], warming_up=False)
        if step <= spike["warmup_steps"]:  # held at the midpoint while the norm average fills
            beta2_t = 0.5 * (spike["beta2_min"] + beta2)
        exp_avg_sq.mul_(beta2_t).add_(grad * grad * (1 - beta2_t))
    numerator = exp_avg / (1 - beta1**step)
    if exp_avg_slow is not None:
        numerator.add_(exp_avg_slow, alpha=alpha)
    root = (exp_avg_sq / (1 - beta2**step)).sqrt_()
    if atan2:
        update, scale = numerator.atan2_(root.mul_(b)), a
    else:
        update, scale = numerator.div_(root.add_(eps)), 1.0
    if grams:
        grams_(update, grad)
    if cautious:
        cautious_(update, grad)
    apply_step_(param, update, lr=lr, scale=scale, weight_decay=weight_decay, stochastic_rounding=stochastic_rounding)


class AdamWAdv(ZijOptimizer):
    r"""AdamWAdv: AdamW with the published refinements of its update as composable flags.

    Every flag is off by default, which gives AdamW. Each one changes one part of
    the update and combines with the others: ``orthograd`` projects the gradient
    away from the weights before the moments see it (OrthoGrad); ``alpha > 0`` adds
    AdEMAMix's slow moving average $m^{s}$ to the numerator; ``atan2`` replaces the
    division by $\sqrt{\hat v} + \epsilon$ with Adam-atan2's bounded, epsilon-free
    form; ``grams`` keeps the update's magnitude but takes the gradient's sign; and
    ``cautious`` masks coordinates whose update disagrees with the gradient
    (C-AdamW's rescaling by $d / (\operatorname{nnz}(\phi) + 1)$). With
    ``stochastic_rounding`` bfloat16 weights are updated in float32 and rounded
    back stochastically. With ``kourkoutas_beta`` each tensor's $\beta_2$ drops
    below ``betas[1]`` when its gradient norm spikes above the running average
    of its norms (Kourkoutas-beta's sunspike). With a single flag on, the step
    equals the dedicated class: ``cautious`` is CautiousAdamW, ``grams`` is Grams,
    ``atan2`` is AdamAtan2, ``alpha`` with ``betas[2]`` is AdEMAMix without its
    warmups, and ``kourkoutas_beta`` is KourkoutasBeta with
    ``bias_correction="beta2max"``. With ``factored`` the moments live between
    steps in SMMF's compressed form: each tensor is viewed as a near-square
    $p \times q$ matrix, $v$ and $|m|$ are kept as rank-one non-negative factors
    (their row and column sums) and $m$'s signs as bits packed eight to a byte,
    so a tensor of $n$ entries keeps $2(p + q)$ numbers and $n/8$ bytes; the
    moments are rebuilt, stepped at full precision and factored again. The rule
    keeps Adam's constant betas and bias corrections (not SMMF's step-dependent
    rates); rank-one moments are kept exactly, so for gradients that are
    positive multiples of one rank-one pattern the steps equal the unfactored ones.

    $$
    \begin{aligned}
    \tilde g_t &= \begin{cases} g_t - \frac{\langle \theta_{t-1}, g_t\rangle}{\langle \theta_{t-1}, \theta_{t-1}\rangle}\theta_{t-1}, \text{ rescaled to } \|g_t\| & \text{orthograd} \\ g_t & \text{otherwise} \end{cases} \\
    \beta_{2,t} &= \begin{cases} \beta_2 - (\beta_2 - \beta_{2,\min})\, \frac{s_t}{1 + s_t},\ s_t = \frac{\lVert \tilde g_t\rVert}{r_t + \tau},\ r_t = \kappa r_{t-1} + (1-\kappa)\lVert \tilde g_t\rVert & \text{kourkoutas\_beta} \\ \beta_2 & \text{otherwise} \end{cases} \\
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\tilde g_t, \quad m^{s}_t = \beta_3 m^{s}_{t-1} + (1-\beta_3)\tilde g_t, \quad v_t = \beta_{2,t} v_{t-1} + (1-\beta_{2,t})\tilde g_t^{2} \\
    n_t &= \frac{m_t}{1-\beta_1^{t}} + \alpha\, m^{s}_t, \qquad \hat v_t = \frac{v_t}{1-\beta_2^{t}} \\
    u_t &= \begin{cases} a \operatorname{atan2}\bigl(n_t, b\sqrt{\hat v_t}\bigr) & \text{atan2} \\ n_t / \bigl(\sqrt{\hat v_t} + \epsilon\bigr) & \text{otherwise} \end{cases} \\
    u_t &\leftarrow \operatorname{sign}(\tilde g_t) \odot |u_t| \quad \text{(grams)}, \qquad u_t \leftarrow \frac{d}{\operatorname{nnz}(\phi_t) + 1}\, \phi_t \odot u_t,\ \phi_t = \mathbf{1}[u_t \odot \tilde g_t > 0] \quad \text{(cautious)} \\
    \theta_t &= (1 - \eta\lambda)\,\theta_{t-1} - \eta\, u_t \\
    &\text{factored: } m_{t-1} = \sigma_{t-1} \odot (r^{m}_{t-1} c^{m\top}_{t-1}),\ v_{t-1} = r^{v}_{t-1} c^{v\top}_{t-1};\ \text{after the step } \sigma_t = \operatorname{sign}(m_t),\ (r^{m}_t, c^{m}_t) = \operatorname{nnmf}(\lvert m_t\rvert),\ (r^{v}_t, c^{v}_t) = \operatorname{nnmf}(v_t)
    \end{aligned}
    $$

    $d$ is the number of entries of the tensor; the slow average is kept only when $\alpha > 0$;
    $\lVert \tilde g_t\rVert$, $r_t$ (from $r_0 = 0$) and $\beta_{2,t}$ are per tensor, and $\beta_{2,t}$ is
    held at $(\beta_{2,\min} + \beta_2)/2$ for the first ``spike_warmup`` steps.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$, or $(\beta_1, \beta_2, \beta_3)$ with the slow average's decay (default 0.9999).
        eps: $\epsilon$, added to the denominator (unused with ``atan2``).
        weight_decay: decoupled weight decay $\lambda$.
        alpha: weight $\alpha$ of AdEMAMix's slow average (0: off).
        cautious: mask coordinates where the update opposes the gradient (Liang et al., 2024).
        grams: take the gradient's sign with the update's magnitude (Cao et al., 2024).
        orthograd: remove the gradient's component along the weights (Prieto et al., 2025).
        atan2: Adam-atan2's direction $a \operatorname{atan2}(n, b\sqrt{\hat v})$ (Everett et al., 2024).
        a: scale $a$ of the atan2 direction.
        b: scale $b$ of the root inside atan2.
        kourkoutas_beta: per-tensor $\beta_{2,t}$ from gradient-norm spikes (Kassinos, 2025).
        beta2_min: $\beta_{2,\min}$, the second-moment decay under a full spike (with ``kourkoutas_beta``).
        spike_decay: $\kappa$, decay of the running average $r_t$ of gradient norms (with ``kourkoutas_beta``).
        tiny_spike: $\tau$, keeps the spike ratio finite (with ``kourkoutas_beta``).
        spike_warmup: number of first steps with the midpoint $\beta_{2,t}$ (with ``kourkoutas_beta``).
        factored: keep $m$ and $v$ between steps as SMMF does (Park and Lee, 2025): rank-one factors of the
            tensor viewed as a near-square matrix, and $m$'s signs packed eight to a byte.
        stochastic_rounding: round bfloat16 weights stochastically after the step (Zamirai et al., 2020).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.AdamWAdv(model.parameters(), lr=1e-3, weight_decay=0.01, cautious=True, orthograd=True)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Loshchilov and Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. https://arxiv.org/abs/1711.05101
        Liang et al., "Cautious Optimizers", arXiv 2024. https://arxiv.org/abs/2411.16085
        Cao et al., "Grams: Gradient Descent with Adaptive Momentum Scaling", arXiv 2024. https://arxiv.org/abs/2412.17107
        Prieto et al., "Grokking at the Edge of Numerical Stability", ICLR 2025. https://arxiv.org/abs/2501.04697
        Everett et al., "Scaling Exponents Across Parameterizations and Optimizers", ICML 2024. https://arxiv.org/abs/2407.05872
        Pagliardini et al., "The AdEMAMix Optimizer: Better, Faster, Older", ICLR 2025. https://arxiv.org/abs/2409.03033
        Park and Lee, "SMMF: Square-Matricized Momentum Factorization for Memory-Efficient Optimization", AAAI 2025. https://arxiv.org/abs/2412.08894
        Kassinos, "Kourkoutas-Beta: A Sunspike-Driven Adam Optimizer with Desert Flair", arXiv 2025. https://arxiv.org/abs/2508.12996
        Zamirai et al., "Revisiting BFloat16 Training", arXiv 2020. https://arxiv.org/abs/2010.06192
    """

    state_names = ("exp_avg", "exp_avg_sq")
    supports_foreach = True
    supports_compile = True
    # options added after the class first shipped: older state_dicts load with the flag off
    option_defaults = {**ZijOptimizer.option_defaults, "kourkoutas_beta": False, "beta2_min": 0.9,
                       "spike_decay": 0.9, "tiny_spike": 1e-8, "spike_warmup": 0, "factored": False}

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 alpha: float = 0.0, *, cautious: bool = False, grams: bool = False, orthograd: bool = False,
                 atan2: bool = False, a: float = 1.27, b: float = 1.0, kourkoutas_beta: bool = False,
                 beta2_min: float = 0.9, spike_decay: float = 0.9, tiny_spike: float = 1e-8, spike_warmup: int = 0,
                 factored: bool = False, stochastic_rounding: bool = False, maximize: bool = False, foreach: bool | None = None,
                 state_dtype: torch.dtype | None = None):
        betas = tuple(betas)
        if len(betas) not in (2, 3):
            raise ValueError(f"Invalid betas: {betas!r} (expected (beta1, beta2) or (beta1, beta2, beta3))")
        defaults = hyperparameters(n_betas=None, lr=lr, betas=betas if len(betas) == 3 else (*betas, 0.9999),
                                   eps=eps, weight_decay=weight_decay, alpha=alpha, cautious=bool(cautious),
                                   grams=bool(grams), orthograd=bool(orthograd), atan2=bool(atan2), a=a, b=b,
                                   kourkoutas_beta=bool(kourkoutas_beta), beta2_min=beta2_min, spike_decay=spike_decay,
                                   tiny_spike=tiny_spike, spike_warmup=spike_warmup, factored=bool(factored),
                                   stochastic_rounding=bool(stochastic_rounding), maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype)
        check_positive(a, "a")
        check_positive(b, "b")
        check_unit(beta2_min, "beta2_min")
        if beta2_min > defaults["betas"][1]:
            raise ValueError(f"Invalid beta2_min: {beta2_min!r} (expected at most betas[1] = {defaults['betas'][1]!r})")
        check_unit(spike_decay, "spike_decay")
        check_nonnegative(tiny_spike, "tiny_spike")
        check_int(spike_warmup, "spike_warmup", minimum=0)
        if not (isinstance(alpha, (int, float)) and alpha >= 0):
            raise ValueError(f"Invalid alpha: {alpha!r} (expected a number >= 0)")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        if group["factored"]:
            state["step"] = 0
            state.update(factored_state(p, group.get("state_dtype") or p.dtype, first=True))
        else:
            super().init_state(p, state, group)
        if group["alpha"] > 0:
            state["exp_avg_slow"] = self.zeros_like(p, group)
        if group["kourkoutas_beta"]:
            state["norm_ema"] = torch.zeros((), dtype=group.get("state_dtype") or p.dtype, device=p.device)

    def update(self, p, grad, state, group):
        beta1, beta2, beta3 = group["betas"]
        slow = state["exp_avg_slow"] if "exp_avg_slow" in state else None
        spike = None
        if group["kourkoutas_beta"]:
            spike = {"norm_ema": state["norm_ema"], "decay": group["spike_decay"], "beta2_min": group["beta2_min"],
                     "tiny": group["tiny_spike"], "warmup_steps": group["spike_warmup"]}
        if group["factored"]:
            exp_avg, exp_avg_sq = expand(state, grad.shape)
        else:
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        adamw_adv_update(p, grad, exp_avg, exp_avg_sq, slow, step=state["step"], lr=group["lr"],
                         beta1=beta1, beta2=beta2, beta3=beta3, alpha=group["alpha"], eps=group["eps"],
                         weight_decay=group["weight_decay"], cautious=group["cautious"], grams=group["grams"],
                         orthogonal=group["orthograd"], atan2=group["atan2"], a=group["a"], b=group["b"],
                         stochastic_rounding=group["stochastic_rounding"], spike=spike)
        if group["factored"]:
            compress_(state, exp_avg, exp_avg_sq)

    def load_state_dict(self, state_dict):
        """Load as torch does, but keep the packed sign bits (``factored``) as bytes."""
        super().load_state_dict(state_dict)
        restore_exact(self, state_dict, ("m_sign",))

    def use_foreach(self, group, params):
        return not group["factored"] and super().use_foreach(group, params)

    def compile_refusal(self, group):
        return "kourkoutas_beta's warm-up branches on the step count" if group["kourkoutas_beta"] else None


ORTHOGRAD_SKIPS = {check: "OrthoGrad removes the gradient's component along the weights, so it cannot shrink "
                          "weights whose gradient points along them, as on this problem; it is meant for "
                          "networks whose weights should not grow (Prieto et al., 2025)"
                   for check in ("quadratic", "rosenbrock")}

register(OptimizerEntry(
    name="AdamWAdv",
    cls=AdamWAdv,
    canon_id="adamw-adv",
    family="adam-family",
    aliases=("AdamW_adv",),
    recipe={"lr": 0.05, "weight_decay": 0.0},
    recipes={"rosenbrock": {"lr": 0.01}},
    variants={
        "cautious": {"cautious": True},
        "grams": {"grams": True},
        "orthograd": Variant({"orthograd": True}, skips=ORTHOGRAD_SKIPS),
        "atan2": {"atan2": True},
        "ademamix": {"alpha": 2.0, "betas": (0.9, 0.999, 0.99)},
        "kourkoutas_beta": Variant({"kourkoutas_beta": True, "beta2_min": 0.88, "spike_warmup": 2},
                                   skips={"compiled": "its warm-up branches on the step count"}),
        "factored": Variant({"factored": True}, skips={"compiled": "the factored state is stepped tensor by tensor "
                                                                   "(no foreach path)"}),
        "stochastic_rounding": {"stochastic_rounding": True},
        "all": Variant({"cautious": True, "orthograd": True, "atan2": True, "alpha": 1.0, "stochastic_rounding": True},
                       skips=ORTHOGRAD_SKIPS),
    },
    errors=invalid("lr", "eps", "weight_decay", betas=(1.0, 0.999)) + (
        ErrorInput({"alpha": -1.0}, "alpha"),
        ErrorInput({"a": 0.0}, "a"),
        ErrorInput({"betas": (0.9, 0.999, 1.0)}, r"betas\[2\]"),
        ErrorInput({"beta2_min": 1.0}, "beta2_min"),
        ErrorInput({"beta2_min": 0.9999}, "beta2_min"),
        ErrorInput({"spike_decay": 1.0}, "spike_decay"),
        ErrorInput({"tiny_spike": -1.0}, "tiny_spike"),
        ErrorInput({"spike_warmup": -1}, "spike_warmup"),
    ),
))
