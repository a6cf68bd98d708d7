"""``make bench`` machinery: both parameter sets measured and written (figures are the bench's, not asserted)."""

import json

from zij import _bench


def test_bench_writes_both_sets(tmp_path):
    assert _bench.main(["--repeats", "1", "--rounds", "1", "--only", "lion", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["baseline"] == "torch.optim.AdamW(foreach=True)" and set(result["sets"]) == {"large", "small"}
    (row,) = result["rows"]
    assert row["name"] == "Lion"
    for name in ("large", "small"):
        assert row[name]["ratio"] > 0 and row[name]["state_bytes_per_param"] == 4.0  # one float32 moment
    assert "| Lion |" in (tmp_path / "results.md").read_text()


def test_bench_covers_zij_elementwise_classes_only():
    names = {e.name for e in _bench.benchmarked()}
    assert {"Lion", "AdamWAdv", "CautiousAdamW"} <= names
    assert "AdamW" not in names and "Lookahead" not in names


def test_bench_times_the_compiled_step_where_a_class_has_one(tmp_path):
    args = ["--repeats", "1", "--rounds", "1", "--out", str(tmp_path), "--compiled"]
    assert _bench.main([*args, "--only", "lion"]) == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert row["large compiled"]["ratio"] > 0 and row["small compiled"]["ratio"] > 0
    assert "small compiled: median" in (tmp_path / "results.md").read_text()
    reference = json.loads((tmp_path / "results.json").read_text())["reference"]
    assert reference["name"] == "torch.optim.AdamW(fused=True)" and reference["large"] > 0 and reference["small"] > 0
    assert "reference, torch.optim.AdamW(fused=True)" in (tmp_path / "results.md").read_text()
    assert _bench.main([*args, "--only", "adan"]) == 0  # no compiled step: the eager columns only
    (row,) = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert set(row) == {"name", "large", "small"}


def test_bench_steps_every_class_as_a_user_would():
    """Every benchmarked class is built from its recipe's rate and required arguments (Ranger21's num_iterations,
    no rate for AliG) and stepped, with a fixed loss for the rules that read it, on a tiny parameter set."""
    for entry in _bench.benchmarked():
        row = _bench.measure(entry, [(3, 3), (3,)], repeats=1, rounds=1)
        assert row["ratio"] > 0, entry.name
    assert "num_iterations" in _bench.user_arguments(next(e for e in _bench.benchmarked() if e.name == "Ranger21"))
    assert "lr" not in _bench.user_arguments(next(e for e in _bench.benchmarked() if e.name == "AliG"))
