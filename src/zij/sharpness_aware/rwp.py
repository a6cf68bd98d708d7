"""RWP: the base step takes a mix of the gradients at randomly perturbed and at clean weights (Li et al., 2022)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from .._base import check_int, check_nonnegative, check_unit
from .._checkpoint import CLASS_KEY, check_wrapper
from .._sharded import gather, is_dtensor
from .._registry import ErrorInput, OptimizerEntry, register
from ._two_pass import COMMON, RECIPE, ROSENBROCK, two_pass_step, with_grads


def rwp_noise(p: torch.Tensor, gamma: float, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise for one tensor: standard deviation gamma times the norm of each output filter
    (row of the tensor flattened to one row per first index) for tensors of two or more dimensions,
    gamma times (the whole norm + 1e-16) for vectors and scalars. Drawn on the CPU from ``generator``."""
    z = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
    if p.dim() > 1:
        std = gamma * torch.linalg.vector_norm(p.reshape(p.shape[0], -1), dim=1)
        return z * std.reshape(-1, *([1] * (p.dim() - 1)))
    return z * (gamma * (torch.linalg.vector_norm(p) + 1e-16))


def _noise(p: torch.Tensor, gamma: float, generator: torch.Generator) -> torch.Tensor:
    """``rwp_noise`` for a plain tensor, or for an FSDP2 shard: drawn for the whole tensor (every rank
    draws the same, from the same generator state) and cut to this rank's shard."""
    if not is_dtensor(p):
        return rwp_noise(p, gamma, generator)
    from torch.distributed.tensor import distribute_tensor

    full = rwp_noise(gather(p), gamma, generator)
    return distribute_tensor(full, p.device_mesh, p.placements, src_data_rank=None)


class RWP(Optimizer):
    r"""RWP (Random Weight Perturbation): mix the gradient at randomly perturbed weights with the clean one.

    Each step evaluates the loss twice: at the weights, which gives $g_t$,
    and at the weights plus Gaussian noise $e_t$, whose scale follows the
    norm of each output filter (each row of a tensor of two or more
    dimensions; the whole norm for vectors). The base optimizer steps with
    $d_t = \alpha \tilde g_t + (1 - \alpha) g_t$, from the unperturbed weights.
    The official code computes the two gradients in parallel on different
    workers and minibatches, and lets data-parallel averaging form $d_t$;
    here the closure is called twice in sequence, and it may draw a new
    minibatch each time to match. With $\alpha = 0$ it is the base optimizer
    (up to the rounding of adding and removing the noise; exactly with
    $\sigma = 0$ too).

    $$
    \begin{aligned}
    (e_t)_{ij} &\sim \mathcal{N}\!\left(0,\ \sigma^{2} \lVert W^{(\ell)}_{t-1}[i, :] \rVert_2^{2}\right) \ \text{(tensors with two or more dimensions)}, \qquad (e_t)_{j} \sim \mathcal{N}\!\left(0,\ \sigma^{2} \lVert W^{(\ell)}_{t-1} \rVert_2^{2}\right) \ \text{(vectors)} \\
    d_t &= \alpha\, \nabla L_{\mathcal{B}_1}(\theta_{t-1} + e_t) + (1 - \alpha)\, \nabla L_{\mathcal{B}_2}(\theta_{t-1}) \\
    b_t &= \mu\, b_{t-1} + d_t + \lambda\, \theta_{t-1}, \qquad \theta_t = \theta_{t-1} - \eta\, b_t
    \end{aligned}
    $$

    The last line is the base optimizer's step, shown for the official
    code's SGD with momentum $\mu$ and weight decay $\lambda$; any base
    optimizer can be wrapped. $\sigma$ is the argument ``gamma`` (the code's
    name). The noise is drawn on the CPU from the wrapper's own generator
    (seeded at the first step from ``seed``, or from torch's global generator
    when ``seed`` is None), whose state is part of ``state_dict``, so a resumed run draws the
    same noise. Protocol: ``step(closure)`` calls the closure twice (it clears
    gradients, computes the loss, calls ``backward`` and returns the loss; the
    first, clean loss is returned), or by hand ``first_step()`` after the
    first backward pass and ``second_step()`` after the second.

    Non-finite gradients: a NaN or infinite gradient entry propagates into the parameters, through
    the mixed gradient and the wrapped optimizer's own step, as in torch.optim.

    Args:
        optimizer: the base optimizer (any ``torch.optim.Optimizer``).
        alpha: $\alpha$, the weight of the perturbed-weights gradient, in $[0, 1]$.
        gamma: $\sigma$, the noise's standard deviation relative to the filter norms.
        seed: seed of the noise generator (an integer >= 0; None: drawn from torch's global
            generator at the first step). Runs that should differ need different seeds.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> x = torch.randn(8, 4)
        >>> opt = zij.RWP(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), alpha=0.5, gamma=0.01)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = model(x).square().mean()
        ...     loss.backward()
        ...     return loss
        >>> loss = opt.step(closure)

    References:
        Li, Yan, Lei, Wu, Fang, Yang and Huang, "Efficient Generalization Improvement Guided by
        Random Weight Perturbation", arXiv 2022. https://arxiv.org/abs/2211.11489
    """

    def __init__(self, optimizer: Optimizer, alpha: float = 0.5, gamma: float = 0.01, *, seed: int | None = 0):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        check_unit(alpha, "alpha", closed=True)
        check_nonnegative(gamma, "gamma")
        if seed is not None:
            check_int(seed, "seed", minimum=0)
        self.optimizer = optimizer
        self.alpha, self.gamma = alpha, gamma
        self.seed = seed
        self.generator: torch.Generator | None = None  # created at the first step
        super().__init__(optimizer.param_groups, {})
        self.param_groups = optimizer.param_groups  # shared, so schedulers reach the base optimizer

    def __getstate__(self):
        return {**super().__getstate__(), "optimizer": self.optimizer, "alpha": self.alpha, "gamma": self.gamma,
                "seed": self.seed, "generator_state": None if self.generator is None else self.generator.get_state()}

    def __setstate__(self, state):
        generator_state = state.pop("generator_state", None)
        super().__setstate__(state)
        self.generator = None
        if generator_state is not None:
            self.generator = torch.Generator()
            self.generator.set_state(generator_state)

    def _noise_generator(self) -> torch.Generator:
        """The wrapper's generator, seeded at the first step from ``seed`` or from torch's global generator."""
        if self.generator is None:
            seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, (), dtype=torch.int64))
            self.generator = torch.Generator().manual_seed(seed)
        return self.generator

    def _all_params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Keep the clean gradient and add fresh noise to the weights."""
        params = with_grads(self)
        generator = self._noise_generator() if params else None
        for p in params:
            noise = _noise(p, self.gamma, generator)
            self.state[p]["clean"] = p.grad.clone()
            self.state[p]["noise"] = noise
            p.add_(noise)
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Remove the noise, mix the gradients and let the base optimizer step."""
        for p in self._all_params():
            state = self.state[p] if p in self.state else {}
            noise, clean = state.pop("noise", None), state.pop("clean", None)
            if noise is None:
                continue
            p.sub_(noise)
            if p.grad is None:
                p.grad = clean.mul_(1 - self.alpha)
            else:
                p.grad.mul_(self.alpha).add_(clean, alpha=1 - self.alpha)
        self.optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure=None):
        """One RWP step; ``closure`` is required and is evaluated twice. Returns the first (clean) loss."""
        return two_pass_step(self, closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none)

    def state_dict(self):
        """The base optimizer's state, the settings and the noise generator's state."""
        return {"inner": self.optimizer.state_dict(), "alpha": self.alpha, "gamma": self.gamma,
                "seed": self.seed, "generator": None if self.generator is None else self.generator.get_state(),
                CLASS_KEY: type(self).__name__}

    def load_state_dict(self, state_dict):
        check_wrapper(self, state_dict, ("inner", "alpha", "gamma"))
        self.optimizer.load_state_dict(state_dict["inner"])
        self.alpha, self.gamma = state_dict["alpha"], state_dict["gamma"]
        self.seed = state_dict.get("seed", self.seed)
        if state_dict.get("generator") is not None:
            self.generator = torch.Generator()
            self.generator.set_state(state_dict["generator"].cpu())
        self.param_groups = self.optimizer.param_groups


register(OptimizerEntry(
    name="RWP", cls=RWP, canon_id="rwp",
    **{**COMMON, "skips": {"param_groups": "the noise is drawn tensor after tensor from one generator, so two "
                                           "wrappers over one group each draw other noise than one over both"}},
    errors=(ErrorInput({"alpha": 1.5}, "alpha"), ErrorInput({"gamma": -0.1}, "gamma"),
            ErrorInput({"seed": 1.5}, "seed")),
    recipe={"base": RECIPE["base"], "alpha": 0.5, "gamma": 0.01},
    recipes={"rosenbrock": {"base": ROSENBROCK["base"], "alpha": 0.5, "gamma": 0.01}},
))
