"""``taskdistill data synth|inspect|split`` through the root app: outputs, round trips, exit code 2."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from typer.testing import CliRunner

from taskdistill.cli import app
from taskdistill.data import synthetic
from taskdistill.data.cli import summarize
from taskdistill.data.load import load_task_data
from taskdistill.data.splits import make_split, nested_subsets


def invoke(*args):
    return CliRunner().invoke(app, ["data", *map(str, args)])


def test_synth_writes_the_generator_output(tmp_path):
    out = tmp_path / "syn.jsonl"
    result = invoke("synth", "--n", 70, "--seed", 3, "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    expected = synthetic.generate(70, seed=3)
    assert rows == [{"id": e.id, "text": e.text, "label": e.label} for e in expected.examples]
    assert load_task_data(out).examples == expected.examples


def test_synth_coarse(tmp_path):
    out = tmp_path / "coarse.jsonl"
    assert invoke("synth", "--n", 26, "--granularity", "coarse", "--out", out).exit_code == 0
    assert len(load_task_data(out).labels) == 13


def test_inspect_shows_counts_and_examples(tmp_path):
    result = invoke("inspect", "synthetic:n=70,seed=1", "--examples", 2)
    assert result.exit_code == 0, result.output
    assert "70" in result.output and "35" in result.output and "per-class counts" in result.output
    assert "Earnings Beat" in result.output and "synthetic-1-0" in result.output


def test_summarize_numbers():
    data = synthetic.generate(35, seed=0)
    data = data.subset(data.examples[:3] + [data.examples[0]])  # 4 rows, one duplicated text
    s = summarize(data)
    words = sorted(len(e.text.split()) for e in data.examples)
    assert s["rows"] == 4 and s["classes"] == 35 and sum(s["counts"].values()) == 4
    assert s["duplicate_texts"] == 1 and s["words"]["min"] == words[0] and s["words"]["max"] == words[-1]
    assert s["words"]["median"] == (words[1] + words[2]) / 2 and s["words"]["mean"] == sum(words) / 4


def test_split_writes_files_that_match_the_library(tmp_path):
    source = tmp_path / "syn.jsonl"
    assert invoke("synth", "--n", 350, "--out", source).exit_code == 0
    out = tmp_path / "split"
    result = invoke("split", source, "--test-size", 70, "--sizes", "35,140", "--seed", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "test.jsonl", "train_140.jsonl",
                                                      "train_35.jsonl", "train_pool.jsonl"]
    split = make_split(load_task_data(source), 70, seed=2)
    subsets = nested_subsets(split.train_pool, [35, 140], seed=2)
    assert load_task_data(out / "test.jsonl").examples == split.test.examples
    d35 = load_task_data(out / "train_35.jsonl")
    assert d35.examples == subsets[35].examples and d35.labels == synthetic.FINE_LABELS
    assert set(Counter(e.label for e in d35.examples).values()) == {1}
    d140 = load_task_data(out / "train_140.jsonl")
    assert {e.id for e in d35.examples} <= {e.id for e in d140.examples}


def test_split_replaces_an_older_split_and_keeps_foreign_folders_safe(tmp_path):
    out = tmp_path / "split"
    assert invoke("split", "synthetic:n=140", "--test-size", 35, "--sizes", "35,70", "--out", out).exit_code == 0
    assert invoke("split", "synthetic:n=140", "--test-size", 35, "--sizes", "35", "--seed", 1, "--out", out).exit_code == 0
    assert not (out / "train_70.jsonl").exists()  # no stale subset of the older split survives
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    result = invoke("split", "synthetic:n=140", "--test-size", 35, "--out", other)
    assert result.exit_code == 2 and "holds other files (notes.txt)" in result.output
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda tmp: ["inspect", tmp / "missing.csv"], "data file not found"),
        (lambda tmp: ["inspect", _file(tmp / "x.txt", b"abc")], "unknown data format '.txt'"),
        (lambda tmp: ["inspect", _file(tmp / "b.csv", b"text,label\n\xff,A\n")], "b.csv line 2: byte 0xff"),
        (lambda tmp: ["inspect", _file(tmp / "c.csv", b"body,kind\na,B\n"), "--text-col", "body"],
         "no label column found in c.csv; columns found: body, kind"),
        (lambda tmp: ["inspect", _file(tmp / "d.csv", b"id,text,label\n1,a,A\n1,b,B\n")], "id '1' duplicates"),
        (lambda tmp: ["synth", "--out", tmp / "s.csv"], "--out must be a .jsonl file"),
        (lambda tmp: ["synth", "--granularity", "medium", "--out", tmp / "s.jsonl"], "unknown granularity"),
        (lambda tmp: ["split", "synthetic:n=70", "--test-size", 70, "--out", tmp / "o"], "leaves no training data"),
        (lambda tmp: ["split", "synthetic:n=70", "--test-size", 10, "--sizes", "100", "--out", tmp / "o"],
         "dataset size 100 is larger than the training pool (60 examples)"),
        (lambda tmp: ["split", "synthetic:n=70", "--test-size", 10, "--sizes", "10,x", "--out", tmp / "o"],
         "--sizes must be comma-separated integers"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    result = invoke(*args(tmp_path))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob("s.*"))


def test_every_verb_has_help():
    for verb in ("synth", "inspect", "split"):
        result = invoke(verb, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
    assert "synth" in invoke("--help").output


def _file(path, data: bytes):
    path.write_bytes(data)
    return path
