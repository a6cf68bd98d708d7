"""Canon records and zij classes agree on hyperparameters.

For every record with a ``zij_class``, each ``hyperparameters[].name`` is an argument of the
class's constructor, and a stated ``default`` equals the constructor's default (a tuple default
compares equal to the record's list). A record may document a paper or official-code
hyperparameter that is not a class argument, or a default that differs from the class's, only
when that hyperparameter's ``note`` says so explicitly, starting with "Not a zij argument:" or
"zij default differs:". Torch's own classes (``zij.AdamW is torch.optim.AdamW``) are included:
their records document torch's signature.
"""

from __future__ import annotations

import inspect

import pytest

import zij
from _helpers import CANON
from zij_canon import load

NOT_AN_ARGUMENT = "Not a zij argument:"
DEFAULT_DIFFERS = "zij default differs:"

_RECORDS = sorted(
    ((entry.record.id, entry.record) for entry in load(CANON).entries.values() if entry.record.zij_class),
    key=lambda item: item[0],
)


def _resolve(path: str):
    """The object a ``zij_class`` string such as ``zij.AdamW`` names."""
    obj = zij
    for part in path.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


def _same(stated, actual) -> bool:
    """Equal as values: a tuple equals the list of its items, booleans never equal numbers."""
    if isinstance(actual, tuple):
        actual = list(actual)
    if isinstance(stated, list) or isinstance(actual, list):
        return (isinstance(stated, list) and isinstance(actual, list) and len(stated) == len(actual)
                and all(_same(s, a) for s, a in zip(stated, actual)))
    if isinstance(stated, bool) or isinstance(actual, bool):
        return isinstance(stated, bool) and isinstance(actual, bool) and stated == actual
    return stated == actual


def test_some_records_name_a_class():
    assert len(_RECORDS) >= 40, "the Canon's records with a zij_class were not found"


@pytest.mark.parametrize("record", [r for _, r in _RECORDS], ids=[i for i, _ in _RECORDS])
def test_record_hyperparameters_match_the_class(record):
    cls = _resolve(record.zij_class)
    parameters = inspect.signature(cls).parameters
    problems = []
    for hp in record.hyperparameters:
        note = (hp.note or "").strip()
        where = f"record {record.id!r} ({record.zij_class}), hyperparameter {hp.name!r}"
        if hp.name not in parameters:
            if not note.startswith(NOT_AN_ARGUMENT):
                problems.append(
                    f"{where}: not an argument of {record.zij_class}({', '.join(parameters)}); rename it to the "
                    f"class's argument, or start its note with {NOT_AN_ARGUMENT!r}"
                )
            continue
        if "default" not in hp.model_fields_set:
            continue
        actual = parameters[hp.name].default
        if actual is inspect.Parameter.empty:
            ok = False
            shown = "no default"
        else:
            ok = _same(hp.default, actual)
            shown = f"default {actual!r}"
        if not ok and not note.startswith(DEFAULT_DIFFERS):
            problems.append(
                f"{where}: the record states default {hp.default!r}, but {record.zij_class} has {shown}; "
                f"state the class's default, or start its note with {DEFAULT_DIFFERS!r}"
            )
    assert not problems, "\n".join(problems)
