"""The ``zij-canon`` command line."""

from __future__ import annotations

import json
import shutil

import yaml

from _helpers import CANON, FIXTURES, small_canon
from zij_canon import load
from zij_canon.cli import main


def test_validate_ok(capsys):
    assert main(["validate", "--canon", str(CANON)]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    n = len(list(CANON.glob("*/*.yaml")))
    assert out == f"{n} records, 11 categories"


def test_validate_reports_every_problem(tmp_path, capsys):
    canon = small_canon(tmp_path / "canon")
    for name in ("bad-spdx", "unknown-venue"):
        broken = yaml.safe_load((FIXTURES / "invalid" / f"{name}.yaml").read_text())
        broken["id"] = name
        (canon / "first-order" / f"{name}.yaml").write_text(yaml.safe_dump(broken))
    assert main(["validate", "--canon", str(canon)]) == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(l.startswith(f"{canon}/first-order/bad-spdx.yaml:") and ": code[0].license: " in l for l in lines)
    assert any(l.startswith(f"{canon}/first-order/unknown-venue.yaml:") and ": venue: unknown venue" in l for l in lines)


def test_new_scaffold_validates_once_filled(tmp_path, capsys):
    canon = small_canon(tmp_path / "canon")
    assert main(["--canon", str(canon), "new", "first-order", "my-method"]) == 0
    path = canon / "first-order" / "my-method.yaml"
    assert main(["validate", "--canon", str(canon)]) == 1, "an unfilled scaffold must not validate"
    data = yaml.safe_load(path.read_text())
    data.update(name="My Method", year=2020, summary="A method made by the scaffold test, filled in by hand.")
    data["paper"] = {"title": "My Paper", "url": "https://arxiv.org/abs/2001.00001", "arxiv": "2001.00001"}
    data["update_rule"]["latex"] = r"\theta_t = \theta_{t-1}"
    path.write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert main(["validate", "--canon", str(canon)]) == 0, capsys.readouterr().out
    assert main(["--canon", str(canon), "new", "first-order", "my-method"]) == 2, "never overwrite a record"
    assert main(["--canon", str(canon), "new", "first-order", "Bad_Id"]) == 2


def test_export_json(capsys):
    assert main(["export", "--format", "json", "--canon", str(CANON)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == len(list(CANON.glob("*/*.yaml")))
    adam = next(r for r in data if r["id"] == "adam")
    assert adam["paper"]["arxiv"] == "1412.6980"
    assert set(adam) >= {"id", "name", "categories", "update_rule", "venue", "year"}


def test_stats(capsys):
    assert main(["stats", "--canon", str(CANON)]) == 0
    out = capsys.readouterr().out
    assert "first-order" in out and "rule sources:" in out
    import re

    whole = re.search(r"whole rules \(paper, code or implementation\): (\d+) of (\d+)", out)
    licensed = re.search(r"checked license .*?: (\d+) of (\d+)", out)
    canon = load(CANON)
    assert int(whole.group(2)) == len(canon.records)
    assert int(whole.group(1)) == sum(r.update_rule.rule_source != "sketch" for r in canon.records)
    assert int(licensed.group(2)) == sum(len(r.code) for r in canon.records) >= int(licensed.group(1))


def test_check_math_names_the_file(tmp_path, capsys):
    canon = small_canon(tmp_path / "canon")
    data = yaml.safe_load((CANON / "first-order" / "adam.yaml").read_text())
    data["id"] = "katex-breaker"
    data["update_rule"]["latex"] = r"\undefinedmacro{x}"
    (canon / "first-order" / "katex-breaker.yaml").write_text(yaml.safe_dump(data))
    assert main(["check-math", "--canon", str(canon)] + ([] if shutil.which("pdflatex") else ["--katex-only"])) == 1
    out = capsys.readouterr().out
    assert f"{canon}/first-order/katex-breaker.yaml:" in out and "update_rule.latex" in out
