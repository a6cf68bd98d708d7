"""The benchmark tasks: small, real and fixed, with data that ships with an installed package.

* ``digits-mlp`` and ``digits-cnn``: scikit-learn's bundled handwritten digits (1,797 images of
  8x8 pixels, read from the file scikit-learn installs; never downloaded), a fixed 80/20
  train/validation split, an MLP and a small convolutional network (no augmentation).
* ``char-lm``: a character-level transformer (about 0.8M parameters) on the documentation topics
  that ship with Python (``pydoc_data.topics``), the first 90% of the text for training and the
  last 10% for validation. The text is Python's own, so it changes with the Python version: the
  results file records its length and SHA-256.
* ``rosenbrock`` and ``rastrigin``: two-dimensional test functions from fixed starts; the
  "validation loss" is the function value (there is no data).

Every task draws its model's initial weights and its batch order from the run's seed alone, so
every optimizer sees the same batches in the same order for a given seed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Task:
    """One benchmark task: its model, data and step budget."""

    name: str
    description: str
    steps: int
    """Optimizer steps per run (the same for every class)."""
    warmup: int
    """Steps of linear warm-up before the cosine decay (zij.schedulers.WarmupCosine)."""
    evals: int
    """Evaluations of the validation loss per run, evenly spaced (the last at the final step)."""
    target: float
    """Validation loss whose first reaching gives "steps to target"."""
    build: Callable[[int], "Problem"]
    """The problem (model and batches) for a seed."""
    quick_steps: int = 12
    recipe: str | None = None
    """Which per-problem recipe of an entry its learning-rate grid is centred on (None: the base recipe)."""
    stochastic: bool = True
    """Whether seeds differ (a test function from a fixed start runs once: every seed would repeat it)."""
    info: dict = field(default_factory=dict)

    def seeds(self, requested: int) -> int:
        return requested if self.stochastic else 1

    def eval_steps(self, steps: int | None = None) -> list[int]:
        steps = steps or self.steps
        n = self.evals if steps >= self.steps else max(2, min(self.evals, steps // 4))  # a short run: a few
        return sorted({round(steps * (i + 1) / n) for i in range(n)})


class Problem:
    """A model and its data for one seed: ``train_loss(step)`` and ``val_loss()``."""

    model: nn.Module

    def next_batch(self, step: int):
        """The training batch of ``step`` (drawn from the seed's own generator, in step order)."""
        raise NotImplementedError

    def loss_on(self, batch) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def val_loss(self) -> float:
        raise NotImplementedError

    def to(self, device: str) -> "Problem":
        """Move the model and the data to ``device`` (batch order stays drawn on the CPU)."""
        self.model.to(device)
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor) and name != "order":
                setattr(self, name, value.to(device))
        return self

    def hidden_matrices(self) -> list[nn.Parameter]:
        """Weights a matrix rule (Muon) takes: hidden 2-D layers, not embeddings or the output layer."""
        return []


# ---------------------------------------------------------------------------- digits
@lru_cache(maxsize=1)
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_val, y_val): pixels scaled to [0, 1], a fixed permutation split 1437/360."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - the message is the point
        raise ImportError("the digits tasks read scikit-learn's bundled dataset: pip install 'zij[bench]'") from error
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    cut = len(y) - 360
    return x[:cut], y[:cut], x[cut:], y[cut:]


class _Digits(Problem):
    batch = 64

    def __init__(self, model: nn.Module, seed: int, image: bool):
        self.model = model
        x, y, self.xv, self.yv = digits()
        self.x, self.y = x, y
        if image:
            self.x, self.xv = self.x.view(-1, 1, 8, 8), self.xv.view(-1, 1, 8, 8)
        self.gen = torch.Generator().manual_seed(10_000 + seed)
        self.order = torch.empty(0, dtype=torch.long)

    def _batch(self, step: int) -> torch.Tensor:
        start = (step * self.batch) % len(self.y)
        if start == 0 or len(self.order) == 0:  # a fresh epoch order from the seed's own generator
            self.order = torch.randperm(len(self.y), generator=self.gen)
        return self.order[start:start + self.batch]

    def next_batch(self, step: int):
        idx = self._batch(step).to(self.x.device)
        return self.x[idx], self.y[idx]

    def loss_on(self, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x), y)

    @torch.no_grad()
    def val_loss(self) -> float:
        return float(F.cross_entropy(self.model(self.xv), self.yv))

    def hidden_matrices(self):
        return [p for n, p in self.model.named_parameters() if p.ndim == 2 and not n.startswith("output")]


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.output = nn.Linear(64, 128), nn.Linear(128, 64), nn.Linear(64, 10)

    def forward(self, x):
        return self.output(torch.tanh(self.fc2(torch.tanh(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1)
        self.fc, self.output = nn.Linear(32 * 4 * 4, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv2(F.relu(self.conv1(x)))), 2)
        return self.output(F.relu(self.fc(x.flatten(1))))


def _digits_problem(cls: type, image: bool) -> Callable[[int], Problem]:
    def build(seed: int) -> Problem:
        torch.manual_seed(seed)
        return _Digits(cls(), seed, image)

    return build


# ---------------------------------------------------------------------------- characters
@lru_cache(maxsize=1)
def corpus() -> tuple[str, str]:
    """(text, vocabulary): Python's documentation topics in key order, and its sorted characters."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key] for key in sorted(topics))
    return text, "".join(sorted(set(text)))


def corpus_info() -> dict:
    text, vocab = corpus()
    return {"source": "pydoc_data.topics (ships with Python)", "chars": len(text), "vocab": len(vocab),
            "sha256": hashlib.sha256(text.encode()).hexdigest(), "split": "first 90% train, last 10% validation"}


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q_proj, self.k_proj = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.v_proj, self.o_proj = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def attention(self, x):  # written out (no fused kernel) so Hessian-vector products go through it
        b, t, d = x.shape
        q, k, v = (proj(x).view(b, t, self.heads, -1).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        out = scores.masked_fill(mask, float("-inf")).softmax(-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class CharTransformer(nn.Module):
    def __init__(self, vocab: int, dim: int = 128, layers: int = 4, heads: int = 4, context: int = 64):
        super().__init__()
        self.dim, self.heads = dim, heads
        self.embed, self.pos_embed = nn.Embedding(vocab, dim), nn.Embedding(context, dim)
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(layers))
        self.ln_f, self.lm_head = nn.LayerNorm(dim), nn.Linear(dim, vocab, bias=False)

    def forward(self, idx):
        x = self.embed(idx) + self.pos_embed(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class _Chars(Problem):
    val_windows = 32

    def __init__(self, seed: int, batch: int = 8, context: int = 32, **model_kw):
        self.batch, self.context = batch, context
        text, vocab = corpus()
        lookup = {c: i for i, c in enumerate(vocab)}
        ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        cut = int(len(ids) * 0.9)
        self.train_ids, val = ids[:cut], ids[cut:]
        starts = torch.linspace(0, len(val) - self.context - 2, self.val_windows).long()
        windows = torch.stack([val[s:s + self.context + 1] for s in starts.tolist()])
        self.xv, self.yv = windows[:, :-1], windows[:, 1:]
        torch.manual_seed(seed)
        self.model = CharTransformer(len(vocab), context=self.context, **model_kw)
        self.gen = torch.Generator().manual_seed(20_000 + seed)

    def next_batch(self, step: int):
        starts = torch.randint(0, len(self.train_ids) - self.context - 1, (self.batch,), generator=self.gen)
        windows = torch.stack([self.train_ids[s:s + self.context + 1] for s in starts.tolist()])
        return windows[:, :-1], windows[:, 1:]

    def loss_on(self, batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())

    @torch.no_grad()
    def val_loss(self) -> float:
        return float(F.cross_entropy(self.model(self.xv).flatten(0, 1), self.yv.flatten()))

    def hidden_matrices(self):
        return [p for n, p in self.model.named_parameters() if p.ndim == 2 and "embed" not in n and "lm_head" not in n]


# ---------------------------------------------------------------------------- test functions
def rosenbrock(xy: torch.Tensor) -> torch.Tensor:
    """(1 - x)^2 + 100 (y - x^2)^2: minimum 0 at (1, 1)."""
    x, y = xy[..., 0], xy[..., 1]
    return ((1 - x) ** 2 + 100 * (y - x**2) ** 2).sum()


def rastrigin(xy: torch.Tensor) -> torch.Tensor:
    """20 + sum(x_i^2 - 10 cos(2 pi x_i)): minimum 0 at the origin, a local minimum at every integer point."""
    return (xy.shape[-1] * 10 + (xy**2 - 10 * torch.cos(2 * math.pi * xy)).sum(-1)).sum()


STARTS = {"rosenbrock": (-1.5, 2.0), "rastrigin": (2.2, -1.6)}
"""The fixed starting points (the Rosenbrock start is the test matrix's)."""


class _Function(Problem):
    def __init__(self, fn: Callable, start: tuple[float, float]):
        self.fn = fn
        self.model = nn.Module()
        self.model.xy = nn.Parameter(torch.tensor([start], dtype=torch.float32))  # (1, 2): matrix rules apply too

    def next_batch(self, step: int):
        return None

    def loss_on(self, batch) -> torch.Tensor:
        return self.fn(self.model.xy)

    @torch.no_grad()
    def val_loss(self) -> float:
        return float(self.fn(self.model.xy))

    def hidden_matrices(self):
        return [self.model.xy]


def _function_problem(name: str, fn: Callable) -> Callable[[int], Problem]:
    return lambda seed: _Function(fn, STARTS[name])


TASKS: dict[str, Task] = {t.name: t for t in (
    Task("digits-mlp", "MLP 64-128-64-10 (tanh) on scikit-learn's 8x8 digits, batch 64", steps=300, warmup=30, evals=15,
         target=0.15, build=_digits_problem(MLP, image=False)),
    Task("digits-cnn", "CNN (two 3x3 convolutions, 16 and 32 channels, max-pool, 64 hidden) on the 8x8 digits, batch 64",
         steps=150, warmup=15, evals=10, target=0.15, build=_digits_problem(CNN, image=True)),
    Task("char-lm", "character-level transformer (4 layers, width 128, 4 heads, context 32) on pydoc_data topics, "
         "batch 8", steps=80, warmup=8, evals=5, target=2.6, build=lambda seed: _Chars(seed), quick_steps=4),
    Task("char-lm-large", "character-level transformer (8 layers, width 512, 8 heads, context 256; about 25M "
         "parameters) on pydoc_data topics, batch 32: for --device cuda", steps=1000, warmup=50, evals=20, target=2.0,
         build=lambda seed: _Chars(seed, batch=32, context=256, dim=512, layers=8, heads=8), quick_steps=4,
         info={"default": False}),
    Task("rosenbrock", f"Rosenbrock function from {STARTS['rosenbrock']}", steps=500, warmup=25, evals=25, target=1e-2,
         build=_function_problem("rosenbrock", rosenbrock), quick_steps=20, recipe="rosenbrock",
         stochastic=False),
    Task("rastrigin", f"Rastrigin function (2-D) from {STARTS['rastrigin']}", steps=500, warmup=25, evals=25, target=0.5,
         build=_function_problem("rastrigin", rastrigin), quick_steps=20, recipe="rosenbrock",
         stochastic=False),
)}


def parameter_count(task: Task) -> int:
    return sum(p.numel() for p in task.build(0).model.parameters())
