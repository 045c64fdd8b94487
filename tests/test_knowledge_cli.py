"""``taskdistill eval knowledge``: table + JSON on a tiny saved model; exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from taskdistill.cli import app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model("llama", seed=7).save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def bench(tmp_path, monkeypatch):
    root = tmp_path / "bench"
    (root / "piqa").mkdir(parents=True)
    (root / "piqa" / "dev.jsonl").write_text("".join(
        json.dumps({"id": str(i), "goal": f"Goal {i}", "sol1": "Use water", "sol2": "Use a towel"}) + "\n"
        for i in range(12)))
    (root / "piqa" / "dev-labels.lst").write_text("".join(f"{i % 2}\n" for i in range(12)))
    monkeypatch.setenv("TASKDISTILL_BENCHMARKS_DIR", str(root))
    return root


def invoke(*args):
    return CliRunner().invoke(app, ["eval", "knowledge", *map(str, args)], env={"COLUMNS": "200"})


def test_table_json_and_retention_from_a_saved_reference(model_dir, bench, tmp_path):
    teacher = tmp_path / "teacher.json"
    result = invoke(model_dir, "--benchmarks", "piqa,probe", "--limit", "8", "--json", teacher)
    assert result.exit_code == 0, result.output
    assert "acc ± stderr" in result.output and "piqa" in result.output and "probe" in result.output
    saved = json.loads(teacher.read_text())
    assert [r["name"] for r in saved["results"]] == ["piqa", "probe"]
    assert all(r["n"] == 8 and r["retention"] is None for r in saved["results"])
    assert saved["results"][0]["chance"] == 0.5 and saved["results"][1]["chance"] == 0.25

    reference = tmp_path / "ref.json"
    reference.write_text(json.dumps({"piqa": 1.0}))
    out = tmp_path / "student.json"
    result = invoke(model_dir, "-b", "piqa", "--limit", "8", "--reference", reference, "--json", out)
    assert result.exit_code == 0, result.output
    assert "piqa: cached" in result.output  # same weights, same subset: no second evaluation
    (piqa,) = json.loads(out.read_text())["results"]
    assert piqa["acc"] == saved["results"][0]["acc"]
    assert piqa["retention"] == pytest.approx((piqa["acc"] - 0.5) / 0.5)
    assert "aggregate retention" in result.output

    again = tmp_path / "again.json"  # a saved report works as a reference too
    result = invoke(model_dir, "-b", "piqa,probe", "--limit", "8", "--reference", teacher, "--json", again)
    assert result.exit_code == 0, result.output
    for row in json.loads(again.read_text())["results"]:  # the teacher retains all of itself (if above chance)
        assert row["reference"] == row["acc"]
        assert row["retention"] == (pytest.approx(1.0) if row["acc"] > row["chance"] else None)


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda m, b, t: [m, "-b", "arc_esay"], "Did you mean 'arc_easy'"),
        (lambda m, b, t: [m, "-b", "hellaswag"], "missing hellaswag/hellaswag_val.jsonl"),
        (lambda m, b, t: [m, "-b", "piqa", "--limit", "13"], "limit 13 is larger than benchmark 'piqa' (12 items)"),
        (lambda m, b, t: [m, "-b", f"jsonl:{b / 'piqa' / 'dev.jsonl'}"], "dev.jsonl:1: malformed row"),
        (lambda m, b, t: [m, "-b", "piqa", "--reference", t / "none.json"], "cannot read reference"),
        (lambda m, b, t: [m, "-b", "piqa", "--json", t], "is a folder"),
        (lambda m, b, t: [t / "nope", "-b", "piqa", "--limit", "5"], "not a model"),
    ],
)
def test_bad_input_exits_2_with_one_line(model_dir, bench, tmp_path, make_args, message):
    result = invoke(*make_args(model_dir, bench, tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_malformed_labels_line_is_named(model_dir, bench):
    (bench / "piqa" / "dev-labels.lst").write_text("0\n1\nx\n" + "0\n" * 9)
    result = invoke(model_dir, "-b", "piqa")
    assert result.exit_code == 2 and "dev-labels.lst:3: malformed row" in result.output


def test_help_names_every_benchmark():
    result = CliRunner().invoke(app, ["eval", "knowledge", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("probe", "arc_easy", "hellaswag", "piqa", "mmlu_cloze", "mmlu_pro", "triviaqa", "jsonl:PATH"):
        assert name in result.output
