"""Every named invalid fixture fails validation with its file, line and field.

Each file in fixtures/invalid/ breaks one thing in fixtures/valid-base.yaml and
says in its first line what the validator must report:
``# expect: field=F | contains=TEXT | line=N [| file=FOLDER/STEM]``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from _helpers import FIXTURES, small_canon
from zij_canon import CanonError, load

INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expectation(path: Path) -> dict[str, str]:
    header = path.read_text().splitlines()[0].removeprefix("# expect:")
    return dict(part.strip().split("=", 1) for part in header.split("|"))


def test_enough_fixtures():
    assert len(INVALID) >= 25


def test_base_fixture_validates(tmp_path):
    canon = small_canon(tmp_path / "canon")
    shutil.copy(FIXTURES / "valid-base.yaml", canon / "first-order" / "fixture-method.yaml")
    assert "fixture-method" in load(canon).entries


@pytest.mark.parametrize("fixture", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture(tmp_path, fixture):
    expect = expectation(fixture)
    canon = small_canon(tmp_path / "canon")
    dest = canon / (expect.get("file", "first-order/fixture-method") + ".yaml")
    if "/" not in expect.get("file", "/"):
        dest = canon / "second-order" / (expect["file"] + ".yaml")
    shutil.copy(fixture, dest)
    with pytest.raises(CanonError) as info:
        load(canon)
    ours = [p for p in info.value.problems if p.path == str(dest)]
    assert ours, f"no problem reported for {dest}: {info.value}"
    matching = [p for p in ours if p.field == expect["field"] and expect["contains"] in p.message]
    assert matching, f"expected {expect} in:\n" + "\n".join(map(str, ours))
    assert matching[0].line == int(expect["line"]), str(matching[0])
    rendered = str(matching[0])
    assert rendered.startswith(f"{dest}:{expect['line']}: {expect['field']}: ")
