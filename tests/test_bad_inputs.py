"""The bad-input table (issue #14): every case below ends with exit code 2, exactly one ``error:`` line (the
last line), no traceback, and the test's file tree unchanged (names, sizes and modification times of every
file under the shared folder, before and after).

The cache home (``$TASKDISTILL_HOME``, a fresh folder per test, outside the snapshot) may gain harmless
entries: file-hash and fingerprint memos of the inputs that were read (``file-hashes/``,
``fingerprints/``). Nothing is written that changes what a later run computes.

Read-only places: tests run as root here, and root ignores permission bits, so the read-only cases run in
a child process with a private mount namespace (``unshare --mount``) in which the folder ``ro/`` is
bind-mounted read-only: writes fail with EROFS for root too, and the mount vanishes with the child. Without
root, ``chmod 0o555`` makes the folder read-only instead.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

DISTILL = ["distill", "--teacher", "{w}/model", "--student", "{w}/model", "--data", "{w}/data.jsonl",
           "--max-steps", "4", "--batch-size", "4", "--bf16", "false"]
SPEC = "{w}/spec.yaml"

# (case, command line with {w} for the shared folder, a part of the one error line)
CASES = [
    # truncated or corrupt checkpoints, before anything is loaded or written
    ("truncated-eval-task", ["eval", "task", "{w}/trunc", "--data", "{w}/data.jsonl"],
     "trunc/model.safetensors is truncated or corrupt"),
    ("truncated-prune", ["prune", "{w}/trunc", "--keep", "0.5", "--calib", "{w}/calib.txt", "--out", "{w}/out"],
     "trunc/model.safetensors is truncated or corrupt"),
    ("truncated-distill-teacher", [*DISTILL[:2], "{w}/trunc", *DISTILL[3:], "--out", "{w}/out"],
     "trunc/model.safetensors is truncated or corrupt"),
    ("truncated-distill-student", [*DISTILL[:4], "{w}/trunc", *DISTILL[5:], "--out", "{w}/out"],
     "trunc/model.safetensors is truncated or corrupt"),
    ("truncated-study-teacher", ["study", "run", "{w}/spec-trunc.yaml", "--dir", "{w}/new-study"],
     "trunc/model.safetensors is truncated or corrupt"),
    ("truncated-gguf", ["eval", "task", "{w}/trunc.gguf", "--data", "{w}/data.jsonl"], "trunc.gguf is truncated"),
    # architectures that are not causal LMs
    ("bert-eval-task", ["eval", "task", "{w}/bert", "--data", "{w}/data.jsonl"],
     "is a bert model (BertModel), an encoder that attends both ways, not a causal language model"),
    ("bert-prune", ["prune", "{w}/bert", "--keep", "0.5", "--calib", "{w}/calib.txt", "--out", "{w}/out"],
     "not a causal language model"),
    # a 5 MB single text row: cut to 512 tokens, which with the prompt is still past this model's 512 positions
    ("long-row-eval-task", ["eval", "task", "{w}/model", "--data", "{w}/big.jsonl"],
     "more than the model's context of 512"),
    # study folders
    ("study-dir-is-a-file", ["study", "run", SPEC, "--dir", "{w}/a-file"], "is a file, not a folder"),
    ("study-dir-under-a-file", ["study", "run", SPEC, "--dir", "{w}/a-file/study"], "which is a file"),
    # runs that diverge: no model, no checkpoint, no output folder
    ("distill-lr-1e6", [*DISTILL, "--lr", "1e6", "--checkpoint-every", "1", "--out", "{w}/out"],
     "training diverged at step 2"),
    ("distill-lr-1e30", [*DISTILL, "--lr", "1e30", "--checkpoint-every", "1", "--out", "{w}/out"],
     "training diverged at step 2"),
    ("distill-lr-beyond-float32", [*DISTILL, "--lr", "1e39", "--out", "{w}/out"], "invalid distillation setting lr"),
    ("distill-out-holds-other-files", [*DISTILL, "--out", "{w}/mine"], "holds other files (notes.txt)"),
    ("distill-out-holds-a-finished-run", [*DISTILL, "--out", "{w}/finished"], "already holds a finished"),
    # values that make no sense
    ("prune-calib-size-0", ["prune", "{w}/model", "--keep", "0.5", "--calib", "{w}/calib.txt", "--calib-size", "0",
                            "--out", "{w}/out"], "--calib-size must be ≥ 1"),
    ("split-one-class", ["data", "split", "{w}/one.csv", "--test-size", "5", "--out", "{w}/out"], "single class"),
    ("eval-task-one-class", ["eval", "task", "{w}/model", "--data", "{w}/one.csv"], "single class"),
    ("distill-one-class", [*DISTILL[:6], "{w}/one.csv", *DISTILL[7:], "--out", "{w}/out"], "single class"),
    ("study-one-class", ["study", "run", "{w}/spec-one.yaml", "--dir", "{w}/new-study"], "single class"),
    ("laws-bootstrap-negative", ["laws", "fit", "{w}/obs.json", "--bootstrap", "-5"], "--bootstrap must be ≥ 0"),
    ("recommend-retention-below--1", ["recommend", "{w}/obs.json", "--min-macro-f1", "0.8", "--min-gk-retention",
                                      "-2"], "--min-gk-retention must be in [-1, 1]"),
    ("recommend-retention-above-1", ["recommend", "{w}/obs.json", "--min-macro-f1", "0.8", "--min-gk-retention",
                                     "1.5"], "--min-gk-retention must be in [-1, 1]"),
    # files
    ("nul-byte-inspect", ["data", "inspect", "{w}/nul.csv"], "nul.csv line 2: NUL byte"),
    ("nul-byte-eval-task", ["eval", "task", "{w}/model", "--data", "{w}/nul.csv"], "nul.csv line 2: NUL byte"),
    ("flat-file-repeated-ids", ["data", "inspect", "{w}/flat.csv"], "or pass --no-id-col to number the rows"),
    ("no-id-col-with-id-col", ["data", "inspect", "{w}/flat.csv", "--no-id-col", "--id-col", "id"],
     "pass one of them"),
    # already handled before the issue, kept here so they stay so
    ("missing-data-file", ["data", "inspect", "{w}/missing.csv"], "data file not found"),
    ("prune-keep-1.5", ["prune", "{w}/model", "--keep", "1.5", "--out", "{w}/out"], "outside (0, 1]"),
    ("distill-unknown-supervision", [*DISTILL, "--supervision", "cot-kl", "--out", "{w}/out"], "Did you mean 'cot_kl'"),
    ("eval-task-unknown-mode", ["eval", "task", "{w}/model", "--data", "{w}/data.jsonl", "--mode", "guess"],
     "unknown --mode"),
    ("eval-task-json-is-a-folder", ["eval", "task", "{w}/model", "--data", "{w}/data.jsonl", "--json", "{w}/mine"],
     "is a folder"),
    ("eval-knowledge-unknown", ["eval", "knowledge", "{w}/model", "-b", "arc_eazy"], "unknown benchmark"),
    ("report-not-a-study", ["report", "{w}/mine"], "not a study folder"),
    ("study-unknown-key", ["study", "run", "{w}/spec-typo.yaml", "--dir", "{w}/new-study"], "unknown key"),
    ("split-out-holds-other-files", ["data", "split", "synthetic:n=70", "--test-size", "10", "--out", "{w}/mine"],
     "holds other files"),
    ("model-not-a-model", ["eval", "task", "{w}/mine", "--data", "{w}/data.jsonl"], "is not a model"),
    # command-line usage errors are one line too
    ("usage-out-of-range", ["eval", "task", "{w}/model", "--data", "{w}/data.jsonl", "--limit", "0"],
     "Invalid value for '--limit'"),
    ("usage-missing-option", ["eval", "task", "{w}/model"], "Missing option '--data'"),
    ("usage-unknown-option", ["prune", "{w}/model", "--kep", "0.5"], "No such option"),
]

# Destinations in a read-only folder: refused before any work, by a probe write that stops root too.
RO = "{w}/ro"
READ_ONLY_CASES = [
    ("ro-study-to-create", ["study", "run", SPEC, "--dir", f"{RO}/new-study"], "ro is not writable"),
    ("ro-study-existing", ["study", "run", SPEC, "--dir", f"{RO}/study"], "ro/study is not writable"),
    ("ro-study-resume", ["study", "resume", f"{RO}/study"], "ro/study is not writable"),
    ("ro-report-out", ["report", f"{RO}/study", "-o", f"{RO}/page.html"], "-o "),
    ("ro-report-default-out", ["report", f"{RO}/study"], "ro/study is not writable"),
    ("ro-prune-out", ["prune", "{w}/model", "--keep", "0.5", "--calib", "{w}/calib.txt", "--out", f"{RO}/pruned"],
     "--out"),
    ("ro-eval-knowledge-json", ["eval", "knowledge", "{w}/model", "-b", "probe", "--json", f"{RO}/k.json"], "--json"),
    ("ro-eval-task-json", ["eval", "task", "{w}/model", "--data", "{w}/data.jsonl", "--json", f"{RO}/m.json"],
     "--json"),
    ("ro-distill-out", [*DISTILL, "--out", f"{RO}/student"], "--out"),
    ("ro-data-split-out", ["data", "split", "synthetic:n=70", "--test-size", "10", "--out", f"{RO}/split"], "--out"),
    ("ro-data-synth-out", ["data", "synth", "--n", "10", "--out", f"{RO}/s.jsonl"], "--out"),
    ("ro-traces-out", ["traces", "--data", "{w}/data.jsonl", "--import", "{w}/traces.jsonl", "--out",
                       f"{RO}/t.jsonl"], "--out"),
    ("ro-study-export-out", ["study", "export", f"{RO}/study", "--out", f"{RO}/export"], "--out"),
    ("ro-laws-json", ["laws", "fit", "{w}/obs.json", "--bootstrap", "0", "--json", f"{RO}/fit.json"], "--json"),
]
# Reading a study from a read-only folder works (the store is opened read-only); the output goes elsewhere.
READ_ONLY_READERS = [
    ("ro-report-elsewhere", ["report", f"{RO}/study", "-o", "{elsewhere}/page.html", "--no-laws", "--bootstrap",
                             "0"]),
    ("ro-study-status", ["study", "status", f"{RO}/study", "--once"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Everything the cases read: models (sound, truncated, BERT), data files, specs, a study store."""
    from distill_helpers import task_data
    from test_reliability import FLAT
    from test_report import make_store
    from test_report_data import study_rows
    from test_study_run import tiny_spec, tiny_teacher
    from tiny import CORPUS, tiny_tokenizer

    from taskdistill.laws.synthetic import rows_from_law

    w = tmp_path_factory.mktemp("world")
    tiny_teacher(w).rename(w / "model")  # the tiny Llama of the study tests (512 positions), saved by save_model
    shutil.copytree(w / "model", w / "trunc")
    weights = (w / "trunc" / "model.safetensors").read_bytes()
    (w / "trunc" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    from transformers import BertConfig, BertModel

    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         vocab_size=len(tiny_tokenizer()))).save_pretrained(w / "bert")
    tiny_tokenizer().save_pretrained(w / "bert")
    (w / "trunc.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")  # the magic and a version, then nothing
    rows = [{"id": e.id, "text": e.text, "label": e.label} for e in task_data().examples]
    (w / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (w / "traces.jsonl").write_text("".join(json.dumps({"id": e.id, "cot": e.cot}) + "\n" for e in task_data().examples))
    (w / "calib.txt").write_text("\n".join(CORPUS))
    (w / "one.csv").write_text("text,label\n" + "".join(f"Acme headline number {i},Earnings\n" for i in range(40)))
    (w / "nul.csv").write_text("text,label\nAcme beats\x00 estimates,Earnings\nGlobex cuts guidance,Guidance\n")
    (w / "big.jsonl").write_text(json.dumps({"text": "Acme beats estimates " * 250_000, "label": "Earnings"}) + "\n"
                                 + json.dumps({"text": "Globex cuts guidance", "label": "Guidance"}) + "\n")
    (w / "flat.csv").write_text(FLAT)
    (w / "a-file").write_text("not a folder")
    (w / "mine").mkdir()
    (w / "mine" / "notes.txt").write_text("keep me")
    (w / "finished" / "model").mkdir(parents=True)
    (w / "finished" / "report.json").write_text("{}")
    (w / "obs.json").write_text(json.dumps(rows_from_law("a1", {"a": 0.05, "alpha": 1.5}, metric="task_macro_f1",
                                                         kappas=(0.9, 0.7, 0.5, 0.3, 0.2), rng=0)))
    spec = tiny_spec(w / "model")
    (w / "spec.yaml").write_text(yaml.safe_dump(spec))
    (w / "spec-trunc.yaml").write_text(yaml.safe_dump({**spec, "teacher": str(w / "trunc")}))
    (w / "spec-one.yaml").write_text(yaml.safe_dump(
        {**spec, "task": {"source": str(w / "one.csv"), "test_size": 10, "calibration_size": 4}}))
    (w / "spec-typo.yaml").write_text(yaml.safe_dump({**spec, "task": {**spec["task"], "sorce": "x"}}))
    study = w / "ro" / "study"
    study.mkdir(parents=True)
    make_store(study, study_rows(supervisions=("label",), schedules=("iterative",), dataset_sizes=(500,),
                                 seeds=(0,), metrics=("task_macro_f1", "gk_aggregate")))
    (study / "spec.yaml").write_text(yaml.safe_dump(spec))
    return w


def snapshot(root: Path) -> dict:
    """Every path under ``root``: files with size and modification time, folders by name."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns) if path.is_file() else "folder"
    return out


def check_one_error_line(code: int, output: str, exception, message: str) -> None:
    assert code == 2, output
    assert exception is None, exception  # nothing escaped but the exit
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    assert message in errors[0], errors[0]


def fill(args: list[str], w: Path, **extra) -> list[str]:
    return [a.format(w=w, **extra) for a in args]


@pytest.mark.parametrize("case, args, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(world, case, args, message):
    from taskdistill.cli import app

    before = snapshot(world)
    result = CliRunner().invoke(app, fill(args, world))
    escaped = None if isinstance(result.exception, (SystemExit, type(None))) else result.exception
    check_one_error_line(result.exit_code, result.output, escaped, message)
    assert snapshot(world) == before


RUNNER = """import json, sys
from typer.testing import CliRunner
from taskdistill.cli import app
results = {}
for name, args in json.loads(sys.argv[1]).items():
    r = CliRunner().invoke(app, args)
    escaped = None if isinstance(r.exception, (SystemExit, type(None))) else repr(r.exception)
    results[name] = {"code": r.exit_code, "output": r.output, "exception": escaped}
with open(sys.argv[2], "w") as fh:
    json.dump(results, fh)
"""
MOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'


@pytest.fixture(scope="module")
def read_only_results(world, tmp_path_factory):
    """Run every read-only case in one child process that sees ``ro/`` read-only; their results by name."""
    scratch = tmp_path_factory.mktemp("ro-run")
    cases = {name: fill(args, world, elsewhere=scratch) for name, args, *_ in READ_ONLY_CASES + READ_ONLY_READERS}
    command = [sys.executable, "-c", RUNNER, json.dumps(cases), str(scratch / "results.json")]
    env = dict(os.environ, TASKDISTILL_HOME=str(scratch / "home"), COLUMNS="200")
    before = snapshot(world)
    ro = world / "ro"
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in [ro, *ro.rglob("*")]}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
    else:
        if shutil.which("unshare") is None:
            pytest.skip("running as root without `unshare`: no way to make a folder read-only for root here")
        proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_READ_ONLY,
                               str(ro), *command], env=env, capture_output=True, text=True, check=False)
        if not (scratch / "results.json").is_file() and ("mount" in proc.stderr or "unshare" in proc.stderr):
            pytest.skip(f"cannot bind-mount a read-only folder here: {proc.stderr.strip()[:200]}")
    assert (scratch / "results.json").is_file(), proc.stderr
    assert snapshot(world) == before  # nothing written anywhere in the shared folder
    return json.loads((scratch / "results.json").read_text()), scratch


@pytest.mark.parametrize("case, args, message", READ_ONLY_CASES, ids=[c[0] for c in READ_ONLY_CASES])
def test_read_only_destination_is_one_line_exit_2(read_only_results, case, args, message):
    result = read_only_results[0][case]
    check_one_error_line(result["code"], result["output"], result["exception"], message)
    assert "cannot be written" in result["output"]


def test_a_read_only_study_can_still_be_read(read_only_results):
    results, scratch = read_only_results
    for name, _ in READ_ONLY_READERS:
        assert results[name]["code"] == 0 and results[name]["exception"] is None, results[name]
    assert (scratch / "page.html").is_file() and (scratch / "results.json").is_file()
    assert "18/18 steps finished" in results["ro-study-status"]["output"]
