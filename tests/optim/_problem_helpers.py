"""Small deterministic problems the whole optimizer test matrix runs on."""

from __future__ import annotations

import torch

from zij._registry import OptimizerEntry

STEPS = {"quadratic": 500, "logistic": 500, "rosenbrock": 3000}
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def quadratic_params(dtype=torch.float32):
    return [torch.full((4, 5), 2.0, dtype=dtype, requires_grad=True)]


def quadratic_loss(params):
    scales = torch.linspace(1.0, 10.0, 20, dtype=params[0].dtype, device=params[0].device).reshape(4, 5)
    return 0.5 * (scales * params[0] ** 2).sum()


def logistic_params(dtype=torch.float32):
    return [torch.zeros(1, 8, dtype=dtype, requires_grad=True)]


def _logistic_data(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    w = torch.randn(8, 1, generator=g, dtype=torch.float64)
    y = (x @ w > 0).to(torch.float64)
    return x.to(dtype), y.to(dtype)


def logistic_loss(params):
    x, y = (t.to(params[0].device) for t in _logistic_data(params[0].dtype))
    logits = x @ params[0].t()
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y)


def rosenbrock_params(dtype=torch.float32):
    return [torch.tensor([[-1.5, 2.0]], dtype=dtype, requires_grad=True)]


def rosenbrock_loss(params):
    a, b = params[0][0, 0], params[0][0, 1]
    return (1 - a) ** 2 + 100 * (b - a**2) ** 2


PROBLEMS = {
    "quadratic": (quadratic_params, quadratic_loss),
    "logistic": (logistic_params, logistic_loss),
    "rosenbrock": (rosenbrock_params, rosenbrock_loss),
}


def closure_for(entry: OptimizerEntry, opt, params, loss_fn, sign: float = 1.0):
    """A closure computing ``sign * loss`` and its gradients (sparsified if the entry needs it)."""

    def closure():
        opt.zero_grad()
        loss = sign * loss_fn(params)
        loss.backward()
        if entry.capabilities.sparse_only:
            for p in params:
                if p.grad is not None:
                    p.grad = p.grad.to_sparse()
        return loss

    return closure


def run(entry: OptimizerEntry, problem: str, steps: int | None = None, dtype=torch.float32, **overrides):
    """Optimize ``problem`` with ``entry``; return (params, losses)."""
    make_params, loss_fn = PROBLEMS[problem]
    params = make_params(dtype)
    opt = entry.make(params, **{**entry.kwargs_for(problem), **overrides})
    closure = closure_for(entry, opt, params, loss_fn)
    losses = [float(opt.step(closure)) for _ in range(steps or STEPS[problem])]
    with torch.no_grad():
        losses.append(float(loss_fn(params)))
    return params, losses


def mlp_params(entry: OptimizerEntry, dtype=torch.float64, seed: int = 0):
    """Parameters of a small MLP (biases only where the entry accepts 1-D tensors)."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(8, 4), (8,), (3, 8), (3,)] if 1 in entry.capabilities.ndims else [(8, 4), (3, 8)]
    return [(torch.randn(s, generator=g, dtype=torch.float64) * 0.5).to(dtype).requires_grad_() for s in shapes]


def mlp_forward(params, x):
    """The MLP of :func:`mlp_params` applied to ``x``."""
    if len(params) == 4:
        w1, b1, w2, b2 = params
        return torch.tanh(x @ w1.t() + b1) @ w2.t() + b2
    w1, w2 = params
    return torch.tanh(x @ w1.t()) @ w2.t()


def mlp_loss(params):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 4, generator=g, dtype=torch.float64).to(params[0].device, params[0].dtype)
    y = torch.randn(16, 3, generator=g, dtype=torch.float64).to(params[0].device, params[0].dtype)
    return ((mlp_forward(params, x) - y) ** 2).mean()


def train_mlp(entry: OptimizerEntry, opt, params, steps: int):
    closure = closure_for(entry, opt, params, mlp_loss)
    for _ in range(steps):
        opt.step(closure)
