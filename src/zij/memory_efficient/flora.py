"""Flora: Adafactor with its momentum kept in a random low-rank projection regenerated from a seed (Hao et al., 2024)."""

from __future__ import annotations

import math

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive, check_unit, hyperparameters
from .._registry import ErrorInput, OptimizerEntry, invalid, register
from ..blocks import ema_, factored_ema_

INT64_MAX = torch.iinfo(torch.int64).max


def _rms(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x) / x.numel() ** 0.5


def _draws(seed: int, count: int) -> list[int]:
    """``count`` integers in [0, 2^63 - 1) from a CPU generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, INT64_MAX, (count,), generator=generator).tolist()


def next_seed(seed: int) -> int:
    """The seed of the next projection: the 15th draw of a generator seeded with ``seed`` (the official scheme)."""
    return _draws(seed, 15)[-1]


def projection(seed: int, shape: tuple[int, ...], rank: int, *, device, dtype) -> torch.Tensor:
    """The Gaussian projection of a matrix of ``shape``, entries of variance 1/rank: (rank, rows) for a
    wide matrix (it acts from the left), (cols, rank) otherwise (from the right); each side has its own
    seed, derived from ``seed``."""
    left_seed, right_seed = _draws(seed, 2)
    size, chosen = ((rank, shape[0]), left_seed) if shape[0] < shape[-1] else ((shape[-1], rank), right_seed)
    generator = torch.Generator(device=device).manual_seed(chosen)
    return torch.randn(size, generator=generator, device=device, dtype=dtype) / math.sqrt(rank)


def compress(a: torch.Tensor, x: torch.Tensor, shape) -> torch.Tensor:
    """x A (right projection) or A x (left): an (m, n) matrix to (m, r) or (r, n)."""
    return a @ x if shape[0] < shape[-1] else x @ a


def decompress(a: torch.Tensor, c: torch.Tensor, shape) -> torch.Tensor:
    """c A^T (right) or A^T c (left): back to the matrix's shape."""
    return a.t() @ c if shape[0] < shape[-1] else c @ a.t()


def flora_update(param: torch.Tensor, grad: torch.Tensor, state: dict, *, lr: float, beta1: float | None,
                 rank: int | None, kappa: int, eps1: float, eps2: float, clip_threshold: float, decay_rate: float,
                 weight_decay: float, scale_parameter: bool, factored: bool, compressed: bool) -> None:
    """One Flora step for one tensor (in its own precision, float32 for 16-bit tensors), in place."""
    work = param.float() if param.dtype in (torch.float16, torch.bfloat16) else param
    grad = grad.to(work.dtype)
    step = state["step"]
    alpha = lr * (max(eps2, _rms(work).item()) if scale_parameter else 1.0)
    beta2 = 1.0 - step**decay_rate
    grad_sq = grad * grad + eps1
    if factored:
        row, col = state["exp_avg_sq_row"], state["exp_avg_sq_col"]
        factored_ema_(row, col, grad_sq.to(row.dtype), beta2)
        row, col = row.to(work.dtype), col.to(work.dtype)
        update = (row / row.mean(dim=-1, keepdim=True)).rsqrt_().unsqueeze(-1) * col.unsqueeze(-2).rsqrt() * grad
    else:
        update = ema_(state["exp_avg_sq"], grad_sq.to(state["exp_avg_sq"].dtype), beta2).to(work.dtype).rsqrt() * grad
    if beta1 is not None and beta1 > 0:
        m = state["exp_avg"]
        if not compressed:
            update = update * (1 - beta1) + m.to(work.dtype) * beta1
            m.copy_(update)
        else:
            shape = tuple(grad.shape)
            a = projection(state["seed"], shape, rank, device=grad.device, dtype=work.dtype)
            normalized = update
            update = normalized * (1 - beta1) + decompress(a, m.to(work.dtype), shape) * beta1
            if step % kappa == 0:  # resample: move the momentum into the next subspace
                state["seed"] = next_seed(state["seed"])
                new = projection(state["seed"], shape, rank, device=grad.device, dtype=work.dtype)
                m.copy_(compress(new, decompress(a, m.to(work.dtype), shape), shape))
                a = new
            m.copy_(m.to(work.dtype) * beta1 + compress(a, normalized, shape) * (1 - beta1))
    update = update / (_rms(update) / clip_threshold).clamp_(min=1.0)
    if weight_decay != 0:
        work.add_(work, alpha=-weight_decay * alpha)
    work.sub_(update * alpha)
    if work is not param:
        param.copy_(work)


class Flora(ZijOptimizer):
    r"""Flora: Adafactor whose momentum is stored compressed by a random projection regenerated from a seed.

    The second moment is Adafactor's (row and column averages of $g^2 + \epsilon_1$
    for matrices, with the decay $\hat\beta_{2,t} = 1 - t^{c}$), and the step is
    relative to the weights' RMS and clipped to RMS $d$. The momentum of a matrix
    is kept only as $\tilde m_t$, its product with a random Gaussian $n \times r$
    matrix $A_k$ that is regenerated from a seed rather than stored; every
    $\kappa$ steps a new seed is drawn and the momentum moved into the new
    subspace, so over time the updates span the full space.

    $$
    \begin{aligned}
    \hat\beta_{2,t} &= 1 - t^{c}, \qquad \alpha_t = \eta \max\big(\epsilon_2, \operatorname{RMS}(\theta_{t-1})\big) \\
    r_t &= \hat\beta_{2,t} r_{t-1} + (1-\hat\beta_{2,t})\, \operatorname{mean}_{\mathrm{col}}(g_t^{2} + \epsilon_1), \qquad c_t = \hat\beta_{2,t} c_{t-1} + (1-\hat\beta_{2,t})\, \operatorname{mean}_{\mathrm{row}}(g_t^{2} + \epsilon_1) \\
    u_t &= g_t \odot \Big( \frac{r_t}{\operatorname{mean}(r_t)}\, c_t \Big)^{-1/2} \\
    \tilde u_t &= (1-\beta_1)\, u_t + \beta_1\, \tilde m_{t-1} A_{k}^{\top} \\
    &\text{if } t \bmod \kappa = 0: \quad \tilde m_{t-1} \leftarrow \tilde m_{t-1} A_{k}^{\top} A_{k+1}, \quad k \leftarrow k+1 \\
    \tilde m_t &= \beta_1 \tilde m_{t-1} + (1-\beta_1)\, u_t A_{k} \\
    \theta_t &= (1-\alpha_t\lambda)\, \theta_{t-1} - \alpha_t\, \frac{\tilde u_t}{\max\big(1, \operatorname{RMS}(\tilde u_t)/d\big)}
    \end{aligned}
    $$

    Shown for a matrix with at least as many rows as columns; a wider one is
    projected from the left. As in the official code (``scale_parameter`` on,
    ``relative_step`` off), the momentum is compressed only for matrices whose
    smaller side is at least $r$ and whose aspect ratio is at most 4 (embeddings
    keep a full momentum); without ``rank`` every momentum is full, and without
    ``beta1`` there is none. Tensors that are not matrices keep a full second
    moment. Each tensor's first seed is ``seed`` plus its position (from 1)
    among all parameters of the optimizer, as in the official code. Not
    included: the official 8-bit quantization of the states and the gradient
    accumulation in compressed form (the Flora accelerator). Memory for an
    $m \times n$ matrix: $mr$ numbers for the momentum, $m + n$ for the second
    moment, and a seed.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameter it reaches
    (through the second moment, and the RMS clipping spreads it over the whole tensor), as in
    torch.optim.

    Args:
        params: iterable of parameters or parameter groups.
        lr: relative learning rate $\eta$ (scaled by the weights' RMS when ``scale_parameter``).
        rank: $r$, the rank of the momentum's projection (``None``: full momentum).
        kappa: $\kappa$, steps between two projections.
        eps: $(\epsilon_1, \epsilon_2)$: added to $g^2$, and the floor of the weights' RMS.
        clip_threshold: $d$, the largest RMS of an update.
        decay_rate: $c$, the exponent of the second-moment decay.
        beta1: $\beta_1$, the momentum coefficient in $[0, 1)$ (``None``: no momentum).
        weight_decay: decoupled weight decay $\lambda$ (multiplied by $\alpha_t$).
        scale_parameter: scale the learning rate by $\max(\epsilon_2, \operatorname{RMS}(\theta))$.
        factorize_second_moment: keep row and column averages for matrices (else a full second moment).
        seed: the base of the projection seeds.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(16, 8)
        >>> opt = zij.Flora(model.parameters(), lr=1e-2, rank=4, beta1=0.9, kappa=100)
        >>> model(torch.randn(8, 16)).square().mean().backward()
        >>> opt.step()

    References:
        Hao, Cao and Mou, "Flora: Low-Rank Adapters Are Secretly Gradient Compressors", ICML 2024.
        https://arxiv.org/abs/2402.03293
    """

    def __init__(self, params, lr: float = 1e-3, rank: int | None = None, kappa: int = 1000, eps=(1e-30, 1e-3),
                 clip_threshold: float = 1.0, decay_rate: float = -0.8, beta1: float | None = None,
                 weight_decay: float = 0.0, scale_parameter: bool = True, factorize_second_moment: bool = True,
                 seed: int = 0, *, maximize: bool = False, state_dtype: torch.dtype | None = None):
        if rank is not None:
            check_int(rank, "rank")
        check_int(kappa, "kappa")
        eps = tuple(eps)
        if len(eps) != 2:
            raise ValueError(f"Invalid eps: {eps!r} (expected two values)")
        check_nonnegative(eps[0], "eps[0]")
        check_nonnegative(eps[1], "eps[1]")
        check_positive(clip_threshold, "clip_threshold")
        if not isinstance(decay_rate, (int, float)) or not -1.0 <= decay_rate < 0.0:
            raise ValueError(f"Invalid decay_rate: {decay_rate!r} (expected a number in [-1, 0))")
        if beta1 is not None:
            check_unit(beta1, "beta1")
        check_int(seed, "seed", minimum=0)
        defaults = hyperparameters(lr=lr, rank=rank, kappa=kappa, clip_threshold=clip_threshold,
                                   decay_rate=decay_rate, beta1=beta1, weight_decay=weight_decay,
                                   scale_parameter=bool(scale_parameter),
                                   factorize_second_moment=bool(factorize_second_moment), seed=seed,
                                   maximize=maximize, state_dtype=state_dtype)
        defaults["eps"] = eps  # a pair, checked above
        super().__init__(params, defaults)

    @staticmethod
    def options(group: dict, shape) -> tuple[bool, bool]:
        """(factored second moment, compressed momentum) for a tensor of ``shape``, as in the official code."""
        factored = len(shape) == 2 and group["factorize_second_moment"]
        rank = group["rank"]
        compressed = (group["beta1"] is not None and group["beta1"] > 0 and rank is not None and factored
                      and min(shape) >= rank and max(shape) / min(shape) <= 4)
        return factored, compressed

    def init_state(self, p, state, group):
        state["step"] = 0
        factored, compressed = self.options(group, p.shape)
        dtype = group.get("state_dtype") or p.dtype
        if group["beta1"] is not None and group["beta1"] > 0:
            if compressed:
                shape = (group["rank"], p.shape[-1]) if p.shape[0] < p.shape[-1] else (p.shape[0], group["rank"])
                state["exp_avg"] = torch.zeros(shape, dtype=dtype, device=p.device)
            else:
                state["exp_avg"] = self.zeros_like(p, group)
        if factored:
            state["exp_avg_sq_row"] = torch.zeros(p.shape[:-1], dtype=dtype, device=p.device)
            state["exp_avg_sq_col"] = torch.zeros(p.shape[:-2] + p.shape[-1:], dtype=dtype, device=p.device)
        else:
            state["exp_avg_sq"] = self.zeros_like(p, group)
        original = self.param_of(p)
        position = next(i for i, q in enumerate(q for g in self.param_groups for q in g["params"]) if q is original)
        state["seed"] = group["seed"] + position + 1

    def update(self, p, grad, state, group):
        factored, compressed = self.options(group, p.shape)
        flora_update(p, grad, state, lr=group["lr"], beta1=group["beta1"], rank=group["rank"], kappa=group["kappa"],
                     eps1=group["eps"][0], eps2=group["eps"][1], clip_threshold=group["clip_threshold"],
                     decay_rate=group["decay_rate"], weight_decay=group["weight_decay"],
                     scale_parameter=group["scale_parameter"], factored=factored, compressed=compressed)


register(OptimizerEntry(
    name="Flora", cls=Flora, canon_id="flora", family="low-rank",
    recipe={"lr": 0.05, "rank": 2, "kappa": 10, "beta1": 0.9},
    recipes={"rosenbrock": {"lr": 0.02, "beta1": 0.9}},
    errors=(*invalid("lr", "weight_decay"), ErrorInput({"rank": 0}, "rank"), ErrorInput({"kappa": 0}, "kappa"),
            ErrorInput({"eps": (1e-30, -1.0)}, r"eps\[1\]"), ErrorInput({"clip_threshold": 0.0}, "clip_threshold"),
            ErrorInput({"decay_rate": 0.5}, "decay_rate"), ErrorInput({"beta1": 1.0}, "beta1")),
    skips={"param_groups": "each tensor's projection seed is seed plus its position among all the optimizer's "
                           "parameters (the official scheme), so one optimizer over two groups draws other "
                           "projections than two optimizers over one group each"},
    # parity with flora-opt (the official code packaged) is in tests/optim/test_flora.py: its step calls the
    # closure under no_grad, so the matrix's parity test (which steps with a closure) cannot drive it
))
