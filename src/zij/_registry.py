"""The optimizer registry: one typed entry per optimizer.

Each implementation module registers its entry at import (``register(...)``
at the bottom of the module); torch.optim's classes are registered in
:mod:`zij.torch_builtin`. The entries carry everything the test matrix needs:
how to build the optimizer, its capabilities, a recipe that converges on the
test problems, the inputs that must raise, and an optional parity reference.
Tests read capabilities from here; they never check names.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable

#: Packages whose modules register optimizers, imported on first use of the registry.
PACKAGES = ("zij.torch_builtin", "zij.first_order", "zij.learning_rate_free", "zij.memory_efficient", "zij.second_order",
            "zij.sharpness_aware")


@dataclass(frozen=True)
class Capabilities:
    """What an optimizer supports beyond the basics every entry must pass."""

    maximize: bool | None = None
    """Accepts ``maximize=True``, equal to minimizing the negated loss (``None``: read from the
    class, true when its constructor takes ``maximize``)."""
    foreach: bool | None = None
    """Has a ``foreach`` multi-tensor path equal to its per-tensor loop (``None``: read from the
    class, true when its constructor takes ``foreach`` and, for zij classes, ``supports_foreach``)."""
    complex: bool = False
    """Accepts complex parameters."""
    sparse: bool = False
    """Accepts sparse gradients."""
    needs_closure: bool = False
    """``step`` must be given a closure (e.g. L-BFGS)."""
    dtypes: tuple[str, ...] = ("float32", "float64", "bfloat16")
    """Parameter dtypes it is tested with."""
    ndims: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Parameter dimensionalities it accepts (Muon: matrices only)."""
    elementwise: bool = True
    """Its cost grows with the number of elements alone (benchmarked by ``make bench``)."""
    param_groups: bool = True
    """Accepts several parameter groups (torch's L-BFGS does not)."""
    eager_state: bool = False
    """Creates its state at construction (torch's Adagrad), so a step without gradients leaves it unchanged."""
    sparse_only: bool = False
    """Accepts only sparse gradients (SparseAdam); tests sparsify gradients for it."""


def derived_capabilities(cls: type, given: Capabilities) -> Capabilities:
    """``given`` with the capabilities left as ``None`` read from ``cls``'s signature and attributes."""
    try:
        names = set(inspect.signature(cls.__init__).parameters)
    except (TypeError, ValueError):
        names = set()
    derived = {}
    if given.maximize is None:
        derived["maximize"] = "maximize" in names
    if given.foreach is None:
        derived["foreach"] = "foreach" in names and getattr(cls, "supports_foreach", True)
    return dataclasses.replace(given, **derived)


@dataclass(frozen=True)
class ErrorInput:
    """Constructor arguments that must raise ``ValueError`` whose message matches ``match``."""

    kwargs: dict[str, Any]
    match: str


#: The standard invalid value of each hyperparameter many optimizers share (see :func:`invalid`).
INVALID_VALUES: dict[str, Any] = {
    "lr": -1.0,
    "betas": (0.9, 1.0),
    "momentum": 1.0,
    "eps": -1e-8,
    "weight_decay": -0.1,
}


def invalid(*names: str, **values: Any) -> tuple[ErrorInput, ...]:
    """The error inputs of shared hyperparameters, for ``OptimizerEntry.errors``.

    Each of ``names`` gets its standard invalid value (:data:`INVALID_VALUES`); ``values`` give
    another invalid value for a shared name. The error must name the hyperparameter, or for
    ``betas`` the first beta outside [0, 1) (``betas[1]``). The inputs come in the order of
    :data:`INVALID_VALUES`, however they are given.

    Example:
        >>> [e.kwargs for e in invalid("lr", "weight_decay", eps=-1e-6)]
        [{'lr': -1.0}, {'eps': -1e-06}, {'weight_decay': -0.1}]
        >>> print(invalid(betas=(1.0, 0.999))[0].match)
        betas\\[0\\]
    """
    unknown = sorted(set(names).union(values) - set(INVALID_VALUES))
    if unknown:
        raise ValueError(f"no standard error input for {', '.join(unknown)}; write an ErrorInput")
    chosen = {**{name: INVALID_VALUES[name] for name in names}, **values}
    errors = []
    for name in INVALID_VALUES:
        if name not in chosen:
            continue
        value = chosen[name]
        match = name
        if name == "betas":
            i = next(i for i, beta in enumerate(value) if not 0.0 <= beta < 1.0)
            match = rf"betas\[{i}\]"
        errors.append(ErrorInput({name: value}, match))
    return tuple(errors)


@dataclass(frozen=True)
class Variant:
    """A named configuration of an entry that needs more than arguments: shared checks it skips, with reasons."""

    kwargs: dict[str, Any]
    skips: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Parity:
    """An upstream implementation (test-time only) that must agree with ours."""

    package: str
    """PyPI distribution that provides it (for the skip reason)."""
    target: str
    """``module:attribute`` of the reference class."""
    kwargs: dict[str, Any]
    """Our constructor arguments."""
    ref_kwargs: dict[str, Any]
    """The reference's constructor arguments meaning the same thing."""
    rtol: float = 1e-6
    steps: int = 50


@dataclass(frozen=True, eq=False)
class OptimizerEntry:
    """One registered optimizer."""

    name: str
    """Public name: ``zij.<name>``."""
    cls: type
    """The ``torch.optim.Optimizer`` subclass."""
    canon_id: str
    """Id of the method's Canon record."""
    family: str
    """Family tag (from ``canon/families.yaml``) used to group the API reference."""
    recipe: dict[str, Any]
    """Constructor arguments that converge on the test problems."""
    errors: tuple[ErrorInput, ...] = ()
    """Constructor arguments that must be rejected."""
    aliases: tuple[str, ...] = ()
    wraps: bool = False
    """A wrapper of another optimizer: built as ``cls(base(params, **base_kw), **kw)`` from
    ``kw["base"] = (base_class, base_kwargs)`` (Lookahead); otherwise ``cls(params, **kw)``."""
    capabilities: Capabilities = field(default_factory=Capabilities)
    """What it supports; ``maximize`` and ``foreach`` default to what the class says."""
    recipes: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-problem overrides of ``recipe`` (keys: quadratic, logistic, rosenbrock)."""
    parity: tuple[Parity, ...] = ()
    builtin: bool = False
    """A torch.optim class registered with its Canon metadata."""
    variants: dict[str, dict[str, Any] | Variant] = field(default_factory=dict)
    """Named extra configurations (flags, modes): each runs through every shared check of
    the matrix as ``<name>[<variant>]`` with these arguments over the recipe (a :class:`Variant`
    adds shared checks that this configuration skips, with reasons)."""
    skips: dict[str, str] = field(default_factory=dict)
    """Shared matrix checks this entry skips, each with the reason the test report shows."""
    variant: str | None = None
    """For a variant's case (see :meth:`cases`): its name."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "capabilities", derived_capabilities(self.cls, self.capabilities))

    def kwargs_for(self, problem: str | None = None) -> dict[str, Any]:
        return {**self.recipe, **self.recipes.get(problem or "", {})}

    def make(self, params, **kwargs):
        """Build the optimizer over ``params`` (a list of tensors or param groups)."""
        if self.wraps:
            base_cls, base_kwargs = kwargs.pop("base")
            return self.cls(base_cls(params, **base_kwargs), **kwargs)
        return self.cls(params, **kwargs)

    def make_reference(self, reference: type, params, parity: Parity):
        """Build a parity reference over ``params`` the way :meth:`make` builds ours."""
        if self.wraps:
            base_cls, base_kwargs = parity.kwargs["base"]
            return reference(base_cls(params, **base_kwargs), **parity.ref_kwargs)
        return reference(params, **parity.ref_kwargs)

    def cases(self) -> list[OptimizerEntry]:
        """This entry and one case per variant, for the test matrix (a variant keeps the entry's
        class, name prefix, capabilities and skips, and adds its arguments to every recipe)."""
        out = [self]
        for name, variant in self.variants.items():
            variant = variant if isinstance(variant, Variant) else Variant(variant)
            extra = variant.kwargs
            out.append(dataclasses.replace(
                self, name=f"{self.name}[{name}]", recipe={**self.recipe, **extra},
                recipes={k: {**v, **extra} for k, v in self.recipes.items()}, variants={}, variant=name,
                parity=(), aliases=(), skips={**self.skips, **variant.skips}))
        return out


#: The shared checks of the test matrix that an entry may skip (with a reason).
MATRIX_CHECKS = ("quadratic", "logistic", "rosenbrock", "closure", "none_grads", "param_groups", "resume",
                 "deepcopy", "determinism", "dtypes", "maximize", "ndims", "foreach", "compile", "compiled", "sparse")

_ENTRIES: dict[str, OptimizerEntry] = {}
_discovered = False


def register(entry: OptimizerEntry) -> OptimizerEntry:
    """Add ``entry`` to the registry (called by implementation modules at import)."""
    key = entry.name.lower()
    skipped = set(entry.skips).union(*(v.skips for v in entry.variants.values() if isinstance(v, Variant)))
    unknown = sorted(skipped - set(MATRIX_CHECKS))
    if unknown:
        raise ValueError(f"{entry.name}: unknown matrix checks in skips: {', '.join(unknown)} (known: {', '.join(MATRIX_CHECKS)})")
    if key in _ENTRIES and _ENTRIES[key].cls is not entry.cls:
        raise ValueError(f"optimizer name {entry.name!r} is registered twice")
    _ENTRIES[key] = entry
    return entry


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    for package_name in PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(getattr(package, "__path__", []), package_name + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)
    _discovered = True


def entries() -> list[OptimizerEntry]:
    """Every registered entry, sorted by name."""
    _discover()
    return sorted(_ENTRIES.values(), key=lambda e: e.name.lower())


def matrix_cases() -> list[OptimizerEntry]:
    """Every entry and every variant of it (:meth:`OptimizerEntry.cases`), for the test matrix."""
    return [case for entry in entries() for case in entry.cases()]


def get_entry(name: str) -> OptimizerEntry:
    """The entry for ``name`` or one of its aliases (case-insensitive)."""
    _discover()
    key = name.lower()
    if key in _ENTRIES:
        return _ENTRIES[key]
    for entry in _ENTRIES.values():
        if key in (a.lower() for a in entry.aliases):
            return entry
    known = {k.lower(): k for e in _ENTRIES.values() for k in (e.name, *e.aliases)}
    close = [known[k] for k in difflib.get_close_matches(key, known, n=5, cutoff=0.5)]
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise ValueError(f"unknown optimizer {name!r}{hint} (see zij.list_optimizers())")


def list_optimizers(pattern: str = "*", family: str | None = None) -> list[str]:
    """Names of registered optimizers matching an fnmatch ``pattern`` (case-insensitive), sorted.

    Example:
        >>> "AdamW" in zij.list_optimizers("adam*")
        True
    """
    return [
        e.name
        for e in entries()
        if fnmatch.fnmatch(e.name.lower(), pattern.lower()) and (family is None or e.family == family)
    ]


def load_optimizer(name: str) -> type:
    """The optimizer class registered as ``name`` or an alias (case-insensitive).

    Raises:
        ValueError: for an unknown name, listing the closest known names.
    """
    return get_entry(name).cls


def _is_norm(module) -> bool:
    from torch import nn

    norms = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
    return isinstance(module, norms) or type(module).__name__.lower().endswith("norm")


def split_decay(model) -> tuple[list, list]:
    """(parameters that get weight decay, those that do not: biases and normalization weights)."""
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if _is_norm(module) or p.ndim <= 1 or name.endswith("bias") else decay).append(p)
    return decay, no_decay


def create_optimizer(model, name: str, lr: float, weight_decay: float = 0.0, *, exempt_norm_and_bias: bool = True, **kwargs):
    """Build optimizer ``name`` for ``model``.

    By default biases and normalization weights go in a group without weight
    decay. Wrappers (e.g. Lookahead) take ``base="<name>"`` for their inner optimizer.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> opt = zij.create_optimizer(model, "adamw", lr=1e-3, weight_decay=0.01)
        >>> [g["weight_decay"] for g in opt.param_groups]
        [0.01, 0.0]
    """
    entry = get_entry(name)
    if entry.wraps:
        base = create_optimizer(model, kwargs.pop("base", "AdamW"), lr, weight_decay, exempt_norm_and_bias=exempt_norm_and_bias)
        return entry.cls(base, **kwargs)
    if exempt_norm_and_bias:
        decay, no_decay = split_decay(model)
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "weight_decay": weight_decay}]
    return entry.cls(groups, lr=lr, **kwargs)


def public_entries() -> dict[str, OptimizerEntry]:
    """Entries by their exact public name (``zij.<Name>``; aliases and other cases go through load_optimizer)."""
    return {e.name: e for e in entries()}


def catalog() -> list[dict[str, Any]]:
    """Plain-data description of every entry, for the documentation build."""
    return [
        {
            "name": e.name,
            "public": f"zij.{e.name}",
            "path": f"{e.cls.__module__}.{e.cls.__qualname__}",
            "canon_id": e.canon_id,
            "family": e.family,
            "builtin": e.builtin,
            "aliases": list(e.aliases),
        }
        for e in entries()
    ]


if __name__ == "__main__":  # python -m zij._registry: the catalog as JSON
    import json
    import sys

    from zij._registry import catalog as _catalog  # the imported module holds the registrations

    json.dump(_catalog(), sys.stdout)
