"""One benchmark run: an optimizer class at one learning rate and seed on one task.

How each registered class is built on a model (the same way its docstring tells a user to):

* wrappers (Lookahead, the sharpness-aware family) wrap the base of their recipe, a fixed
  ``SGD(momentum=0.9)``, whose learning rate is the one swept;
* classes built from a model (Adam-mini) get ``model.named_parameters()`` (and the transformer's
  width and head count);
* classes with ``use_muon`` routing (Muon with auxiliary AdamW and its kin) get the hidden matrices
  in one group and embeddings, the output layer, biases and gains in a ``use_muon=False`` group;
* matrix-only classes (torch's Muon) step the hidden matrices, and AdamW steps the rest at half the
  swept rate (the ratio of MuonWithAuxAdam's recipe), both under the same schedule;
* block-coordinate classes whose blocks are the parameter groups (BAdam) get one group per layer;
* classes with an inner iteration count (L-BFGS's ``max_iter``) make one iteration per step;
* classes that take only sparse gradients (SparseAdam) do not apply to these dense tasks.

Every class is stepped with a closure (zero the gradients, forward, backward): closure classes
(L-BFGS, Polyak step sizes, the two-pass sharpness-aware wrappers) call it as often as they need,
Hessian classes run it with ``create_graph``, the rest call it once. Every run uses
``zij.schedulers.WarmupCosine`` on the swept key (``lr``, or ``max_lr`` / ``eta_max`` for Polyak
step sizes, whose groups get an ``lr`` the schedule drives and that is copied to the key).
"""

from __future__ import annotations

import copy
import inspect
import math
import statistics
import time

import torch

from .._registry import OptimizerEntry
from ..schedulers import WarmupCosine
from .tasks import Task

#: The learning-rate grid, as factors of the recipe's rate: half-decade steps from 1/30x to 3x.
LR_FACTORS = (10**-1.5, 10**-1.0, 10**-0.5, 1.0, 10**0.5)
QUICK_FACTORS = (10**-1.0, 1.0)
STEP_KEYS = ("lr", "max_lr", "eta_max")


def skip_reason(entry: OptimizerEntry, task: Task) -> str | None:
    """Why ``entry`` does not apply to ``task`` (None: it does)."""
    if entry.capabilities.sparse_only:
        return "takes sparse gradients only; the tasks' gradients are dense"
    return None


def recipe(entry: OptimizerEntry, task: Task) -> dict:
    return copy.deepcopy(entry.kwargs_for(task.recipe))


def step_key(entry: OptimizerEntry, task: Task) -> str:
    """The key the sweep scales: ``lr``, ``base.lr`` for wrappers, or a Polyak class's cap."""
    kw = recipe(entry, task)
    if entry.wraps:
        return "base.lr"
    for key in STEP_KEYS:
        if key in kw:
            return key
    raise ValueError(f"{entry.name}: its recipe names no step size ({', '.join(STEP_KEYS)})")


def recipe_rate(entry: OptimizerEntry, task: Task) -> float:
    kw, key = recipe(entry, task), step_key(entry, task)
    return float(kw["base"][1]["lr"] if key == "base.lr" else kw[key])


def lr_grid(entry: OptimizerEntry, task: Task, factors=LR_FACTORS) -> list[float]:
    rate = recipe_rate(entry, task)
    return [float(f"{rate * f:.4g}") for f in factors]


class Routed(torch.optim.Optimizer):
    """Several optimizers stepped as one (a matrix-only rule and AdamW for the other tensors)."""

    def __init__(self, parts: list[torch.optim.Optimizer]):
        self.parts = parts
        super().__init__([p for part in parts for g in part.param_groups for p in g["params"]], {})
        self.param_groups = [g for part in parts for g in part.param_groups]

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for part in self.parts:
            part.step()
        return loss

    def zero_grad(self, set_to_none: bool = True):
        for part in self.parts:
            part.zero_grad(set_to_none=set_to_none)


def _layers(model: torch.nn.Module) -> list[dict]:
    """One parameter group per module that holds parameters directly, in model order."""
    return [{"params": list(m.parameters(recurse=False))} for m in model.modules() if list(m.parameters(recurse=False))]


def build(entry: OptimizerEntry, problem, task: Task, lr: float) -> torch.optim.Optimizer:
    """``entry``'s optimizer over ``problem.model`` at swept rate ``lr`` (see the module docstring)."""
    kw, key = recipe(entry, task), step_key(entry, task)
    model, cls, doc = problem.model, entry.cls, entry.cls.__doc__ or ""
    params = [p for p in model.parameters() if p.requires_grad]
    if entry.wraps:
        base_cls, base_kw = kw.pop("base")
        return cls(base_cls(params, **{**base_kw, "lr": lr}), **kw)
    kw[key] = lr
    if "max_iter" in inspect.signature(cls.__init__).parameters:
        kw["max_iter"] = 1  # one iteration per step, like every other class (L-BFGS defaults to 20)
    if hasattr(cls, "from_model"):
        extra = {"dim": model.dim, "n_heads": model.heads} if hasattr(model, "heads") else {}
        return cls.from_model(model, **extra, **kw)
    hidden = {id(p) for p in problem.hidden_matrices()}
    matrices = [p for p in params if id(p) in hidden]
    rest = [p for p in params if id(p) not in hidden]
    if "use_muon" in doc:
        groups = [{"params": matrices}, {"params": rest, "use_muon": False}]
        return cls([g for g in groups if g["params"]], **kw)
    if 1 not in entry.capabilities.ndims:  # matrix-only: AdamW steps the rest
        parts = [cls(matrices, **kw)] + ([torch.optim.AdamW(rest, lr=lr / 2, weight_decay=0.0)] if rest else [])
        return Routed(parts)
    if "blocks are the parameter groups" in doc:
        return cls(_layers(model), **kw)
    return cls(params, **kw)


def state_bytes(opt) -> int:
    """Bytes of every tensor in the optimizer's state (wrapped and routed optimizers included), each once."""
    seen, total = set(), 0

    def walk(value):
        nonlocal total
        if isinstance(value, torch.Tensor):
            key = (value.untyped_storage().data_ptr(), value.dtype, value.shape) if value.numel() else id(value)
            if key not in seen:
                seen.add(key)
                total += value.numel() * value.element_size()
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)

    stack = [opt]
    while stack:
        o = stack.pop()
        walk(dict(o.state))
        stack += list(getattr(o, "parts", []))
        inner = getattr(o, "optimizer", None)
        if isinstance(inner, torch.optim.Optimizer):
            stack.append(inner)
    return total


def _sig(x: float) -> float | None:
    """Six significant digits (the files' precision); None for a non-finite value."""
    return float(f"{x:.6g}") if math.isfinite(x) else None


def expose_step_size(opt, key: str) -> None:
    """Make the swept step size the groups' ``lr``, which the schedule scales: a cap kept under its own
    name is copied there (AliG already keeps its cap as ``lr``)."""
    if key not in ("lr", "base.lr"):
        for group in opt.param_groups:
            group["lr"] = group.get(key, group.get("lr"))


def run(entry: OptimizerEntry, task: Task, lr: float, seed: int, steps: int | None = None,
        device: str = "cpu") -> dict:
    """Train ``task`` with ``entry`` at rate ``lr`` from ``seed``; the run's record (no timing in it
    but ``median_step_ms``, the only number that is not reproduced exactly)."""
    steps = steps or task.steps
    warmup = max(1, round(task.warmup * steps / task.steps))
    evals = set(task.eval_steps(steps))
    problem = task.build(seed).to(device)
    torch.manual_seed(seed)
    opt = build(entry, problem, task, lr)
    key = step_key(entry, task)
    expose_step_size(opt, key)
    schedule = WarmupCosine(opt, warmup_steps=warmup, total_steps=steps)
    has_eval = callable(getattr(opt, "eval", None)) and callable(getattr(opt, "train", None))
    calls, batch, first = 0, None, []

    def closure():
        nonlocal calls
        calls += 1
        opt.zero_grad(set_to_none=True)
        loss = problem.loss_on(batch)
        loss.backward()
        if len(first) == 0:
            first.append(float(loss.detach()))
        return loss

    train, val, window, times, peak = [], [], [], [], 0
    diverged_at = None
    for step in range(1, steps + 1):
        batch, first = problem.next_batch(step - 1), []
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        opt.step(closure)
        schedule.step()
        if key not in ("lr", "base.lr"):
            for group in opt.param_groups:
                group[key] = group["lr"]
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        if step == 1:
            peak = state_bytes(opt)
        window.append(first[0] if first else math.nan)
        if step in evals:
            peak = max(peak, state_bytes(opt))
            if has_eval:
                opt.eval()
            v = problem.val_loss()
            if has_eval:
                opt.train()
            train.append(_sig(statistics.fmean(window)))
            val.append(_sig(v))
            window = []
            if not math.isfinite(v) or any(not math.isfinite(x) for x in (p.detach().float().abs().max().item()
                                                                           for p in problem.model.parameters())):
                diverged_at = step
                break
    finite = [v for v in val if v is not None]
    eval_steps = task.eval_steps(steps)
    reached = [s for s, v in zip(eval_steps, val) if v is not None and v <= task.target]
    return {
        "lr": lr, "seed": seed,
        "train": train + [None] * (len(eval_steps) - len(train)),
        "val": val + [None] * (len(eval_steps) - len(val)),
        "best_val": min(finite) if finite else None,
        "final_val": val[-1] if len(val) == len(eval_steps) else None,
        "steps_to_target": reached[0] if reached else None,
        "diverged_at": diverged_at,
        "grad_evals_per_step": round(calls / len(times), 3),
        "peak_state_bytes": peak,
        "median_step_ms": round(statistics.median(times) * 1e3, 4),
    }
