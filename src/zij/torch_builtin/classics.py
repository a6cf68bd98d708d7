"""Registry entries for torch.optim's classes, where the installed torch has them.

``zij.AdamW is torch.optim.AdamW``: zij does not copy these classes, it adds
their Canon id, family, capabilities, a converging recipe and the inputs torch
rejects, so the same test matrix covers them.
"""

from __future__ import annotations

import torch

from .._registry import Capabilities, ErrorInput, OptimizerEntry, register

LR_ERROR = ErrorInput({"lr": -1.0}, "(?i)learning rate")
FULL = Capabilities(maximize=True, foreach=True)


def _builtin(name: str, canon_id: str, family: str, recipe: dict, errors=(LR_ERROR,), **extra) -> None:
    cls = getattr(torch.optim, name, None)
    if cls is not None:
        register(OptimizerEntry(name=name, cls=cls, canon_id=canon_id, family=family, recipe=recipe,
                                errors=tuple(errors), builtin=True, **extra))


_builtin("SGD", "sgd", "sgd-family", {"lr": 0.01, "momentum": 0.9},
         errors=(LR_ERROR, ErrorInput({"lr": 0.1, "momentum": -0.5}, "momentum")),
         capabilities=Capabilities(maximize=True, foreach=True, sparse=True),
         recipes={"rosenbrock": {"lr": 5e-4, "momentum": 0.9}})
_builtin("Adam", "adam", "adam-family", {"lr": 0.05},
         errors=(LR_ERROR, ErrorInput({"betas": (1.5, 0.999)}, "beta parameter")), capabilities=FULL)
_builtin("AdamW", "adamw", "adam-family", {"lr": 0.05, "weight_decay": 0.0},
         errors=(LR_ERROR, ErrorInput({"eps": -1.0}, "epsilon")), capabilities=FULL)
_builtin("NAdam", "nadam", "adam-family", {"lr": 0.05}, capabilities=FULL)
_builtin("RAdam", "radam", "adam-family", {"lr": 0.05}, capabilities=FULL, recipes={"rosenbrock": {"lr": 0.01}})
_builtin("Adagrad", "adagrad", "adaptive", {"lr": 0.5},
         capabilities=Capabilities(maximize=True, foreach=True, sparse=True, eager_state=True), recipes={"rosenbrock": {"lr": 1.0}})
_builtin("Adadelta", "adadelta", "adaptive", {"lr": 5.0}, capabilities=FULL, recipes={"rosenbrock": {"lr": 0.3}})
_builtin("Adamax", "adamax", "adam-family", {"lr": 0.05}, capabilities=FULL, recipes={"rosenbrock": {"lr": 0.1}})
_builtin("RMSprop", "rmsprop", "adaptive", {"lr": 0.01}, capabilities=FULL,
         recipes={"rosenbrock": {"lr": 0.003}})
_builtin("Rprop", "rprop", "sign-based", {"lr": 0.01}, capabilities=FULL)
_builtin("ASGD", "asgd", "averaging", {"lr": 0.01}, capabilities=FULL,
         recipes={"rosenbrock": {"lr": 1e-3}})
_builtin("LBFGS", "lbfgs", "curvature", {"lr": 1.0, "line_search_fn": "strong_wolfe"},
         errors=(LR_ERROR,), capabilities=Capabilities(needs_closure=True, param_groups=False, elementwise=False, dtypes=("float32", "float64")))
_builtin("SparseAdam", "sparseadam", "adam-family", {"lr": 0.05},
         capabilities=Capabilities(maximize=True, sparse=True, sparse_only=True, elementwise=False, dtypes=("float32", "float64")))
_builtin("Adafactor", "adafactor", "factored", {"lr": 0.05}, capabilities=FULL, recipes={"rosenbrock": {"lr": 0.3}})
_builtin("Muon", "muon", "orthogonalized", {"lr": 0.02, "weight_decay": 0.0}, recipes={"quadratic": {"lr": 0.1}},
         capabilities=Capabilities(ndims=(2,), elementwise=False, dtypes=("float32", "float64")))
