"""The "Use it" snippets of method pages run: each constructs its record's zij class on a small model,
with only constructor arguments, and the site shows exactly that snippet."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch

import zij
from _helpers import CANON
from test_site_features import use_it_code
from zij._registry import catalog, entries
from zij_canon import load
from zij_canon.render import method_url
from zij_canon.signatures import with_arguments
from zij_canon.usage import snippet

SIGNATURES = {item["public"]: (tuple(item["arguments"]), tuple(item["required"]))
              for item in with_arguments(catalog(), {e.name: e.cls for e in entries()})}
RECORDS = sorted((e.record for e in load(CANON).entries.values() if e.record.zij_class), key=lambda r: r.id)


def _class(path: str):
    obj = zij
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("record", RECORDS, ids=[r.id for r in RECORDS])
def test_snippet_constructs_the_class(record):
    source = snippet(record, *SIGNATURES[record.zij_class])
    parameters = inspect.signature(_class(record.zij_class)).parameters
    call = source[source.index(f"{record.zij_class}("):]
    names = [line.split("=")[0].strip(" ,(") for line in call.replace(", ", ",\n").splitlines() if "=" in line]
    assert set(names) <= set(parameters), f"not constructor arguments: {set(names) - set(parameters)}"
    placeholders = {n for n in names if f"{n}=..." in source}
    assert placeholders == {n for n in list(parameters)[1:] if parameters[n].default is inspect.Parameter.empty
                            and not any(h.name == n and h.default is not None for h in record.hyperparameters)}
    if placeholders:
        return  # the reader fills in what the record gives no default for
    namespace = {"model": torch.nn.Linear(3, 2, bias=False)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(source, namespace)  # noqa: S102 - our own generated snippet
    assert isinstance(namespace["optimizer"], _class(record.zij_class))


def test_pages_show_the_snippets(built_site):
    for record in RECORDS:
        page = (built_site / method_url(record) / "index.html").read_text(encoding="utf-8")
        assert use_it_code(page) == snippet(record, *SIGNATURES[record.zij_class])
