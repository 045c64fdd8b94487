"""``taskdistill distill`` and ``taskdistill traces``: outputs, exit code 2 on bad input, help."""

from __future__ import annotations

import json

import pytest
from distill_helpers import sharp_teacher, task_data
from tiny import tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from taskdistill.cli import app


@pytest.fixture
def folder(tmp_path):
    tiny_model(seed=0).save_pretrained(tmp_path / "student")
    sharp_teacher(tiny_model).save_pretrained(tmp_path / "teacher")
    for name in ("student", "teacher"):
        tiny_tokenizer().save_pretrained(tmp_path / name)
    rows = [{"id": e.id, "text": e.text, "label": e.label} for e in task_data().examples]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "traces.jsonl").write_text(
        "".join(json.dumps({"id": e.id, "cot": e.cot}) + "\n" for e in task_data().examples))
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def test_distill_label_then_blended_with_imported_traces(folder):
    common = ["--teacher", folder / "teacher", "--student", folder / "student", "--data", folder / "data.jsonl",
              "--max-steps", 2, "--batch-size", 4, "--lr", 1e-2]
    result = invoke("distill", *common, "--out", folder / "a")
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "a" / "report.json").read_text())
    assert report["steps"] == 2 and report["config"]["supervision"] == "label"
    assert (folder / "a" / "model" / "model.safetensors").is_file()
    assert len((folder / "a" / "metrics.jsonl").read_text().splitlines()) == 2
    result = invoke("distill", *common, "--supervision", "blended", "--lambda", 0.3, "--method", "lora",
                    "--traces", folder / "traces.jsonl", "--dataset-size", 6, "--out", folder / "b")
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "b" / "report.json").read_text())
    assert report["config"]["lam"] == 0.3 and report["sequences"]["used"] == 6
    assert report["history"][0]["kl_trace"] > 0 and report["history"][0]["ce_label"] > 0


@pytest.mark.parametrize("extra, message", [
    (["--supervision", "cot-kl"], "Did you mean 'cot_kl'"),
    (["--method", "lora", "--lora-targets", "qkv"], "match no linear layer"),
    (["--kl", "sideways"], "unknown KL kind"),
    (["--temperature", "0"], "temperature"),
])
def test_bad_input_exits_2_and_writes_nothing(folder, extra, message):
    result = invoke("distill", "--teacher", folder / "teacher", "--student", folder / "student", "--data",
                    folder / "data.jsonl", "--max-steps", 1, "--out", folder / "out", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (folder / "out" / "model").exists()


def test_traces_import_and_missing_teacher(folder):
    out = folder / "t.jsonl"
    result = invoke("traces", "--data", folder / "data.jsonl", "--import", folder / "traces.jsonl", "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["cot"] == task_data().examples[0].cot
    result = invoke("traces", "--data", folder / "data.jsonl", "--out", folder / "u.jsonl")
    assert result.exit_code == 2 and "--teacher" in result.output


def test_help_lists_the_options():
    result = invoke("distill", "--help")
    assert result.exit_code == 0
    for flag in ("--supervision", "--method", "--dataset-size", "--lambda", "--temperature", "--kl"):
        assert flag in result.output
    assert "--import" in invoke("traces", "--help").output
