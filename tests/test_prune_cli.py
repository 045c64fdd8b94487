"""``taskdistill prune``: outputs, the table, and bad input that writes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import CORPUS, tiny_model, tiny_tokenizer
from typer.testing import CliRunner

from taskdistill.cli import app


@pytest.fixture
def folder(tmp_path):
    model = tiny_model("llama", num_hidden_layers=6)
    model.save_pretrained(tmp_path / "model")
    tiny_tokenizer().save_pretrained(tmp_path / "model")
    (tmp_path / "calib.txt").write_text("\n".join(CORPUS))
    return tmp_path


def invoke(*args):
    return CliRunner().invoke(app, ["prune", *map(str, args)])


def test_one_shot(folder):
    out = folder / "out"
    result = invoke(folder / "model", "--keep", 0.6, "--axes", "mixed", "--calib", folder / "calib.txt", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "prune_report.json").read_text())
    assert report["fraction_total"] == pytest.approx(0.6, rel=0.01)
    assert "0.60" in result.output and f"{report['params_after']:,}" in result.output
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == report["after"]["num_hidden_layers"]


def test_schedule_writes_one_folder_per_step(folder):
    out = folder / "out"
    result = invoke(folder / "model", "--schedule", "0.8,0.5", "--calib", folder / "calib.txt", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["step1-keep0.8", "step2-keep0.5"]
    second = json.loads((out / "step2-keep0.5" / "prune_report.json").read_text())
    assert second["fraction_total"] == pytest.approx(0.5, rel=0.01)
    assert second["params_before"] == json.loads((out / "step1-keep0.8" / "prune_report.json").read_text())["params_after"]


@pytest.mark.parametrize("extra, message", [
    (["--keep", "1.5"], r"outside \(0, 1\]"),
    (["--keep", "0"], r"outside \(0, 1\]"),
    (["--keep", "0.5", "--schedule", "paper"], "exactly one of"),
    (["--keep", "0.5", "--axes", "sideways"], "unknown --axes"),
    (["--keep", "0.5", "--calib", "EMPTY"], "calibration set .* is empty"),
])
def test_bad_input_writes_nothing(folder, extra, message):
    (folder / "empty.txt").write_text("\n  \n")
    calib = [] if "--calib" in extra else ["--calib", folder / "calib.txt"]
    args = [a.replace("EMPTY", str(folder / "empty.txt")) for a in extra]
    result = invoke(folder / "model", *calib, *args, "--out", folder / "out")
    assert result.exit_code == 2
    assert re.search(message, result.output)
    assert not (folder / "out").exists()


def test_non_empty_output_folder_and_unsupported_architecture(folder):
    (folder / "out").mkdir()
    (folder / "out" / "keep.txt").write_text("mine")
    result = invoke(folder / "model", "--keep", 0.5, "--calib", folder / "calib.txt", "--out", folder / "out")
    assert result.exit_code == 2 and "exists and is not empty" in result.output
    assert [p.name for p in (folder / "out").iterdir()] == ["keep.txt"]
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=400, bos_token_id=0, eos_token_id=0)).save_pretrained(folder / "gpt2")
    tiny_tokenizer().save_pretrained(folder / "gpt2")
    done = subprocess.run([str(Path(sys.executable).parent / "taskdistill"), "prune", str(folder / "gpt2"), "--keep", "0.5",
                           "--calib", str(folder / "calib.txt"), "--out", str(folder / "new")],
                          check=False, capture_output=True, text=True)
    assert done.returncode == 2
    assert "unsupported architecture 'gpt2'" in done.stderr and "supported: llama" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: unsupported architecture")
    assert not (folder / "new").exists()
