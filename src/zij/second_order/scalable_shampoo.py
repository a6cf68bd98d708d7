"""Scalable Shampoo: blocked, grafted Shampoo with momentum and infrequent roots (Anil et al., 2020)."""

from __future__ import annotations

import itertools

import torch

from .._base import ZijOptimizer, check_int, check_nonnegative, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from .shampoo import matrix_dtype, work_dtype

GRAFTS = ("none", "sgd", "adagrad", "rmsprop", "sqrt_n")
PRECONDITIONED_DIMS = ("all", "input", "output")


def merge_small_dims(shape, max_dim: int) -> list[int]:
    """Merge neighbouring dimensions while their product stays <= max_dim (size-one dimensions vanish).

    As the authors' code: [1, 2, 512, 1, 2048, 1, 3, 4] -> [1024, 2048, 12] for max_dim = 1024.
    """
    merged, product = [], 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                merged.append(product)
            product = d
    if product > 1:
        merged.append(product)
    return merged


class Layout:
    """How a parameter is seen: its reshaped form, its blocks, and which block dimensions are preconditioned."""

    def __init__(self, p: torch.Tensor, group: dict):
        block = group["block_size"]
        self.shape = merge_small_dims(p.shape, block) if group["shape_interpretation"] else list(p.shape)
        n = len(self.shape)
        which = group["preconditioned_dims"]
        self.dims = [True] * n if which == "all" or n <= 1 else (
            [True] * (n - 1) + [False] if which == "input" else [False] * (n - 1) + [True])
        skip = p.ndim < group["skip_preconditioning_rank_lt"] or any(
            d > group["no_preconditioning_for_layers_with_dim_gt"] for d in p.shape)
        self.active = n > 1 and not skip
        self.sizes = [[d] if block <= 0 or block >= d else [block] * ((d - 1) // block) + [d - (d - 1) // block * block]
                      for d in self.shape]
        self.exponent = group["inverse_exponent_override"] or 2 * sum(self.dims)

    def stat_sizes(self) -> list[int]:
        """The side of every statistic: per block, per preconditioned dimension."""
        return [d for t in itertools.product(*self.sizes) for d, on in zip(t, self.dims) if on]

    def blocks(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x.reshape(self.shape)]
        for i, sizes in enumerate(self.sizes):
            if len(sizes) > 1:
                out = [piece for t in out for piece in torch.split(t, sizes, dim=i)]
        return out

    def merge(self, blocks: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        for i in reversed(range(len(self.sizes))):
            n = len(self.sizes[i])
            if n > 1:
                blocks = [torch.cat(blocks[k:k + n], dim=i) for k in range(0, len(blocks), n)]
        return blocks[0].reshape(like.shape)


def ridge_inverse_root(stat: torch.Tensor, power: float, ridge: float) -> torch.Tensor:
    r"""$(S + \epsilon \lambda_{\max}(S) I)^{-1/p}$ by eigendecomposition (a batch of matrices too)."""
    work = stat if stat.dtype == torch.float64 else stat.float()
    eigenvalues, eigenvectors = torch.linalg.eigh(work)
    eigenvalues = eigenvalues + ridge * eigenvalues.amax(dim=-1, keepdim=True).clamp_min(0)
    scale = eigenvalues.clamp_min(torch.finfo(work.dtype).tiny).pow(-1.0 / power)
    return ((eigenvectors * scale.unsqueeze(-2)) @ eigenvectors.mT).to(stat.dtype)


def precondition_block(block: torch.Tensor, dims: list[bool], roots: list[torch.Tensor]) -> torch.Tensor:
    """Contract dimension 0 with the next root (or only move it last, if not preconditioned), once per dimension."""
    roots = iter(roots)
    for on in dims:
        block = torch.tensordot(block, next(roots), dims=([0], [0])) if on else block.movedim(0, -1)
    return block


def scalable_shampoo_update(param, grad, state: dict, layout: Layout, *, step: int, lr: float, beta1: float,
                            beta2: float, graft: str, diagonal_eps: float, matrix_eps: float, weight_decay: float,
                            decoupled_weight_decay: bool, decoupled_learning_rate: bool, moving_average: bool,
                            nesterov: bool, start_step: int, root_every: int, stats_every: int) -> None:
    """One Scalable Shampoo step for one tensor, in place (see the class docstring for the rule)."""
    stats, roots = state["stats"], state["roots"]
    if graft == "adagrad":
        state["graft_acc"].addcmul_(grad, grad)
    elif graft == "rmsprop":
        state["graft_acc"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    if stats and step % stats_every == 0:
        w = 1.0 if beta2 == 1.0 else 1.0 - beta2
        blocks = layout.blocks(grad.to(stats[0].dtype))
        on = [i for i, flag in enumerate(layout.dims) if flag]
        k = 0
        for block in blocks:
            for i in on:
                others = [d for d in range(block.ndim) if d != i]
                stats[k].mul_(beta2).add_(torch.tensordot(block, block, dims=(others, others)), alpha=w)
                k += 1
    if stats and step % root_every == 0:
        for stat, root in zip(stats, roots):
            root.copy_(ridge_inverse_root(stat, layout.exponent, matrix_eps))
    scale = 1.0 if decoupled_learning_rate else lr
    if graft in ("adagrad", "rmsprop"):
        graft_dir = grad / state["graft_acc"].sqrt().add_(diagonal_eps) * scale
    elif graft == "sqrt_n":
        graft_dir = grad.sign() * scale
    else:
        graft_dir = grad * scale
    if stats:
        per_block = len(roots) // len(layout.blocks(grad)) if roots else 0
        blocks = layout.blocks(grad.to(roots[0].dtype))
        shampoo_dir = layout.merge([precondition_block(b, layout.dims, roots[j * per_block:(j + 1) * per_block])
                                    for j, b in enumerate(blocks)], grad).to(grad.dtype) * scale
    else:
        shampoo_dir = graft_dir.clone()
    if graft != "none":
        shampoo_dir.mul_(torch.linalg.vector_norm(graft_dir) / (torch.linalg.vector_norm(shampoo_dir) + 1e-16))
    if decoupled_weight_decay:
        param.mul_(1 - lr * weight_decay)
    elif weight_decay != 0:
        graft_dir.add_(param, alpha=weight_decay)
        shampoo_dir.add_(param, alpha=weight_decay)
    w1 = 1 - beta1 if moving_average else 1.0
    momentum, graft_momentum = state["momentum"], state["graft_momentum"]
    if moving_average:
        momentum.lerp_(shampoo_dir, w1)
    else:
        momentum.mul_(beta1).add_(shampoo_dir)
    graft_momentum.mul_(beta1).add_(graft_dir, alpha=w1)
    preconditioning = step >= start_step
    update = momentum if preconditioning else graft_momentum
    if nesterov:
        direct = shampoo_dir if preconditioning else graft_dir
        update = update.lerp(direct, w1) if moving_average else update.mul(beta1).add_(direct)
    param.add_(update, alpha=-(lr if decoupled_learning_rate else 1.0))


class ScalableShampoo(ZijOptimizer):
    r"""Scalable Shampoo: Shampoo on blocks, with grafting, momentum and infrequent inverse roots.

    The practical Shampoo of the paper's production code: small dimensions are merged and
    large ones split into blocks of side at most ``block_size``, each block keeping one
    statistic per dimension (a moving average for $\beta_2 < 1$); the inverse roots are
    recomputed only every $T$ steps, and the Shampoo direction takes its per-tensor size from
    a grafted diagonal method (SGD by default), so that method's tuned learning rate carries
    over. Momentum is kept for both directions; before step $t_0$ the grafted one is used.
    Unlike :class:`~zij.Shampoo` (the 2018 paper's algorithm), the statistics decay, the roots
    carry a ridge relative to the largest eigenvalue, and tensors are reshaped and blocked.

    $$
    \begin{aligned}
    L^{(i)}_t &= \beta_2 L^{(i)}_{t-1} + w\, G_{(i)} G_{(i)}^{\top}, \qquad L^{(i)}_0 = \epsilon I, \qquad w = \begin{cases} 1 & \beta_2 = 1 \\ 1-\beta_2 & \text{else} \end{cases} \\
    &\text{if } t \bmod T = 0: \quad P^{(i)} = \left(L^{(i)}_t + \epsilon\, \lambda_{\max}(L^{(i)}_t)\, I\right)^{-1/(2k)}, \qquad P^{(i)}_0 = I \\
    S_t &= G_t \times_1 P^{(1)} \times_2 \cdots \times_k P^{(k)}, \qquad D_t = \operatorname{graft}(G_t) \\
    \hat S_t &= \frac{\lVert D_t\rVert_F}{\lVert S_t\rVert_F + 10^{-16}}\, S_t \\
    M_t &= \beta_1 M_{t-1} + \hat S_t, \qquad N_t = \beta_1 N_{t-1} + D_t \\
    U_t &= \begin{cases} \beta_1 M_t + \hat S_t & t \ge t_0 \\ \beta_1 N_t + D_t & t < t_0 \end{cases} \\
    \theta_t &= (1 - \eta\lambda)\, \theta_{t-1} - \eta\, U_t
    \end{aligned}
    $$

    $D_t$ is the grafted method's direction: $G_t$ (SGD), $G_t / (\sqrt{a_t} + \epsilon_d)$ with
    $a_t = a_{t-1} + G_t^2$ (AdaGrad) or $a_t = \beta_2 a_{t-1} + (1-\beta_2) G_t^2$ (RMSProp), or
    $\operatorname{sign}(G_t)$ (``sqrt_n``); with ``graft_type="none"`` $\hat S_t = S_t$. The
    rule shows the defaults (Nesterov, decoupled learning rate and weight decay); without
    Nesterov $U_t$ is $M_t$ or $N_t$; ``moving_average_for_momentum`` weights the new
    direction by $1-\beta_1$; ``decoupled_learning_rate=False`` multiplies both directions by
    $\eta$ before momentum and steps by $U_t$; ``decoupled_weight_decay=False`` adds
    $\lambda\theta_{t-1}$ to both directions after grafting instead of decaying $\theta$.
    A tensor is first reshaped by merging neighbouring dimensions while their product stays
    at most ``block_size`` (``shape_interpretation``), then split into blocks; a block of
    order $k$ uses exponent $-1/(2k)$ (over the preconditioned dimensions only, with
    ``preconditioned_dims`` "input" or "output"), unless ``inverse_exponent_override``.
    Vectors, and tensors whose reshaped form has one dimension, take the grafted step alone.
    Roots are computed exactly by eigendecomposition, where the official code runs a coupled
    Newton iteration to a tolerance; statistics are float32 at least.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$.
        betas: $(\beta_1, \beta_2)$: momentum, and decay of the statistics (1: sums) and of the RMSProp graft.
        moving_average_for_momentum: weight new directions by $1-\beta_1$ in the momenta.
        weight_decay: $\lambda$.
        decoupled_weight_decay: decay $\theta$ directly (else add $\lambda\theta$ to the directions).
        decoupled_learning_rate: apply $\eta$ to the momentum step (else to the directions).
        inverse_exponent_override: a fixed root order $p$ for $L^{-1/p}$ (0: $2k$).
        start_preconditioning_step: $t_0$, first step that uses the Shampoo direction.
        preconditioning_compute_steps: $T$, steps between recomputations of the roots.
        statistics_compute_steps: steps between updates of the statistics.
        block_size: largest block side (and largest merged dimension).
        skip_preconditioning_rank_lt: tensors of lower order take the grafted step alone.
        no_preconditioning_for_layers_with_dim_gt: tensors with a larger dimension take the grafted step alone.
        shape_interpretation: merge small neighbouring dimensions before blocking.
        graft_type: ``"none"``, ``"sgd"``, ``"adagrad"``, ``"rmsprop"`` or ``"sqrt_n"``.
        preconditioned_dims: ``"all"``, ``"input"`` (all but the last) or ``"output"`` (the last only).
        nesterov: Nesterov momentum.
        diagonal_eps: $\epsilon_d$ of the AdaGrad and RMSProp grafts.
        matrix_eps: $\epsilon$, initial diagonal of the statistics and relative ridge of the roots.
        maximize: maximize the objective instead of minimizing it.
        state_dtype: dtype of the optimizer state (``None``: the parameter's, statistics float32 at least).

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.ScalableShampoo(model.parameters(), lr=0.01, start_preconditioning_step=1,
        ...                           preconditioning_compute_steps=1, shape_interpretation=False)
        >>> model(torch.randn(8, 4)).square().mean().backward()
        >>> opt.step()

    References:
        Anil, Gupta, Koren, Regan and Singer, "Scalable Second Order Optimization for Deep Learning", 2020.
        https://arxiv.org/abs/2002.09018
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), moving_average_for_momentum: bool = False,
                 weight_decay: float = 0.0, decoupled_weight_decay: bool = False, decoupled_learning_rate: bool = True,
                 inverse_exponent_override: int = 0, start_preconditioning_step: int = 25,
                 preconditioning_compute_steps: int = 1000, statistics_compute_steps: int = 1, block_size: int = 512,
                 skip_preconditioning_rank_lt: int = 1, no_preconditioning_for_layers_with_dim_gt: int = 8192,
                 shape_interpretation: bool = True, graft_type: str = "sgd", preconditioned_dims: str = "all",
                 nesterov: bool = True, diagonal_eps: float = 1e-10, matrix_eps: float = 1e-6, *,
                 maximize: bool = False, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(
            lr=lr, moving_average_for_momentum=moving_average_for_momentum,
            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            decoupled_learning_rate=decoupled_learning_rate, inverse_exponent_override=inverse_exponent_override,
            start_preconditioning_step=start_preconditioning_step,
            preconditioning_compute_steps=preconditioning_compute_steps,
            statistics_compute_steps=statistics_compute_steps, block_size=block_size,
            skip_preconditioning_rank_lt=skip_preconditioning_rank_lt,
            no_preconditioning_for_layers_with_dim_gt=no_preconditioning_for_layers_with_dim_gt,
            shape_interpretation=shape_interpretation, graft_type=graft_type,
            preconditioned_dims=preconditioned_dims, nesterov=nesterov, diagonal_eps=diagonal_eps,
            matrix_eps=matrix_eps, maximize=maximize, state_dtype=state_dtype)
        defaults["betas"] = betas = tuple(betas)  # checked here: beta2 = 1 (sums) is allowed
        if len(betas) != 2 or not 0 <= betas[0] < 1:
            raise ValueError(f"Invalid betas[0]: {betas!r} (expected two values, betas[0] in [0, 1))")
        if not isinstance(betas[1], (int, float)) or not 0 <= betas[1] <= 1:
            raise ValueError(f"Invalid betas[1]: {betas[1]!r} (expected a number in [0, 1])")
        check_int(inverse_exponent_override, "inverse_exponent_override", minimum=0)
        check_int(start_preconditioning_step, "start_preconditioning_step")
        check_int(preconditioning_compute_steps, "preconditioning_compute_steps")
        check_int(statistics_compute_steps, "statistics_compute_steps")
        check_int(block_size, "block_size")
        check_int(skip_preconditioning_rank_lt, "skip_preconditioning_rank_lt", minimum=0)
        check_int(no_preconditioning_for_layers_with_dim_gt, "no_preconditioning_for_layers_with_dim_gt")
        if graft_type not in GRAFTS:
            raise ValueError(f"Invalid graft_type: {graft_type!r} (expected one of {GRAFTS})")
        if preconditioned_dims not in PRECONDITIONED_DIMS:
            raise ValueError(f"Invalid preconditioned_dims: {preconditioned_dims!r} (expected one of {PRECONDITIONED_DIMS})")
        check_nonnegative(diagonal_eps, "diagonal_eps")
        check_nonnegative(matrix_eps, "matrix_eps")
        super().__init__(params, defaults)

    def init_state(self, p, state, group):
        state["step"] = 0
        layout = Layout(p, group)
        dtype = matrix_dtype(p, group["state_dtype"])
        sizes = layout.stat_sizes() if layout.active else []
        state["stats"] = [torch.eye(n, dtype=dtype, device=p.device).mul_(group["matrix_eps"]) for n in sizes]
        state["roots"] = [torch.eye(n, dtype=dtype, device=p.device) for n in sizes]
        state["momentum"] = self.zeros_like(p, group)
        state["graft_momentum"] = self.zeros_like(p, group)
        if group["graft_type"] in ("adagrad", "rmsprop"):
            state["graft_acc"] = self.zeros_like(p, group)

    def update(self, p, grad, state, group):
        beta1, beta2 = group["betas"]
        scalable_shampoo_update(
            p, grad, state, Layout(p, group), step=state["step"], lr=group["lr"], beta1=beta1, beta2=beta2,
            graft=group["graft_type"], diagonal_eps=group["diagonal_eps"], matrix_eps=group["matrix_eps"],
            weight_decay=group["weight_decay"], decoupled_weight_decay=group["decoupled_weight_decay"],
            decoupled_learning_rate=group["decoupled_learning_rate"],
            moving_average=group["moving_average_for_momentum"], nesterov=group["nesterov"],
            start_step=group["start_preconditioning_step"], root_every=group["preconditioning_compute_steps"],
            stats_every=group["statistics_compute_steps"])


register(OptimizerEntry(
    name="ScalableShampoo",
    cls=ScalableShampoo,
    canon_id="scalable-shampoo",
    family="preconditioned",
    recipe={"lr": 0.05, "start_preconditioning_step": 1, "preconditioning_compute_steps": 5,
            "shape_interpretation": False, "matrix_eps": 1e-4},
    recipes={"rosenbrock": {"lr": 1e-3}},  # the SGD graft takes Rosenbrock's large gradient norms as step sizes
    errors=invalid("lr", "weight_decay", betas=(1.0, 0.999)) + (
        ErrorInput({"betas": (0.9, 1.5)}, r"betas\[1\]"),
        ErrorInput({"inverse_exponent_override": -1}, "inverse_exponent_override"),
        ErrorInput({"start_preconditioning_step": 0}, "start_preconditioning_step"),
        ErrorInput({"preconditioning_compute_steps": 0}, "preconditioning_compute_steps"),
        ErrorInput({"statistics_compute_steps": 0}, "statistics_compute_steps"),
        ErrorInput({"block_size": 0}, "block_size"),
        ErrorInput({"graft_type": "adam"}, "graft_type"),
        ErrorInput({"preconditioned_dims": "middle"}, "preconditioned_dims"),
        ErrorInput({"diagonal_eps": -1.0}, "diagonal_eps"),
        ErrorInput({"matrix_eps": -1.0}, "matrix_eps"),
    ),
    capabilities=Capabilities(elementwise=False),
    variants={
        "adagrad_graft": {"graft_type": "adagrad", "lr": 0.5},
        "rmsprop_moving_average": {"graft_type": "rmsprop", "moving_average_for_momentum": True, "lr": 0.02,
                                   "nesterov": False},
        "blocked_input_only": {"block_size": 3, "preconditioned_dims": "input", "shape_interpretation": True},
    },
    # parity with pytorch_optimizer's ScalableShampoo substitutes our root function: tests/optim/test_scalable_shampoo.py
))
