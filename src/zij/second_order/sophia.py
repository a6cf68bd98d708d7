"""Sophia-H: momentum divided by a Hutchinson estimate of the Hessian diagonal, clipped (Liu et al., 2024)."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import torch
from torch.overrides import TorchFunctionMode

from .._base import ZijOptimizer, check_int, check_nonnegative, check_positive, hyperparameters
from .._registry import Capabilities, ErrorInput, OptimizerEntry, invalid, register
from ..blocks import decoupled_decay_, ema_, nonfinite_into_


class CreateGraph(TorchFunctionMode):
    """Within this mode every ``backward`` builds a graph of the gradients (``create_graph=True``).

    It lets ``step(closure)`` obtain gradients that can be differentiated again from an ordinary
    closure that calls ``loss.backward()``.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.backward or func is torch.autograd.backward:
            kwargs["create_graph"] = True
        return func(*args, **kwargs)


def run_closure(closure, with_graph: bool):
    """Evaluate ``closure`` with grad enabled, its backward building a graph when ``with_graph``."""
    with torch.enable_grad(), CreateGraph() if with_graph else nullcontext(), warnings.catch_warnings():
        # torch warns of the parameter <-> gradient cycle create_graph makes; the step detaches the gradients
        warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
        return closure()


def hutchinson_probes(params: list, group: dict, distribution: str) -> list:
    """One random probe per parameter, drawn from the group's seeded generator (or torch's global one).

    With ``seed=None`` the probes come from torch's global generator (``torch.randn_like``); otherwise
    from a generator whose state lives in ``group["rng_state"]``, so it is saved by ``state_dict``.
    """
    generator = None
    if group["seed"] is not None:
        generator = torch.Generator(device=params[0].device)
        if group.get("rng_state") is None:
            generator.manual_seed(group["seed"])
        else:
            generator.set_state(group["rng_state"])
    probes = []
    for p in params:
        if distribution == "gaussian":
            probes.append(torch.randn(p.shape, generator=generator, dtype=p.dtype, device=p.device))
        else:
            probes.append(torch.randint(0, 2, p.shape, generator=generator, dtype=p.dtype, device=p.device).mul_(2).sub_(1))
    if generator is not None:
        group["rng_state"] = generator.get_state()
    return probes


def hessian_vector_products(params: list, probes: list, name: str) -> list:
    """H z for every parameter, from gradients in ``p.grad`` that carry a graph; then ``p.grad`` is detached.

    Raises a RuntimeError naming the optimizer when no gradient carries a graph.
    """
    grads = [p.grad for p in params]
    with_graph = [i for i, g in enumerate(grads) if g.requires_grad]
    if not with_graph:
        raise RuntimeError(f"{name} needs Hessian-vector products: call step(closure), or call "
                           "loss.backward(create_graph=True) before step()")
    with torch.enable_grad():
        products = torch.autograd.grad([grads[i] for i in with_graph], [params[i] for i in with_graph],
                                       grad_outputs=[probes[i] for i in with_graph], allow_unused=True)
    out = [torch.zeros_like(p) for p in params]
    for i, hz in zip(with_graph, products):
        if hz is not None:
            out[i] = hz.detach()
    for p in params:  # break the parameter <-> gradient reference cycle that create_graph makes
        p.grad = p.grad.detach()
    return out


def sophia_update(param, grad, exp_avg, hessian, *, lr: float, beta1: float, rho: float, eps: float,
                  weight_decay: float) -> None:
    """One Sophia step for a tensor or a TensorList, in place (``hessian`` is the running average h_t).

    theta <- (1 - lr wd) theta;  m <- b1 m + (1 - b1) g;  theta <- theta - lr clip(m / max(rho h, eps), 1).
    """
    decoupled_decay_(param, lr, weight_decay)
    ema_(exp_avg, grad, beta1)
    ratio = exp_avg / (hessian * rho).clamp_min_(eps)
    param.add_(nonfinite_into_(ratio.clamp_(-1.0, 1.0), exp_avg, hessian), alpha=-lr)


class HutchinsonOptimizer(ZijOptimizer):
    """Shared protocol of rules that take Hutchinson estimates: the closure is run with ``create_graph``
    when an estimate is due, and one probe over all parameters gives every tensor its product H u.

    Groups carry ``t`` (steps taken), ``k`` (steps between estimates), ``seed``, ``rng_state`` and
    ``distribution``; a subclass folds each estimate into its state in :meth:`take_estimate`.
    """

    hessian_name = "this optimizer"

    def refreshes(self) -> bool:
        """Whether the coming step takes a new Hessian estimate."""
        first = self.param_groups[0]
        return first["t"] % first["k"] == 0

    def step(self, closure=None):
        """One step; ``closure`` (optional) is run with ``backward`` building a graph when an estimate is due."""
        self.refuse_distributed()
        loss = run_closure(closure, self.refreshes()) if closure is not None else None
        super().step()
        return loss

    def refuse_distributed(self) -> None:
        """Hessian-vector products are a double backward, which neither DDP (it does not synchronize
        higher-order gradients, pytorch issue 63929) nor FSDP2 supports: refuse with a clear error."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            raise RuntimeError(
                f"{type(self).__name__} takes Hessian-vector products (a double backward), which DDP does not "
                "synchronize and FSDP2 does not support, so it cannot run with more than one process: train with "
                "it in a single process, or pick a first-order optimizer for distributed training")

    def global_step(self, gathered):
        refresh = self.refreshes()
        for group in self.param_groups:
            group["t"] += 1
        params = [p for _, ps, _, _ in gathered for p in ps]
        if not refresh:
            for p in params:  # a graph built by hand on a step without an estimate is not needed
                if p.grad.requires_grad:
                    p.grad = p.grad.detach()
            return
        if not params:
            return
        first = self.param_groups[0]
        probes = hutchinson_probes(params, first, first["distribution"])
        products = hessian_vector_products(params, probes, self.hessian_name)
        i = 0
        for group, ps, _, states in gathered:
            sign = -1.0 if group["maximize"] else 1.0
            for state in states:
                self.take_estimate(state, group, probes[i], products[i].mul_(sign))
                i += 1

    def take_estimate(self, state, group, probe, product) -> None:
        """Fold one Hutchinson estimate (probe u, product H u, negated under ``maximize``) into the state."""
        raise NotImplementedError


class Sophia(HutchinsonOptimizer):
    r"""Sophia-H: a clipped Newton-like step with a Hutchinson estimate of the Hessian diagonal.

    The gradient momentum is divided by a running average of Hessian-diagonal estimates,
    refreshed every $k$ steps (first at step 1), and every coordinate of the ratio is clipped
    to $[-1, 1]$, which bounds the step where the estimate is tiny, negative or stale. The
    estimate is Hutchinson's, $u \odot (\nabla^2 L\, u)$ with $u \sim \mathcal{N}(0, I)$,
    from one Hessian-vector product (Sophia-H of the paper).

    $$
    \begin{aligned}
    m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
    \hat h_t &= u \odot (\nabla^{2} L\, u), \qquad u \sim \mathcal{N}(0, I) \\
    h_t &= \begin{cases} \beta_2 h_{t-1} + (1-\beta_2)\, \hat h_t & \text{if } (t-1) \bmod k = 0 \\ h_{t-1} & \text{otherwise} \end{cases} \\
    \theta_t &= \theta_{t-1} - \eta \lambda\, \theta_{t-1} - \eta\, \operatorname{clip}\!\left(\frac{m_t}{\max(\gamma h_t,\ \epsilon)},\ 1\right)
    \end{aligned}
    $$

    Protocol (Hessian-vector products): on a step that refreshes the estimate the gradients
    must carry a graph. ``step(closure)`` arranges it: the closure (which clears the
    gradients, computes the loss, calls ``loss.backward()`` and returns the loss) is run with
    every ``backward`` forced to ``create_graph=True``; without a closure, call
    ``loss.backward(create_graph=True)`` yourself before ``step()`` (on every step, or at
    least on steps $1, k+1, 2k+1, \dots$). After the product the gradients are detached, which
    breaks the reference cycle ``create_graph`` makes. The estimate is taken over all
    parameters of all groups together, with probes from a generator seeded by ``seed``
    whose state is saved in ``state_dict`` (``seed=None``: torch's global generator).

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters it reaches
    at that step, as in torch.optim, and stays in the state; stop or restore a checkpoint
    (``torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`` raises before the step).

    Args:
        params: iterable of parameters or parameter groups.
        lr: learning rate $\eta$ (the largest change of a coordinate in one step).
        betas: $(\beta_1, \beta_2)$, decays of the momentum and of the Hessian average.
        rho: $\gamma$, scale of the Hessian estimate.
        weight_decay: decoupled weight decay $\lambda$.
        k: steps between Hessian estimates.
        eps: $\epsilon$, floor of the denominator.
        distribution: ``"gaussian"`` (the paper's $u$) or ``"rademacher"`` probes.
        seed: seed of the probes' generator (``None``: torch's global generator).
        maximize: maximize the objective instead of minimizing it.
        foreach: use the multi-tensor path (same results as the loop); ``None``: wherever the class has one.
        state_dtype: dtype of the optimizer state (``None``: the parameter's); e.g. ``torch.bfloat16`` halves it.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.Sophia(model.parameters(), lr=1e-3, rho=0.04, k=10)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Liu, Li, Hall, Liang and Ma, "Sophia: A Scalable Stochastic Second-order Optimizer for Language
        Model Pre-training", ICLR 2024. https://arxiv.org/abs/2305.14342
    """

    state_names = ("exp_avg", "hessian")
    hessian_name = "Sophia"
    supports_foreach = True

    def __init__(self, params, lr: float = 1e-4, betas=(0.965, 0.99), rho: float = 0.04, weight_decay: float = 0.1,
                 k: int = 10, eps: float = 1e-15, distribution: str = "gaussian", seed: int | None = 0, *,
                 maximize: bool = False, foreach: bool | None = None, state_dtype: torch.dtype | None = None):
        defaults = hyperparameters(lr=lr, betas=betas, rho=rho, weight_decay=weight_decay, k=k, eps=eps,
                                   distribution=distribution, seed=seed, maximize=maximize, foreach=foreach,
                                   state_dtype=state_dtype, t=0, rng_state=None)
        check_positive(rho, "rho")
        check_int(k, "k")
        check_nonnegative(eps, "eps")
        if distribution not in ("gaussian", "rademacher"):
            raise ValueError(f"Invalid distribution: {distribution!r} (expected 'gaussian' or 'rademacher')")
        if seed is not None:
            check_int(seed, "seed", minimum=0)
        super().__init__(params, defaults)

    def take_estimate(self, state, group, probe, product) -> None:
        """Fold one Hutchinson estimate (probe u, product H u) into the state."""
        ema_(state["hessian"], (probe * product).to(state["hessian"].dtype), group["betas"][1])

    def update(self, p, grad, state, group):
        beta1 = group["betas"][0]
        sophia_update(p, grad, state["exp_avg"], state["hessian"], lr=group["lr"], beta1=beta1, rho=group["rho"],
                      eps=group["eps"], weight_decay=group["weight_decay"])


register(OptimizerEntry(
    name="Sophia",
    cls=Sophia,
    canon_id="sophia",
    family="curvature",
    aliases=("SophiaH",),
    recipe={"lr": 0.05, "rho": 0.05, "k": 1, "weight_decay": 0.0, "betas": (0.9, 0.99)},
    errors=invalid("lr", "betas", "eps", "weight_decay") + (
        ErrorInput({"rho": 0.0}, "rho"),
        ErrorInput({"k": 0}, "k"),
        ErrorInput({"distribution": "uniform"}, "distribution"),
        ErrorInput({"seed": -1}, "seed"),
    ),
    capabilities=Capabilities(elementwise=False),
    skips={
        "param_groups": "the Hessian-vector product is taken over all groups together (one probe for the whole "
                        "model), so one optimizer over two groups is not two optimizers over one group each",
        "compile": "the test calls backward without create_graph, and Sophia needs Hessian-vector products "
                   "(tests/optim/test_sophia.py checks the protocol)",
    },
))
