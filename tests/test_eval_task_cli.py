"""``taskdistill eval task``: table + JSON on a tiny saved model; exit code 2 on bad input."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from taskdistill.cli import app

ROWS = [
    ("Acme beats quarterly earnings estimates", "Earnings"),
    ("Globex cuts full-year guidance", "Guidance"),
    ("Initech announces share buyback", "Buyback"),
    ("Hooli earnings rise 12%", "Earnings"),
    ("Umbrella raises guidance for 2026", "Guidance"),
    ("Pied Piper expands buyback program", "Buyback"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "task.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in ROWS), encoding="utf-8")
    return path


def invoke(*args):
    return CliRunner().invoke(app, ["eval", "task", *map(str, args)])


def test_eval_task_prints_table_and_writes_json(model_dir, data_file, tmp_path):
    out = tmp_path / "metrics.json"
    result = invoke(model_dir, "--data", data_file, "--batch-size", "4", "--json", out)
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "Brier" in result.output
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 6 and metrics["mode"] == "score" and metrics["labels"] == ["Buyback", "Earnings", "Guidance"]
    assert sum(map(sum, metrics["confusion"])) == 6 and 0 <= metrics["accuracy"] <= 1
    assert metrics["support"] == {"Buyback": 2, "Earnings": 2, "Guidance": 2}


def test_eval_task_generate_mode(model_dir, data_file, tmp_path):
    out = tmp_path / "gen.json"
    result = invoke(model_dir, "--data", data_file, "--mode", "generate", "--max-new-tokens", "4", "--json", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["mode"] == "generate" and metrics["extra"]["max_new_tokens"] == 4
    assert sum(map(sum, metrics["confusion"])) == 6 - metrics["unparseable"]


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda m, d, tmp: [tmp, "--data", d], "not a model"),
        (lambda m, d, tmp: [tmp / "nope", "--data", d], "not a model"),
        (lambda m, d, tmp: [m, "--data", tmp / "missing.csv"], "not found"),
        (lambda m, d, tmp: [m, "--data", d, "--mode", "vote"], "--mode"),
        (lambda m, d, tmp: [m, "--data", d, "--json", tmp], "folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(model_dir, data_file, tmp_path, make_args, message):
    result = invoke(*make_args(model_dir, data_file, tmp_path))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1


def test_help_documents_the_test_split():
    result = CliRunner().invoke(app, ["eval", "task", "--help"])
    assert result.exit_code == 0
    assert "--test-size" in result.output and "stratified" in result.output


def test_test_size_and_limit_pick_a_fixed_subset(model_dir, tmp_path):
    data = tmp_path / "more.csv"
    data.write_text("text,label\n" + "".join(f"{t} {i},{y}\n" for i in range(4) for t, y in ROWS), encoding="utf-8")
    outs = []
    for run in range(2):
        out = tmp_path / f"m{run}.json"
        result = invoke(model_dir, "--data", data, "--test-size", "12", "--limit", "5", "--json", out)
        assert result.exit_code == 0, result.output
        outs.append(json.loads(out.read_text()))
    assert outs[0]["n"] == 5 and outs[0]["test_fingerprint"] == outs[1]["test_fingerprint"]
    assert outs[0]["test_name"].endswith("-test-limit5")
    assert outs[0]["nll"] == outs[1]["nll"]
