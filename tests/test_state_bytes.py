"""State bytes per parameter: ``make bench``'s committed table covers every class, agrees with a
fresh measurement, and the API pages show it."""

from __future__ import annotations

import json
import re

import pytest

import zij
from _helpers import ROOT
from zij.bench.state import COMMITTED, TASK, measure, table
from zij_canon.api import StateTable

FILE = ROOT / COMMITTED
HINT = "the committed table is stale: run `python -m zij.bench.state` (part of `make bench`) and commit it"
# One of each kind of state: two moments, none, 8-bit blocks, factored, low-rank projections,
# Kronecker factors, a wrapper's copy of the weights, a Hessian estimate, routed matrices.
SAMPLE = ("Adam", "SGD", "LOMO", "Adam8bit", "CAME", "SMMF", "GaLoreAdamW", "APOLLO", "Shampoo", "SOAP",
          "SAM", "Lookahead", "Sophia", "MuonWithAuxAdam", "AdamMini")


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(FILE.read_text(encoding="utf-8"))


def test_committed_table_covers_every_registered_class(committed):
    registered = {e.name for e in zij.entries()}
    assert set(committed["classes"]) == registered, HINT
    assert committed["task"] == TASK


def test_known_sizes(committed):
    rows = committed["classes"]
    assert rows["Adam"]["per_param"] == pytest.approx(8.0, abs=1e-3)  # two float32 moments (and a step count)
    assert rows["SGD"]["per_param"] == pytest.approx(4.0, abs=1e-3)  # its momentum buffer (the recipe's momentum)
    assert rows["LOMO"]["per_param"] == 0.0
    assert 1.9 < rows["Adam8bit"]["per_param"] < 2.2  # two bytes and a scale per block
    for name in ("CAME", "SMMF", "GaLoreAdamW", "APOLLO", "AdamMini", "SM3"):  # factored / low-rank / per-block
        assert rows[name]["per_param"] < 8.0, name
    assert rows["SparseAdam"] == {"skipped": "takes sparse gradients only; the tasks' gradients are dense"}


@pytest.mark.parametrize("name", SAMPLE)
def test_committed_figure_equals_a_fresh_measurement(committed, name):
    assert measure(zij.get_entry(name)) == committed["classes"][name], HINT


@pytest.mark.slow
def test_whole_committed_table_equals_a_fresh_measurement(committed):
    assert table() == committed, HINT


def test_state_table_reports_a_missing_or_malformed_file(tmp_path):
    with pytest.raises(ValueError, match="missing; run `make bench`"):
        StateTable.read(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a state-bytes table"):
        StateTable.read(bad)
    bad.write_text(json.dumps({"model": "m", "parameters": 10, "classes": {"Adam": {"bytes": 80}}}))
    with pytest.raises(ValueError, match="row 'Adam' has neither per_param nor skipped"):
        StateTable.read(bad)


def test_figures_escape_and_name_the_source():
    t = StateTable("<b>model</b>", 1000, {"A": {"bytes": 8000, "per_param": 8.0}, "B": {"skipped": "<i>no</i>"}})
    assert t.figure("A") == ("State: 8 bytes per parameter, measured by <code>make bench</code> on a "
                             "1,000-parameter float32 model (&lt;b&gt;model&lt;/b&gt;).")
    assert t.figure("B") == "State: not measured (&lt;i&gt;no&lt;/i&gt;)."
    assert "not measured yet" in t.figure("C")
    assert t.short("A") == "8 B/param" and t.short("C") == "not measured"


def test_api_pages_show_every_class_figure(built_site, committed):
    rows = committed["classes"]
    shown = {}
    for page in (built_site / "api").glob("*/index.html"):
        for name, text in re.findall(r'<p class="zij-state" data-class="zij\.(\w+)">(.*?)</p>', page.read_text("utf-8")):
            shown[name] = text
    own = {e.name for e in zij.entries() if not e.builtin}
    assert set(shown) == own
    assert shown["Adam8bit"].startswith(f"State: {rows['Adam8bit']['per_param']:g} bytes per parameter")
    index = (built_site / "api" / "index.html").read_text("utf-8")
    for e in (e for e in zij.entries() if e.builtin):
        row = re.search(rf'<tr id="zij\.{e.name}">(.*?)</tr>', index, re.S).group(1)
        expected = f"{rows[e.name]['per_param']:g} B/param" if "per_param" in rows[e.name] else "not measured"
        assert f"<td>{expected}</td>" in row, e.name
