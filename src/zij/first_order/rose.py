"""Rose: a stateless step, each output slice of the gradient divided by its range (Kieren, 2026)."""

from __future__ import annotations

import torch

from .._base import ZijOptimizer, check_lr, check_nonnegative, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, Parity, invalid, register
from .._tensorlist import TensorList
from ..blocks import per_tensor, stochastic_round_


#: The names ``compute_dtype`` accepts, as in the official code.
DTYPE_NAMES = {"float16": torch.float16, "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32,
               "float64": torch.float64, "fp64": torch.float64, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
               "none": None, "null": None}


def resolve_dtype(compute_dtype) -> torch.dtype | None:
    """A ``compute_dtype`` argument (a floating dtype, one of :data:`DTYPE_NAMES`, or None) as a dtype or None."""
    if isinstance(compute_dtype, str):
        if compute_dtype.lower() not in DTYPE_NAMES:
            raise ValueError(f"Invalid compute_dtype: {compute_dtype!r} (expected one of {', '.join(DTYPE_NAMES)})")
        return DTYPE_NAMES[compute_dtype.lower()]
    if compute_dtype is not None and not (isinstance(compute_dtype, torch.dtype) and compute_dtype.is_floating_point):
        raise ValueError(f"Invalid compute_dtype: {compute_dtype!r} (expected a floating torch.dtype, a name or None)")
    return compute_dtype


#: About how many entries the foreach path updates together: the copies in the compute dtype stay in the CPU's
#: cache between its operations (with all of a group's tensors at once it was slower than the loop).
CHUNK = 1 << 16


def _chunks(index: list[int], params: list):
    """``index`` in runs of consecutive parameters that hold about :data:`CHUNK` entries together."""
    chunk, held = [], 0
    for i in index:
        chunk.append(i)
        held += params[i].numel()
        if held >= CHUNK:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _centred(g: torch.Tensor, centralize: bool) -> torch.Tensor:
    """The gradient with its row means removed (rank 2 or more, with ``centralize``), else as is."""
    if g.ndim > 1 and centralize:
        return g - g.mean(dim=tuple(range(1, g.ndim)), keepdim=True)
    return g


def _ranges(g: torch.Tensor, stabilize: bool) -> torch.Tensor:
    """The denominators of a vector or higher-rank gradient: |max g| - min g for a vector; for rank 2 or more each
    row's range, pulled toward the mean range with ``stabilize``, shaped to broadcast. Zeros become 1."""
    if g.ndim == 1:
        low, high = g.aminmax()
        denom = high.abs() - low
    else:
        axes = tuple(range(1, g.ndim))
        denom = g.amax(dim=axes, keepdim=True).abs() - g.amin(dim=axes, keepdim=True)
        if stabilize:
            sigma, mu = torch.std_mean(denom, correction=0)
            trust = mu / (sigma + mu).masked_fill(mu == 0, 1.0)
            denom = mu.lerp(denom, trust)
    return denom.masked_fill(denom == 0, 1.0)


def rose_update(param, grad, *, lr: float, decay_factor: float | None, centralize: bool,
                stabilize: bool, compute_dtype: torch.dtype | None, bf16_sr: bool) -> None:
    """One Rose step for one tensor, or a TensorList of tensors of one dtype, all scalars or none, in place.

    theta <- max(0, 1 - lr wd) theta.  A scalar: theta <- theta - lr sign(g).  A vector: d = |max g| - min g.
    Rank 2 or more, rows along the first axis: G~ = G minus its row means (centralize); rho_i = |max_j G~_ij| -
    min_j G~_ij; d_i = mu + tau (rho_i - mu), tau = mu / (mu + sigma) (stabilize).  Zero denominators become 1;
    theta <- theta - lr G~ / d.  The arithmetic runs in ``compute_dtype``; bfloat16 weights are written back with
    stochastic rounding when ``bf16_sr``.
    """
    first = param[0] if isinstance(param, TensorList) else param
    rounded = bf16_sr and first.dtype == torch.bfloat16
    dtype = torch.float32 if rounded and compute_dtype is None else (compute_dtype or first.dtype)
    g = grad.to(dtype)
    x = param.to(dtype)  # the parameter itself where ``dtype`` is its own
    if decay_factor is not None:
        x.mul_(decay_factor)
    if first.ndim == 0:
        x.add_(g.sign(), alpha=-lr)
    else:
        g = per_tensor(lambda t: _centred(t, centralize), g)
        x.addcdiv_(g, per_tensor(lambda t: _ranges(t, stabilize), g), value=-lr)
    if rounded:
        per_tensor(lambda p, t: stochastic_round_(p, t.to(torch.float32)), param, x)
    elif dtype != first.dtype:
        param.copy_(x)


class Rose(ZijOptimizer):
    r"""Rose (Range-Of-Slice Equilibration): a stateless step that divides each gradient row by its range.

    Rose keeps no optimizer state at all. Each step it views a weight tensor as a matrix
    of output slices (first axis by the others), removes each slice's mean, and divides
    the slice by its range; the ranges are first pulled toward their mean by a trust
    factor that is near 1 when they agree and near 0 when they are noisy. A vector (a
    bias, a norm scale) is divided by the range of its entries as a whole, and a scalar
    moves by $-\eta\,\operatorname{sign}(g_t)$. Weight decay is decoupled.

    $$
    \begin{aligned}
    \tilde G_{t} &= G_t - \frac{1}{n} G_t 1_n 1_n^{\top} \\
    \rho_{t,i} &= \Big|\max_{j} \tilde G_{t,ij}\Big| - \min_{j} \tilde G_{t,ij}, \qquad i = 1, \dots, m \\
    \mu_t &= \frac{1}{m} \sum_{i} \rho_{t,i}, \qquad \sigma_t = \Big(\frac{1}{m} \sum_{i} (\rho_{t,i} - \mu_t)^{2}\Big)^{1/2}, \qquad \tau_t = \frac{\mu_t}{\mu_t + \sigma_t} \\
    d_{t,i} &= \mu_t + \tau_t\, (\rho_{t,i} - \mu_t), \qquad d_{t,i} \leftarrow 1 \ \text{if } d_{t,i} = 0 \\
    \theta_{t,ij} &= (1 - \eta\lambda)\, \theta_{t-1,ij} - \eta\, \frac{\tilde G_{t,ij}}{d_{t,i}}
    \end{aligned}
    $$

    This is the rule for a tensor of two or more dimensions with the defaults. With
    ``centralize=False`` the row means are kept; with ``stabilize=False``
    $d_{t,i} = \rho_{t,i}$. The decay factor is floored at 0; with ``wd_schedule`` it is
    $1 - (\eta_t / \eta_{\mathrm{ref}})\lambda$, $\eta_{\mathrm{ref}}$ the given number, or
    for ``True`` the group's ``max_lr`` or ``initial_lr`` (recorded at the first step).
    The arithmetic runs in ``compute_dtype`` (float64 by default, as in the official code).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (the author advises tuning it rather than reusing Adam's).
        weight_decay: decoupled weight decay $\lambda$.
        wd_schedule: scale the decay with the learning-rate schedule (``True``, or the reference rate).
        centralize: remove the row means of gradients of two or more dimensions.
        stabilize: pull the row ranges toward their mean by the trust factor.
        bf16_sr: write bfloat16 weights back with stochastic rounding.
        compute_dtype: dtype of the step's arithmetic, a floating dtype or a name such as ``"fp64"`` or ``"fp32"``
            (``None``: the parameter's; float32 for rounded bfloat16).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.Rose(model.parameters(), lr=1e-3, weight_decay=1e-4)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Kieren, "Rose: Range-Of-Slice Equilibration optimizer", software, 2026. https://github.com/MatthewK78/Rose
    """

    supports_foreach = True

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 1e-4, wd_schedule: bool | float = False,
                 centralize: bool = True, stabilize: bool = True, bf16_sr: bool = True,
                 compute_dtype: torch.dtype | str | None = "fp64", *, maximize: bool = False,
                 foreach: bool | None = None):
        resolve_dtype(compute_dtype)
        if isinstance(wd_schedule, bool):
            pass
        elif isinstance(wd_schedule, (int, float)):
            check_lr(wd_schedule, "wd_schedule")
            if wd_schedule == 0:
                raise ValueError("Invalid wd_schedule: 0 (expected a bool or a reference learning rate > 0)")
        else:
            raise ValueError(f"Invalid wd_schedule: {wd_schedule!r} (expected a bool or a reference learning rate)")
        defaults = hyperparameters(lr=lr, weight_decay=weight_decay, wd_schedule=wd_schedule,
                                   centralize=bool(centralize), stabilize=bool(stabilize), bf16_sr=bool(bf16_sr),
                                   compute_dtype=compute_dtype, maximize=maximize, foreach=foreach)
        check_nonnegative(weight_decay, "weight_decay")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        """Rose keeps no state, not even a step count."""

    def group_step(self, group, params, grads, states):
        lr, weight_decay, schedule = group["lr"], group["weight_decay"], group["wd_schedule"]
        group.setdefault("initial_lr", lr)
        decay_factor = None
        if weight_decay:
            wd_lr = lr
            if schedule is not False:
                reference = schedule if schedule is not True else group.get("max_lr", group["initial_lr"])
                wd_lr = lr / reference
            decay_factor = max(0.0, 1.0 - wd_lr * weight_decay)
        options = dict(lr=lr, decay_factor=decay_factor, centralize=group["centralize"], stabilize=group["stabilize"],
                       compute_dtype=resolve_dtype(group["compute_dtype"]), bf16_sr=group["bf16_sr"])
        if not self.use_foreach(group, params):
            for p, grad in zip(params, grads):
                rose_update(p, grad, **options)
            return
        buckets: dict = {}  # Rose keeps no step count: by device and dtype, scalars apart (they take the sign step)
        for i, p in enumerate(params):
            buckets.setdefault((p.device, p.dtype, p.ndim == 0), []).append(i)
        for index in buckets.values():
            for chunk in _chunks(index, params):
                rose_update(TensorList([params[i] for i in chunk]), TensorList([grads[i] for i in chunk]), **options)


register(OptimizerEntry(
    name="Rose",
    cls=Rose,
    canon_id="rose",
    family="adaptive",
    recipe={"lr": 0.05, "weight_decay": 0.0},
    # On the quadratic and Rosenbrock problems (one matrix each) the optimum lies off the hyperplane the starting
    # point's row means fix, and centring the gradient rows (gradient centralization) keeps the weights on it:
    # those two run without centring; the logistic problem and the variants' and MLP checks run with it.
    recipes={"quadratic": {"centralize": False}, "rosenbrock": {"lr": 2e-3, "centralize": False}},
    variants={"plain": {"centralize": False, "stabilize": False}, "decay": {"weight_decay": 0.01}},
    errors=invalid("lr", "weight_decay") + (ErrorInput({"compute_dtype": torch.int32}, "compute_dtype"),
                                            ErrorInput({"wd_schedule": "yes"}, "wd_schedule")),
    parity=(
        # pytorch-optimizer's decay defaults to L2; weight_decouple=True is the official decoupled decay (the two
        # differ only where lr * weight_decay > 1, where the official factor, and zij's, is floored at 0).
        Parity("pytorch-optimizer", "pytorch_optimizer:ROSE", {"lr": 1e-3, "weight_decay": 0.1},
               {"lr": 1e-3, "weight_decay": 0.1, "weight_decouple": True}),
        Parity("pytorch-optimizer", "pytorch_optimizer:ROSE",
               {"lr": 1e-3, "weight_decay": 0.1, "centralize": False, "stabilize": False, "compute_dtype": None},
               {"lr": 1e-3, "weight_decay": 0.1, "centralize": False, "stabilize": False, "compute_dtype": None,
                "weight_decouple": True}),
    ),
))
